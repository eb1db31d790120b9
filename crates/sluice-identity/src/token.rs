//! The checks made before any key is looked up: size, shape, header, and the
//! unverified `iss` used only to choose which issuer's keys to verify with.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::{AuthError, quoted};

/// Header parameters that point at (or carry) a key. Keys come only from the
/// issuer's configured JWKS, so a token naming its own key is refused.
const KEY_LOCATION_HEADERS: [&str; 4] = ["jku", "x5u", "x5c", "jwk"];
const MAX_KID_CHARS: usize = 256;

/// What the unverified token says about how to verify it.
#[derive(Debug)]
pub(crate) struct Unverified {
    pub(crate) alg: Algorithm,
    pub(crate) kid: String,
    pub(crate) issuer: String,
}

/// Checks the token's size, shape and header, and reads its claimed issuer.
pub(crate) fn inspect(token: &str, max_bytes: usize) -> Result<Unverified, AuthError> {
    if token.len() > max_bytes {
        return Err(AuthError::malformed(format!(
            "token is too large ({} bytes, limit {max_bytes})",
            token.len()
        )));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(AuthError::malformed(
            "token is not a JWT: expected three dot-separated base64url parts",
        ));
    }
    let header = decode_object(parts[0], "header")?;
    let payload = decode_object(parts[1], "payload")?;
    if !parts[2].bytes().all(is_base64url) {
        return Err(AuthError::malformed("token signature is not base64url"));
    }

    let alg = match header.get("alg") {
        Some(Value::String(name)) => match name.as_str() {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => {
                return Err(AuthError::new(
                    crate::AuthFailure::Algorithm,
                    format!(
                        "algorithm {} is not allowed (RS256 and ES256 are)",
                        short(other)
                    ),
                ));
            }
        },
        _ => return Err(AuthError::malformed("token header has no algorithm (alg)")),
    };
    for name in KEY_LOCATION_HEADERS {
        if header.contains_key(name) {
            return Err(AuthError::malformed(format!(
                "token header {name:?} is not allowed: signing keys are taken only from the issuer's configured JWKS"
            )));
        }
    }
    if header.contains_key("crit") {
        return Err(AuthError::malformed(
            "token header \"crit\" is not allowed: no critical extensions are supported",
        ));
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if kid.is_empty() => {
            return Err(AuthError::malformed(
                "token header has an empty key id (kid)",
            ));
        }
        Some(Value::String(kid)) if kid.chars().count() > MAX_KID_CHARS => {
            return Err(AuthError::malformed(format!(
                "token key id (kid) is too long ({} chars, limit {MAX_KID_CHARS})",
                kid.chars().count()
            )));
        }
        Some(Value::String(kid)) => kid.clone(),
        Some(_) => return Err(AuthError::malformed("token key id (kid) is not a string")),
        None => return Err(AuthError::malformed("token header has no key id (kid)")),
    };
    if parts[2].is_empty() {
        return Err(AuthError::malformed("token has no signature"));
    }
    let issuer = match payload.get("iss") {
        Some(Value::String(iss)) if !iss.is_empty() => iss.clone(),
        Some(_) => {
            return Err(AuthError::malformed(
                "token issuer (iss) is not a non-empty string",
            ));
        }
        None => return Err(AuthError::malformed("token has no issuer (iss)")),
    };
    Ok(Unverified { alg, kid, issuer })
}

fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::malformed(format!("token {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AuthError::malformed(format!(
            "token {what} is not a JSON object"
        ))),
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// An algorithm name as the token gave it, quoted only when it is unusual.
fn short(alg: &str) -> String {
    if !alg.is_empty() && alg.len() <= 16 && alg.bytes().all(|b| b.is_ascii_alphanumeric()) {
        alg.to_string()
    } else {
        quoted(alg)
    }
}
