//! Helpers for tests, here and in crates that depend on this one (the
//! `test-util` feature).

use serde_json::Value;

use crate::Caller;

/// The form body of a token exchange (RFC 8693) of `subject_token` at the
/// workload identity provider `audience`, for a BigQuery access token: what
/// an agent going around Sluice would post to the Security Token Service.
/// Written out here, not taken from the client, so tests check the client.
pub fn token_exchange_form(audience: &str, subject_token: &str) -> String {
    serde_urlencoded::to_string([
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("audience", audience),
        ("scope", "https://www.googleapis.com/auth/bigquery"),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("subject_token", subject_token),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
    ])
    .unwrap()
}

/// The `kid`s of a JWKS, in its order.
pub fn jwks_kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// A verified caller for tests: a GitHub Actions workflow of
/// `acme/analytics` (group `ci-analytics`, policy `ci-analytics-read`)
/// whose token carried `claims` (a JSON object).
pub fn workflow_caller(claims: &Value) -> Caller {
    Caller {
        issuer: "https://token.actions.githubusercontent.com".into(),
        subject: "repo:acme/analytics:ref:refs/heads/main".into(),
        groups: vec!["ci-analytics".into()],
        policies: vec!["ci-analytics-read".into()],
        claims: claims.as_object().unwrap().clone(),
    }
}
