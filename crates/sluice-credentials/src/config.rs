//! What a minter mints with: the credential kind, the Google endpoints it
//! calls, and the scopes, lifetime and time limits of each token.

use std::sync::Arc;
use std::time::Duration;

use crate::{CredentialError, ServiceAccountKey, SluiceIssuer};

/// The scope BigQuery jobs need.
pub const BIGQUERY_SCOPE: &str = "https://www.googleapis.com/auth/bigquery";
/// The longest token lifetime Google grants without an organization policy
/// exception, and the longest JWT-bearer assertion it accepts.
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// How tokens are obtained; one kind per warehouse or per policy.
#[derive(Debug, Clone)]
pub enum Credential {
    /// RFC 8693 token exchange at Google STS of an assertion `issuer` signs
    /// for the caller (never the caller's own token), optionally followed
    /// by `generateAccessToken` for `service_account`.
    WorkloadIdentity {
        /// The workload identity provider's full resource name,
        /// `//iam.googleapis.com/projects/…/locations/global/workloadIdentityPools/…/providers/…`;
        /// also the assertion's `aud`.
        audience: String,
        /// A service account the federated caller impersonates; without it
        /// the federated token itself is used.
        service_account: Option<String>,
        /// Sluice's issuer, the only one the provider trusts.
        issuer: Arc<SluiceIssuer>,
    },
    /// JWT-bearer grant (RFC 7523) signed with a stored key, at the key's
    /// `token_uri`.
    ServiceAccountKey { key: Arc<ServiceAccountKey> },
    /// The gateway's own credential (a stored key, or the metadata server)
    /// impersonates `service_account` with `generateAccessToken`.
    Impersonation {
        source: ImpersonationSource,
        service_account: String,
    },
}

/// The gateway's own credential, used only to impersonate.
#[derive(Debug, Clone)]
pub enum ImpersonationSource {
    Key(Arc<ServiceAccountKey>),
    /// The service account attached to the machine or workload the gateway
    /// runs on.
    MetadataServer,
}

/// Where Google's token services are; every one can point elsewhere (a
/// private endpoint, a proxy, a test server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The Security Token Service's token URL.
    pub sts_url: String,
    /// The IAM Credentials API root, without `/v1`.
    pub iam_credentials_url: String,
    /// The metadata server root.
    pub metadata_url: String,
    /// The OAuth revocation URL; `None` skips revocation.
    pub revoke_url: Option<String>,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            sts_url: "https://sts.googleapis.com/v1/token".to_owned(),
            iam_credentials_url: "https://iamcredentials.googleapis.com".to_owned(),
            metadata_url: "http://metadata.google.internal".to_owned(),
            revoke_url: Some("https://oauth2.googleapis.com/revoke".to_owned()),
        }
    }
}

/// Everything a [`Minter`](crate::Minter) needs.
#[derive(Debug, Clone)]
pub struct MinterConfig {
    pub credential: Credential,
    pub endpoints: Endpoints,
    /// The scopes of every minted token.
    pub scopes: Vec<String>,
    /// The lifetime asked for: `generateAccessToken`'s `lifetime` and the
    /// JWT-bearer assertion's `exp - iat`. Capped at [`MAX_LIFETIME`];
    /// counted in whole seconds.
    pub lifetime: Duration,
    /// The limit of each HTTP call.
    pub timeout: Duration,
    /// The limit of one mint or revoke, retries included.
    pub deadline: Duration,
}

impl MinterConfig {
    /// A configuration with Google's endpoints, the BigQuery scope, 300-second
    /// tokens, 10-second calls and a 20-second deadline.
    pub fn new(credential: Credential) -> Self {
        Self {
            credential,
            endpoints: Endpoints::default(),
            scopes: vec![BIGQUERY_SCOPE.to_owned()],
            lifetime: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(20),
        }
    }

    /// Checks the values the credential will use.
    pub fn validate(&self) -> Result<(), CredentialError> {
        if self.scopes.is_empty() {
            return Err(CredentialError::invalid(
                "no scopes are configured for upstream tokens; BigQuery jobs need \
                 https://www.googleapis.com/auth/bigquery",
            ));
        }
        if let Some(scope) = self
            .scopes
            .iter()
            .find(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == ','))
        {
            return Err(CredentialError::invalid(format!(
                "the scope {scope:?} is not a scope URL; list each scope separately"
            )));
        }
        if self.lifetime < Duration::from_secs(1) {
            return Err(CredentialError::invalid(
                "the token lifetime must be at least 1s",
            ));
        }
        if self.timeout.is_zero() || self.deadline.is_zero() {
            return Err(CredentialError::invalid(
                "the timeout and the deadline of token requests must be more than zero",
            ));
        }
        let endpoints = &self.endpoints;
        match &self.credential {
            Credential::WorkloadIdentity {
                audience,
                service_account,
                issuer: _,
            } => {
                if audience.trim().is_empty() {
                    return Err(CredentialError::invalid(
                        "the workload-identity credential has no audience; set it to the \
                         provider's resource name, //iam.googleapis.com/projects/…/providers/…",
                    ));
                }
                check_url("sts_url", &endpoints.sts_url)?;
                if let Some(account) = service_account {
                    check_service_account(account)?;
                    check_url("iam_credentials_url", &endpoints.iam_credentials_url)?;
                }
            }
            Credential::ServiceAccountKey { key } => {
                check_url("the key's token_uri", key.token_uri())?
            }
            Credential::Impersonation {
                source,
                service_account,
            } => {
                check_service_account(service_account)?;
                check_url("iam_credentials_url", &endpoints.iam_credentials_url)?;
                match source {
                    ImpersonationSource::Key(key) => {
                        check_url("the key's token_uri", key.token_uri())?
                    }
                    ImpersonationSource::MetadataServer => {
                        check_metadata_url(&endpoints.metadata_url)?
                    }
                }
            }
        }
        if let Some(url) = &endpoints.revoke_url {
            check_url("revoke_url", url)?;
        }
        Ok(())
    }
}

fn check_url(name: &str, url: &str) -> Result<(), CredentialError> {
    check_endpoint(name, url).map_err(CredentialError::invalid)
}

/// Checks a URL Sluice sends tokens, assertions or queries to: it must be
/// `https`, or `http` on a loopback address only (a local test server or a
/// proxy beside Sluice), so no credential crosses a network in the clear.
/// The error names `name` and says what to change.
pub fn check_endpoint(name: &str, url: &str) -> Result<(), String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.has_host() => parsed,
        _ => return Err(format!("{name} {url:?} is not an http(s) URL")),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(format!(
            "{name} {url:?} is plain http to a host that is not loopback: credentials would \
             cross the network unencrypted; use https (http is accepted only for 127.0.0.0/8, \
             [::1] and localhost)"
        )),
        _ => Err(format!("{name} {url:?} is not an http(s) URL")),
    }
}

/// The GCE metadata server is plain http by design (it is reached on the
/// link-local address, never across a network), so its URL is only
/// checked for shape.
fn check_metadata_url(url: &str) -> Result<(), CredentialError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(()),
        _ => Err(CredentialError::invalid(format!(
            "metadata_url {url:?} is not an http(s) URL"
        ))),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let host = host.to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// A service-account email goes into a URL path, so only the characters
/// Google allows in one are accepted.
fn check_service_account(email: &str) -> Result<(), CredentialError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_');
    match email.split_once('@') {
        Some((name, domain))
            if !name.is_empty() && !domain.is_empty() && email.chars().all(allowed) =>
        {
            Ok(())
        }
        _ => Err(CredentialError::invalid(format!(
            "{email:?} is not a service-account email (name@project.iam.gserviceaccount.com)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::check_endpoint;

    /// Issue: upstream endpoints must be https except on loopback, so no
    /// token or assertion crosses a network in the clear.
    #[test]
    fn endpoints_are_https_or_loopback_http() {
        for ok in [
            "https://sts.googleapis.com",
            "https://10.0.0.5:8443/v1",
            "http://127.0.0.1:9000",
            "http://127.8.9.10",
            "http://[::1]:8080/token",
            "http://localhost:1234",
            "http://sts.localhost",
        ] {
            assert!(check_endpoint("sts_url", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://sts.googleapis.com",
            "http://10.0.0.5:8080",
            "http://localhost.example.com",
            "http://[::2]:80",
            "ftp://127.0.0.1",
            "sts.googleapis.com",
        ] {
            let err = check_endpoint("sts_url", bad).unwrap_err();
            assert!(err.contains("sts_url"), "{err}");
        }
        let err = check_endpoint("warehouse.endpoint", "http://bq.internal").unwrap_err();
        assert!(err.contains("use https"), "{err}");
    }
}
