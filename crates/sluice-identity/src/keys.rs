//! Signing keys parsed from a JWKS, and the rule for which key may verify
//! which algorithm.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::{AuthError, AuthFailure, quoted};

const MIN_RSA_BITS: usize = 2048;

/// The kind of a public key, as far as verification cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa { bits: usize },
    EcP256,
}

/// One public signing key from a JWKS.
#[derive(Clone)]
pub(crate) struct SigningKey {
    pub(crate) kind: KeyKind,
    /// The JWK's own `alg`, when it names one.
    pub(crate) alg: Option<String>,
    pub(crate) decoding: DecodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Whether this key may verify a token signed with `alg`.
    pub(crate) fn check_fits(&self, alg: Algorithm, kid: &str) -> Result<(), AuthError> {
        let alg_name = match alg {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            _ => {
                return Err(AuthError::new(
                    AuthFailure::Algorithm,
                    "algorithm is not allowed",
                ));
            }
        };
        let fits = matches!(
            (alg, self.kind),
            (Algorithm::RS256, KeyKind::Rsa { .. }) | (Algorithm::ES256, KeyKind::EcP256)
        );
        if !fits {
            return Err(AuthError::new(
                AuthFailure::Algorithm,
                format!(
                    "signing key {} is an {} key and cannot verify {alg_name}",
                    quoted(kid),
                    match self.kind {
                        KeyKind::Rsa { .. } => "RSA",
                        KeyKind::EcP256 => "EC P-256",
                    }
                ),
            ));
        }
        if let Some(key_alg) = &self.alg
            && key_alg != alg_name
        {
            return Err(AuthError::new(
                AuthFailure::Algorithm,
                format!(
                    "signing key {} is for {} and cannot verify {alg_name}",
                    quoted(kid),
                    quoted(key_alg)
                ),
            ));
        }
        if let KeyKind::Rsa { bits } = self.kind
            && bits < MIN_RSA_BITS
        {
            return Err(AuthError::new(
                AuthFailure::Algorithm,
                format!(
                    "signing key {} is a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required",
                    quoted(kid)
                ),
            ));
        }
        Ok(())
    }
}

/// The usable keys of one JWKS, by `kid`.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: HashMap<String, SigningKey>,
}

impl KeySet {
    /// Parses a JWKS document. Keys this verifier cannot use (other key types
    /// or curves, encryption keys, keys without a `kid`) are skipped; a
    /// malformed document is an error.
    pub(crate) fn from_jwks(document: &Value) -> Result<KeySet, String> {
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS has no \"keys\" array")?;
        let mut set = KeySet::default();
        for jwk in keys {
            let Some(kid) = jwk.get("kid").and_then(Value::as_str) else {
                continue;
            };
            if jwk.get("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let Some(key) = parse_jwk(jwk) else {
                continue;
            };
            if set.keys.contains_key(kid) {
                tracing::warn!(kid = %quoted(kid), "the JWKS lists the same kid twice; keeping the first");
                continue;
            }
            set.keys.insert(kid.to_string(), key);
        }
        Ok(set)
    }
}

fn parse_jwk(jwk: &Value) -> Option<SigningKey> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    let alg = field("alg").map(str::to_string);
    match field("kty")? {
        "RSA" => {
            let n = URL_SAFE_NO_PAD.decode(field("n")?).ok()?;
            let e = URL_SAFE_NO_PAD.decode(field("e")?).ok()?;
            if e.is_empty() || e.len() > 8 {
                return None;
            }
            Some(SigningKey {
                kind: KeyKind::Rsa {
                    bits: bit_length(&n),
                },
                alg,
                decoding: DecodingKey::from_rsa_raw_components(&n, &e),
            })
        }
        "EC" if field("crv")? == "P-256" => {
            let (x, y) = (field("x")?, field("y")?);
            let coordinate_ok = |c: &str| URL_SAFE_NO_PAD.decode(c).is_ok_and(|b| b.len() == 32);
            if !coordinate_ok(x) || !coordinate_ok(y) {
                return None;
            }
            Some(SigningKey {
                kind: KeyKind::EcP256,
                alg,
                decoding: DecodingKey::from_ec_components(x, y).ok()?,
            })
        }
        _ => None,
    }
}

/// The number of significant bits in a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> usize {
    let Some(first) = bytes.iter().position(|&b| b != 0) else {
        return 0;
    };
    (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x7f; 256]), 2047);
    }

    #[test]
    fn unusable_keys_are_skipped_and_short_rsa_keys_refused() {
        let n = URL_SAFE_NO_PAD.encode([0xc5u8; 128]);
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "short", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": n, "e": "AQAB"},
        ]});
        let set = KeySet::from_jwks(&jwks).unwrap();
        assert_eq!(set.keys.len(), 1);
        let err = set.keys["short"]
            .check_fits(Algorithm::RS256, "short")
            .unwrap_err();
        assert!(err.reason.contains("1024-bit"), "{err}");
        let err = set.keys["short"]
            .check_fits(Algorithm::ES256, "short")
            .unwrap_err();
        assert!(
            err.reason.contains("RSA key and cannot verify ES256"),
            "{err}"
        );
        assert!(KeySet::from_jwks(&json!({"nokeys": []})).is_err());
    }
}
