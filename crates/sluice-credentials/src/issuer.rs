//! Sluice as the one issuer a workload identity pool trusts.
//!
//! For each job Sluice signs its own short-lived assertion about the caller
//! it verified, and that assertion is what the Security Token Service
//! exchanges. The caller's own token never goes to Google: if the pool
//! trusted the caller's issuer, an agent could exchange the very token it
//! sends Sluice at the STS itself and reach BigQuery around every policy,
//! mask, approval and audit record. An assertion only Sluice can sign closes
//! that door.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::{CredentialError, SigningKeys};

/// How long an assertion is accepted: it is exchanged at once, so minutes
/// are plenty, and a copy that leaks is soon useless.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// Where the JWKS is served, under the issuer URL's path (and always at the
/// root of the gateway).
pub const JWKS_PATH: &str = "/.well-known/sluice/jwks.json";
/// Where the OIDC discovery document is served, under the issuer URL's path.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The longest `google.subject` a workload identity pool accepts.
const MAX_SUBJECT_BYTES: usize = 127;
/// A copied claim longer than this is left out rather than cut.
const MAX_CLAIM_BYTES: usize = 256;

/// Claims of the caller's verified token that the assertion carries under
/// the same name, for attribute mappings and conditions: GitHub Actions'
/// and GitLab CI's workload claims. Only strings, numbers and booleans are
/// copied, and nothing else of the caller's token.
pub const COPIED_CLAIMS: &[&str] = &[
    // GitHub Actions
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "repository_visibility",
    "workflow",
    "workflow_ref",
    "workflow_sha",
    "job_workflow_ref",
    "job_workflow_sha",
    "run_id",
    "run_number",
    "run_attempt",
    "ref",
    "ref_type",
    "sha",
    "environment",
    "event_name",
    "actor",
    "actor_id",
    "runner_environment",
    // GitLab CI
    "project_id",
    "project_path",
    "namespace_id",
    "namespace_path",
    "pipeline_id",
    "pipeline_source",
    "job_id",
    "user_login",
    "ref_protected",
    // Other CI systems
    "build_id",
];

/// The claims Sluice sets itself, for the discovery document.
const OWN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "iat",
    "exp",
    "jti",
    "caller_iss",
    "caller_sub",
    "groups",
    "policy",
    "policies",
];

/// The verified caller a job runs for, as the assertion describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caller {
    /// The `iss` of the caller's token.
    pub issuer: String,
    /// The `sub` of the caller's token.
    pub subject: String,
    /// The caller's groups, as Sluice's identity rules gave them.
    pub groups: Vec<String>,
    /// The policies that admit the caller, in configuration order.
    pub policies: Vec<String>,
    /// The claims of the caller's verified token; only [`COPIED_CLAIMS`]
    /// are used.
    pub claims: Map<String, Value>,
}

/// Sluice's issuer: its URL (the assertions' `iss`) and its signing keys.
#[derive(Debug)]
pub struct SluiceIssuer {
    issuer: String,
    keys: RwLock<Arc<SigningKeys>>,
}

impl SluiceIssuer {
    /// `issuer` is the URL the pool provider is configured with
    /// (`--issuer-uri`).
    pub fn new(issuer: impl Into<String>, keys: SigningKeys) -> Result<Self, CredentialError> {
        let issuer = issuer.into();
        match reqwest::Url::parse(&issuer) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.has_host()
                    && url.query().is_none()
                    && url.fragment().is_none() => {}
            _ => {
                return Err(CredentialError::invalid(format!(
                    "Sluice's issuer {issuer:?} is not an http(s) URL without query or fragment (a pool provider needs https)"
                )));
            }
        }
        Ok(Self {
            issuer,
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    /// The issuer URL, every assertion's `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The current signing keys.
    pub fn keys(&self) -> Arc<SigningKeys> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes up keys read again from the store (after a rotation).
    pub fn replace_keys(&self, keys: SigningKeys) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    /// The public keys published now.
    pub fn jwks(&self) -> Value {
        self.keys().jwks(unix_now())
    }

    /// The path of the issuer URL, without a trailing slash: discovery and
    /// keys are served under it.
    pub fn path(&self) -> String {
        reqwest::Url::parse(&self.issuer)
            .map(|url| url.path().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }

    /// The OIDC discovery document of the issuer.
    pub fn discovery_document(&self) -> Value {
        let claims: Vec<&str> = OWN_CLAIMS.iter().chain(COPIED_CLAIMS).copied().collect();
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}{JWKS_PATH}", self.issuer.trim_end_matches('/')),
            "id_token_signing_alg_values_supported": ["ES256"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": claims,
        })
    }

    /// The assertion for one exchange: signed ES256 with the key active at
    /// `now`, for `audience` (the provider), about `caller`, valid for
    /// [`ASSERTION_LIFETIME`].
    pub fn assertion(
        &self,
        caller: &Caller,
        audience: &str,
        now: u64,
    ) -> Result<Zeroizing<String>, CredentialError> {
        let keys = self.keys();
        let key = keys.active(now)?;
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": key.kid()});
        let mut claims = Map::new();
        for name in COPIED_CLAIMS {
            match caller.claims.get(*name) {
                Some(Value::String(text)) if text.len() <= MAX_CLAIM_BYTES => {}
                Some(Value::Number(_) | Value::Bool(_)) => {}
                _ => continue,
            }
            claims.insert((*name).to_owned(), caller.claims[*name].clone());
        }
        let own = json!({
            "iss": self.issuer,
            "sub": subject(caller),
            "aud": audience,
            "iat": now,
            "exp": now.saturating_add(ASSERTION_LIFETIME.as_secs()),
            "jti": jti()?,
            "caller_iss": caller.issuer,
            "caller_sub": caller.subject,
            "groups": caller.groups,
            "policy": caller.policies.join(","),
            "policies": caller.policies,
        });
        if let Value::Object(own) = own {
            claims.extend(own);
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        );
        let signature = key.sign(signing_input.as_bytes())?;
        Ok(Zeroizing::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// The assertion's `sub`: `issuer#subject` of the caller, the same name
/// Sluice's jobs are owned by; when that is longer than a pool accepts as
/// `google.subject` (127 bytes), `sha256:` and the hex SHA-256 of it.
pub fn subject(caller: &Caller) -> String {
    let name = format!("{}#{}", caller.issuer, caller.subject);
    if name.len() <= MAX_SUBJECT_BYTES {
        return name;
    }
    let hash = digest::digest(&digest::SHA256, name.as_bytes());
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn jti() -> Result<String, CredentialError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CredentialError::invalid("the system's random source failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Seconds since 1970; 0 for a clock set before it (every assertion is then
/// refused as expired, which says what is wrong).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
