//! IAM Credentials `generateAccessToken`: a source token that may act as a
//! service account buys a token of that service account with the job's
//! scopes and lifetime.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::http::{Answer, Budget, Call, Transport, json_object, not_a_token, take_token};
use crate::{AccessToken, CredentialError};

/// The scope IAM Credentials requires of the source token.
pub(crate) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Who holds the source token, for the advice in a refusal.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grantee<'a> {
    /// The caller, federated through a workload identity pool.
    Federated,
    /// The service account of a stored key.
    ServiceAccount(&'a str),
    /// The service account attached to where the gateway runs.
    Attached,
}

/// One `generateAccessToken` request.
#[derive(Debug)]
pub(crate) struct Impersonate<'a> {
    pub iam_credentials_url: &'a str,
    pub service_account: &'a str,
    pub scopes: &'a [String],
    /// Sent in whole seconds; at most an hour.
    pub lifetime: Duration,
    pub grantee: Grantee<'a>,
}

/// Mints a token of `request.service_account` with the `source` token.
pub(crate) async fn generate_access_token(
    transport: &Transport,
    budget: &Budget,
    request: &Impersonate<'_>,
    source: &AccessToken,
) -> Result<AccessToken, CredentialError> {
    let url = format!(
        "{}/v1/projects/-/serviceAccounts/{}:generateAccessToken",
        request.iam_credentials_url.trim_end_matches('/'),
        request.service_account
    );
    let body = json!({
        "scope": request.scopes,
        "lifetime": format!("{}s", request.lifetime.as_secs()),
    });
    let call = Call {
        service: "IAM Credentials generateAccessToken",
        url: &url,
        secrets: &[source.secret()],
    };
    let answer = transport
        .send(&call, budget, || {
            transport
                .client()
                .post(&url)
                .bearer_auth(source.secret())
                .json(&body)
        })
        .await?;
    let (status, detail) = match answer {
        Answer::Success(body) => return token(&body, &call),
        Answer::Refused { status, detail } => (status, detail),
    };
    let account = request.service_account;
    let (verb, next) = match status {
        StatusCode::FORBIDDEN => ("was denied", denied_advice(request.grantee, account)),
        StatusCode::NOT_FOUND => (
            "failed",
            format!("check that the service account {account} exists and is enabled"),
        ),
        StatusCode::UNAUTHORIZED => (
            "was refused",
            "the source token was not accepted; check the gateway's own credential".to_owned(),
        ),
        _ => (
            "was refused",
            "check the configured scopes and lifetime (at most 3600s)".to_owned(),
        ),
    };
    Err(CredentialError::refused(format!(
        "generateAccessToken for {account} {verb}: {detail}; {next}"
    )))
}

fn denied_advice(grantee: Grantee<'_>, account: &str) -> String {
    let grant = match grantee {
        Grantee::Federated => format!(
            "grant the caller's principal in the workload identity pool \
             roles/iam.workloadIdentityUser on {account}"
        ),
        Grantee::ServiceAccount(source) => {
            format!("grant {source} roles/iam.serviceAccountTokenCreator on {account}")
        }
        Grantee::Attached => format!(
            "grant the gateway's own service account roles/iam.serviceAccountTokenCreator on \
             {account}"
        ),
    };
    format!("{grant}, and check that the IAM Service Account Credentials API is enabled")
}

/// Reads `{"accessToken": "…", "expireTime": "<RFC 3339>"}`.
fn token(body: &[u8], call: &Call<'_>) -> Result<AccessToken, CredentialError> {
    let mut object = json_object(body, call)?;
    let expires_at = object
        .get("expireTime")
        .and_then(Value::as_str)
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(SystemTime::from)
        .ok_or_else(|| {
            not_a_token(
                call,
                "its \"expireTime\" is missing or not an RFC 3339 time",
            )
        })?;
    let secret = take_token(&mut object, "accessToken", call)?;
    Ok(AccessToken::new(secret, expires_at))
}
