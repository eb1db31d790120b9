//! [`Verifier`]: bearer token in, [`Principal`] or [`AuthError`] out.
//!
//! Order of checks: size and shape, header (algorithm, no token-supplied key
//! locations, `kid`), the *claimed* issuer, that issuer's algorithm list, the
//! key for `kid` from that issuer's keys only, then signature and claims.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::cache::{KeyCache, KeyLookupError};
use crate::claims::{ClaimMapping, GroupRule, principal};
use crate::config::{IdentityConfig, IssuerConfig};
use crate::dev_issuer::{DevIssuer, unix_now};
use crate::keys::SigningKey;
use crate::token::{Unverified, inspect};
use crate::verified::VerifiedTokens;
use crate::{AuthError, AuthFailure, Principal, fetch, quoted};

/// Verifies bearer tokens against the configured issuers. Cheap to share in
/// an `Arc`; each issuer's keys are cached inside.
pub struct Verifier {
    issuers: HashMap<String, TrustedIssuer>,
    dev: Option<DevIssuer>,
    dev_disabled_id: Option<String>,
    leeway_secs: u64,
    max_token_bytes: usize,
    verified: VerifiedTokens,
}

struct TrustedIssuer {
    config: IssuerConfig,
    client: reqwest::Client,
    keys: KeyCache,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut issuers: Vec<&str> = self.issuers.keys().map(String::as_str).collect();
        issuers.sort_unstable();
        f.debug_struct("Verifier")
            .field("issuers", &issuers)
            .field("dev_issuer", &self.dev.as_ref().map(DevIssuer::issuer))
            .field("leeway_secs", &self.leeway_secs)
            .field("max_token_bytes", &self.max_token_bytes)
            .finish()
    }
}

impl Verifier {
    /// Builds the verifier. `dev` is required when the configuration enables
    /// the development issuer, and ignored otherwise.
    pub fn new(config: IdentityConfig, dev: Option<DevIssuer>) -> Result<Verifier, String> {
        let dev = match (config.dev_enabled, dev) {
            (false, _) => None,
            (true, None) => {
                return Err(
                    "the development issuer is enabled but its key was not loaded".to_string(),
                );
            }
            (true, Some(dev)) => {
                if dev.issuer() != config.dev_issuer || dev.audience() != config.dev_audience {
                    return Err(format!(
                        "the development issuer was loaded for issuer {:?} and audience {:?}, but the configuration says {:?} and {:?}",
                        dev.issuer(),
                        dev.audience(),
                        config.dev_issuer,
                        config.dev_audience
                    ));
                }
                Some(dev)
            }
        };
        let mut issuers = HashMap::with_capacity(config.issuers.len());
        for issuer in config.issuers {
            let client = fetch::client_for(&issuer)?;
            issuers.insert(
                issuer.issuer.clone(),
                TrustedIssuer {
                    config: issuer,
                    client,
                    keys: KeyCache::default(),
                },
            );
        }
        Ok(Verifier {
            issuers,
            dev,
            dev_disabled_id: (!config.dev_enabled).then_some(config.dev_issuer),
            leeway_secs: config.leeway.as_secs(),
            max_token_bytes: config.max_token_bytes,
            verified: VerifiedTokens::default(),
        })
    }

    /// Verifies a bearer token (without the `Bearer ` prefix). A token
    /// verified before is answered from memory until it expires (at most
    /// five minutes, see [`crate::verified`]).
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > self.max_token_bytes {
            // Refused by `inspect` below, without hashing megabytes first.
            return self
                .verify_fresh(token)
                .await
                .map(|(principal, _)| principal);
        }
        let key = VerifiedTokens::key(token);
        let now = unix_now();
        if let Some(principal) = self.verified.get(&key, now) {
            return Ok(principal);
        }
        let (principal, expires) = self.verify_fresh(token).await?;
        self.verified.insert(key, principal.clone(), expires, now);
        Ok(principal)
    }

    /// Verifies a token from scratch; its principal and its `exp`.
    async fn verify_fresh(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        let unverified = inspect(token, self.max_token_bytes)?;
        if let Some(dev) = self
            .dev
            .as_ref()
            .filter(|d| d.issuer() == unverified.issuer)
        {
            return self.verify_dev(token, &unverified, dev);
        }
        let Some(issuer) = self.issuers.get(&unverified.issuer) else {
            let hint = if self.dev_disabled_id.as_deref() == Some(unverified.issuer.as_str()) {
                " (the development issuer is disabled in this configuration)"
            } else {
                ""
            };
            return Err(AuthError::new(
                AuthFailure::UnknownIssuer,
                format!("unknown issuer {}{hint}", quoted(&unverified.issuer)),
            ));
        };
        let config = &issuer.config;
        if !config.algorithms.contains(&unverified.alg) {
            return Err(AuthError::new(
                AuthFailure::Algorithm,
                format!(
                    "algorithm {} is not allowed for issuer {}",
                    alg_name(unverified.alg),
                    quoted(&config.issuer)
                ),
            ));
        }
        let key = issuer
            .keys
            .key(&unverified.kid, config.refresh, || async {
                fetch::fetch_keys(&issuer.client, config).await.inspect_err(|reason| {
                    tracing::warn!(issuer = %config.issuer, %reason, "cannot fetch signing keys");
                })
            })
            .await
            .map_err(|e| match e {
                KeyLookupError::Unavailable => AuthError::new(
                    AuthFailure::KeysUnavailable,
                    format!(
                        "cannot fetch signing keys for issuer {}",
                        quoted(&config.issuer)
                    ),
                ),
                KeyLookupError::NotFound => AuthError::new(
                    AuthFailure::UnknownKey,
                    format!(
                        "signing key {} not found in the issuer's JWKS",
                        quoted(&unverified.kid)
                    ),
                ),
            })?;
        let claims = self.check(token, &unverified, &key, &config.issuer, &config.audiences)?;
        Ok(finish(
            &config.issuer,
            &claims,
            ClaimMapping {
                name_claim: &config.name_claim,
                groups_claim: config.groups_claim.as_deref(),
                group_rules: &config.group_rules,
            },
        ))
    }

    fn verify_dev(
        &self,
        token: &str,
        unverified: &Unverified,
        dev: &DevIssuer,
    ) -> Result<(Principal, u64), AuthError> {
        if unverified.alg != Algorithm::ES256 {
            return Err(AuthError::new(
                AuthFailure::Algorithm,
                format!(
                    "algorithm {} is not allowed for the development issuer",
                    alg_name(unverified.alg)
                ),
            ));
        }
        if unverified.kid != dev.key_id() {
            return Err(AuthError::new(
                AuthFailure::UnknownKey,
                format!(
                    "signing key {} is not the development issuer's key",
                    quoted(&unverified.kid)
                ),
            ));
        }
        let key = dev.verifying_key();
        let claims = self.check(
            token,
            unverified,
            &key,
            dev.issuer(),
            &[dev.audience().to_string()],
        )?;
        const NO_RULES: &[GroupRule] = &[];
        Ok(finish(
            dev.issuer(),
            &claims,
            ClaimMapping {
                name_claim: "sub",
                groups_claim: Some("groups"),
                group_rules: NO_RULES,
            },
        ))
    }

    /// Signature, issuer, audience, times and subject.
    fn check(
        &self,
        token: &str,
        unverified: &Unverified,
        key: &SigningKey,
        issuer: &str,
        audiences: &[String],
    ) -> Result<Map<String, Value>, AuthError> {
        key.check_fits(unverified.alg, &unverified.kid)?;
        let mut validation = Validation::new(unverified.alg);
        validation.set_issuer(&[issuer]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.leeway = self.leeway_secs;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(|e| refusal(e.kind(), audiences))?;
        let claims = data.claims;
        match claims.get("sub") {
            Some(Value::String(sub)) if !sub.trim().is_empty() => {}
            Some(Value::String(_)) => {
                return Err(AuthError::new(
                    AuthFailure::Claims,
                    "token has an empty subject (sub)",
                ));
            }
            _ => {
                return Err(AuthError::new(
                    AuthFailure::Claims,
                    "token subject (sub) is not a string",
                ));
            }
        }
        match claims.get("iat") {
            None => {}
            Some(Value::Number(iat)) => {
                let future = iat
                    .as_f64()
                    .is_some_and(|iat| iat > (unix_now() + self.leeway_secs) as f64);
                if future {
                    return Err(AuthError::new(
                        AuthFailure::NotYetValid,
                        "token was issued in the future (iat)",
                    ));
                }
            }
            Some(_) => {
                return Err(AuthError::new(
                    AuthFailure::Claims,
                    "token issue time (iat) is not a number",
                ));
            }
        }
        Ok(claims)
    }
}

/// The principal of verified `claims`, and the token's `exp`.
fn finish(
    issuer: &str,
    claims: &Map<String, Value>,
    mapping: ClaimMapping<'_>,
) -> (Principal, u64) {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Checked present and numeric by the validation; a fraction rounds down.
    let expires = claims
        .get("exp")
        .and_then(Value::as_f64)
        .map_or(0, |exp| exp.max(0.0) as u64);
    (principal(issuer, subject, claims, mapping), expires)
}

/// Why jsonwebtoken refused, in words for the caller.
fn refusal(kind: &ErrorKind, audiences: &[String]) -> AuthError {
    use AuthFailure as F;
    let (kind, reason) = match kind {
        ErrorKind::InvalidSignature => (F::Signature, "token signature is invalid".to_string()),
        ErrorKind::ExpiredSignature => (F::Expired, "token expired".to_string()),
        ErrorKind::ImmatureSignature => (
            F::NotYetValid,
            "token is not valid yet (nbf is in the future)".to_string(),
        ),
        ErrorKind::InvalidAudience => (
            F::Audience,
            format!(
                "token audience (aud) is not accepted here: expected one of {}",
                audiences.join(", ")
            ),
        ),
        ErrorKind::InvalidIssuer => (F::Claims, "token issuer (iss) does not match".to_string()),
        // jsonwebtoken reports a claim of the wrong type (`"exp": "soon"`) as missing.
        ErrorKind::MissingRequiredClaim(claim) => (
            F::Claims,
            format!(
                "token claim {} is missing or not {}",
                quoted(claim),
                match claim.as_str() {
                    "exp" | "nbf" => "a number",
                    "aud" => "a string or an array of strings",
                    _ => "a string",
                }
            ),
        ),
        ErrorKind::InvalidClaimFormat(claim) => (
            F::Claims,
            format!("token claim {} has an invalid format", quoted(claim)),
        ),
        ErrorKind::InvalidAlgorithm => (
            F::Algorithm,
            "token algorithm does not match its key".to_string(),
        ),
        ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::InvalidToken => (F::Malformed, "token is malformed".to_string()),
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => (
            F::KeysUnavailable,
            "the issuer's signing key is unusable".to_string(),
        ),
        _ => (F::Malformed, "token is invalid".to_string()),
    };
    AuthError::new(kind, reason)
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        _ => "(other)",
    }
}

#[cfg(test)]
mod tests;
