//! The JWT-bearer grant (RFC 7523): a stored service-account key signs a
//! short-lived assertion, which the key's token endpoint exchanges for an
//! access token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use zeroize::Zeroizing;

use crate::http::{Answer, Budget, Call, Transport, json_object, oauth_token};
use crate::{AccessToken, CredentialError, ServiceAccountKey};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Exchanges an assertion signed with `key` for a token with `scopes`.
///
/// Google issues these tokens for an hour whatever the assertion's lifetime,
/// which is why they are revoked when the job is done.
pub(crate) async fn mint(
    transport: &Transport,
    budget: &Budget,
    key: &ServiceAccountKey,
    scopes: &[String],
    lifetime: Duration,
) -> Result<AccessToken, CredentialError> {
    let assertion = assertion(key, scopes, lifetime, SystemTime::now())?;
    let call = Call {
        service: "Google's token endpoint",
        url: key.token_uri(),
        secrets: &[&assertion],
    };
    let answer = transport
        .send_form(
            &call,
            budget,
            &[("grant_type", GRANT_TYPE), ("assertion", &assertion)],
        )
        .await?;
    match answer {
        Answer::Success(body) => oauth_token(&mut json_object(&body, &call)?, &call, lifetime),
        Answer::Refused { detail, .. } => Err(CredentialError::refused(format!(
            "Google's token endpoint refused the key {} of {}: {detail}; the key may have been \
             deleted, disabled or expired — check it under IAM → Service accounts → Keys, or \
             store a new key",
            key.private_key_id().unwrap_or("(no id)"),
            key.client_email()
        ))),
    }
}

/// The signed assertion: `iss` is the service account, `aud` the token
/// endpoint, and it expires `lifetime` (at most an hour) after `now`.
fn assertion(
    key: &ServiceAccountKey,
    scopes: &[String],
    lifetime: Duration,
    now: SystemTime,
) -> Result<Zeroizing<String>, CredentialError> {
    let issued_at = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| {
            CredentialError::invalid("the gateway's clock is set before 1970; fix the system time")
        })?
        .as_secs();
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key.private_key_id() {
        header["kid"] = json!(kid);
    }
    let claims = json!({
        "iss": key.client_email(),
        "scope": scopes.join(" "),
        "aud": key.token_uri(),
        "iat": issued_at,
        // `lifetime` is at most an hour, the longest assertion Google
        // accepts (`Minter::new` caps it).
        "exp": issued_at + lifetime.as_secs(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign_rs256(signing_input.as_bytes())?;
    Ok(Zeroizing::new(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}
