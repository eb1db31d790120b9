//! Fetching an issuer's signing keys over HTTP(S): OIDC discovery, then the
//! JWKS. Bounded in time and size, and never redirected to another host.

use std::time::Duration;

use reqwest::{Client, Url, redirect};
use serde_json::Value;

use crate::config::{IssuerConfig, KeySource, fetch_url};
use crate::keys::KeySet;

const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BODY_BYTES: usize = 1 << 20;
const MAX_REDIRECTS: usize = 3;

/// Builds the HTTP client for one issuer, trusting the extra roots in its
/// `ca_file` besides the platform's.
pub(crate) fn client_for(issuer: &IssuerConfig) -> Result<Client, String> {
    let mut builder = Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(same_origin_redirects())
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &issuer.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            format!(
                "issuer {:?}: cannot read ca_file {}: {e}",
                issuer.issuer,
                path.display()
            )
        })?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            format!(
                "issuer {:?}: ca_file {} is not PEM: {e}",
                issuer.issuer,
                path.display()
            )
        })?;
        if roots.is_empty() {
            return Err(format!(
                "issuer {:?}: ca_file {} holds no certificate",
                issuer.issuer,
                path.display()
            ));
        }
        builder = builder.tls_certs_merge(roots);
    }
    builder.build().map_err(|e| {
        format!(
            "issuer {:?}: cannot build the HTTP client: {e}",
            issuer.issuer
        )
    })
}

/// Follows a few redirects, and only within the same scheme, host and port.
fn same_origin_redirects() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        let same_origin = first.is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > MAX_REDIRECTS || !same_origin {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Fetches the issuer's current keys: through discovery, or from the JWKS URL
/// directly. The error says what failed, for the log; it holds no token.
pub(crate) async fn fetch_keys(client: &Client, issuer: &IssuerConfig) -> Result<KeySet, String> {
    let jwks_url = match &issuer.keys {
        KeySource::Jwks(url) => url.clone(),
        KeySource::Discovery(url) => {
            let document = get_json(client, url).await?;
            match document.get("issuer").and_then(Value::as_str) {
                Some(found) if found == issuer.issuer => {}
                Some(found) => {
                    return Err(format!(
                        "the discovery document at {url} names issuer {found:?}, not {:?}",
                        issuer.issuer
                    ));
                }
                None => return Err(format!("the discovery document at {url} has no issuer")),
            }
            let jwks = document
                .get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("the discovery document at {url} has no jwks_uri"))?;
            fetch_url(jwks).map_err(|e| format!("the discovery document's jwks_uri: {e}"))?
        }
    };
    let document = get_json(client, &jwks_url).await?;
    KeySet::from_jwks(&document).map_err(|e| format!("{jwks_url}: {e}"))
}

async fn get_json(client: &Client, url: &Url) -> Result<Value, String> {
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", with_causes(&e)))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(format!(
            "GET {url}: the response is larger than {MAX_BODY_BYTES} bytes"
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("GET {url}: {}", with_causes(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!(
                "GET {url}: the response is larger than {MAX_BODY_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
}

/// An error and its causes on one line: reqwest's own message alone ("error
/// sending request") does not say that, e.g., the certificate was refused.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
