//! OAuth 2.0 token exchange (RFC 8693) at Google's Security Token Service:
//! an assertion Sluice signed for the caller becomes a federated access
//! token of the configured workload identity provider.

use std::time::Duration;

use serde_json::Value;

use crate::http::{Answer, Budget, Call, Transport, json_object, not_a_token, oauth_token};
use crate::{AccessToken, CredentialError};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// One token exchange.
#[derive(Debug)]
pub(crate) struct Exchange<'a> {
    pub sts_url: &'a str,
    /// The workload identity provider's full resource name.
    pub audience: &'a str,
    /// Space-separated scopes of the federated token.
    pub scope: &'a str,
    /// Taken as the token's lifetime if STS does not state one.
    pub lifetime: Duration,
    /// Sluice's issuer, and the caller the assertion is about, for the
    /// advice in a refusal.
    pub issuer: &'a str,
    pub caller: &'a str,
}

/// Exchanges Sluice's `assertion` for a federated access token. STS issues
/// it for an hour; it cannot be shortened or revoked.
pub(crate) async fn exchange(
    transport: &Transport,
    budget: &Budget,
    exchange: &Exchange<'_>,
    assertion: &str,
) -> Result<AccessToken, CredentialError> {
    let call = Call {
        service: "Security Token Service",
        url: exchange.sts_url,
        secrets: &[assertion],
    };
    let answer = transport
        .send_form(
            &call,
            budget,
            &[
                ("grant_type", GRANT_TYPE),
                ("audience", exchange.audience),
                ("scope", exchange.scope),
                ("requested_token_type", ACCESS_TOKEN_TYPE),
                ("subject_token", assertion),
                ("subject_token_type", JWT_TOKEN_TYPE),
            ],
        )
        .await?;
    match answer {
        Answer::Success(body) => {
            let mut object = json_object(&body, &call)?;
            match object.get("issued_token_type") {
                None => {}
                Some(Value::String(kind)) if kind == ACCESS_TOKEN_TYPE => {}
                Some(_) => {
                    return Err(not_a_token(
                        &call,
                        "it issued a token that is not an access token",
                    ));
                }
            }
            oauth_token(&mut object, &call, exchange.lifetime)
        }
        Answer::Refused { detail, .. } => Err(CredentialError::refused(format!(
            "Security Token Service refused Sluice's assertion for {}: {detail}; check that the \
             workload identity provider {} trusts Sluice's issuer {} with its current keys \
             (`sluice secrets jwks`), and that its attribute mapping and condition admit this \
             caller",
            exchange.caller, exchange.audience, exchange.issuer
        ))),
    }
}
