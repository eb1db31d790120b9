//! The authenticate phase: who is asking.
//!
//! Every facade request carries `Authorization: Bearer <JWT>`. The token
//! is verified against the configured issuers (and the development issuer
//! when it is on); anything else is 401 with `WWW-Authenticate: Bearer`
//! and nothing further happens. The log says why a token was refused,
//! never the token itself.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sluice_identity::{AuthFailure, Verifier};
use zeroize::Zeroizing;

use crate::error::GatewayError;

/// The identity a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key jobs are owned by: issuer and subject, so that two issuers'
    /// subjects of the same name never share jobs.
    pub name: String,
    /// What the verified token said.
    pub verified: sluice_identity::Principal,
    /// The verified token itself, read only for the claims Sluice copies
    /// into its own workload-identity assertion; never sent upstream,
    /// logged or shown. Empty for a [`Principal::recorded`] caller.
    pub token: CallerToken,
    /// For a caller restored from a job's record (a query that waited for
    /// approval starts without its caller's token): the workload claims
    /// recorded when it asked.
    pub recorded_claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

/// The caller of a job that waits for approval, as recorded with the job:
/// enough to start it later, on any replica, without the caller's token.
/// Holds no secret: the verified principal and the workload claims Sluice
/// copies into its own assertions.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedCaller {
    #[serde(flatten)]
    pub verified: sluice_identity::Principal,
    /// The token's claims Sluice copies into its workload-identity
    /// assertion (`sluice_credentials::COPIED_CLAIMS`): repository,
    /// workflow, run, …
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl Principal {
    pub fn new(verified: sluice_identity::Principal, token: &str) -> Self {
        Self {
            name: format!("{}#{}", verified.issuer, verified.subject),
            verified,
            token: CallerToken(Arc::new(Zeroizing::new(token.to_string()))),
            recorded_claims: None,
        }
    }

    /// The caller of a recorded job, without a token.
    pub fn recorded(caller: &RecordedCaller) -> Self {
        Self {
            recorded_claims: Some(Arc::new(caller.claims.clone())),
            ..Self::new(caller.verified.clone(), "")
        }
    }

    /// What a job that waits needs to know of its caller to start later.
    pub fn record(&self) -> RecordedCaller {
        RecordedCaller {
            verified: self.verified.clone(),
            claims: self.workload_claims(),
        }
    }

    /// The workload claims ([`sluice_credentials::COPIED_CLAIMS`]) of the
    /// caller: of its verified token, or as recorded.
    pub fn workload_claims(&self) -> serde_json::Map<String, serde_json::Value> {
        match &self.recorded_claims {
            Some(claims) => serde_json::Map::clone(claims),
            None => crate::credential::workload_claims(self.token.secret()),
        }
    }

    /// The principal as policies see it.
    pub fn who(&self) -> sluice_policy::Who<'_> {
        sluice_policy::Who {
            name: &self.verified.name,
            groups: &self.verified.groups,
            issuer: &self.verified.issuer,
        }
    }
}

/// The caller's bearer token: zeroized when the last request holding it
/// ends; its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct CallerToken(Arc<Zeroizing<String>>);

impl CallerToken {
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CallerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerToken([redacted])")
    }
}

/// Largest `Authorization` header accepted; the verifier has its own,
/// configurable limit on the token below this.
const MAX_AUTHORIZATION_BYTES: usize = 64 * 1024;

/// A request the authenticate phase refused: why, in a bounded word (the
/// `reason` label of `sluice_auth_failures_total`, and the audit event's),
/// and the refusal to answer.
#[derive(Debug)]
pub struct Refusal {
    pub reason: &'static str,
    pub error: GatewayError,
}

impl From<Refusal> for GatewayError {
    fn from(refusal: Refusal) -> Self {
        refusal.error
    }
}

/// Who is asking, counted and audited: a refusal is counted by reason and
/// written as `auth.failure`; a token's first success as `auth.success`.
/// Every entry point (the BigQuery facade, MCP, the REST APIs) starts here.
pub async fn observed(
    gateway: &crate::Gateway,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<Principal, Refusal> {
    match authenticate(headers, &gateway.verifier).await {
        Ok(principal) => {
            gateway.audit.authenticated(&principal, request_id).await;
            Ok(principal)
        }
        Err(refusal) => {
            gateway.metrics.auth_failure(refusal.reason);
            let agent = headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            gateway
                .audit
                .auth_failed(refusal.reason, &refusal.error.message, agent, request_id)
                .await;
            Err(refusal)
        }
    }
}

/// Verifies the request's bearer token.
pub async fn authenticate(headers: &HeaderMap, verifier: &Verifier) -> Result<Principal, Refusal> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(Refusal {
            reason: "missing",
            error: GatewayError::unauthorized(
                "Request is missing required authentication credential: send `Authorization: Bearer <OIDC token>`. \
                 With the demo configuration, `sluice token --sub NAME --group agents` prints one.",
            ),
        });
    };
    let malformed = |why: &str| Refusal {
        reason: AuthFailure::Malformed.as_str(),
        error: refused(why),
    };
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(malformed("the Authorization header is too large"));
    }
    let text = value
        .to_str()
        .map_err(|_| malformed("the Authorization header is not text"))?;
    let token = match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(malformed("the Authorization header is not a bearer token")),
    };
    if token.is_empty() {
        return Err(malformed("the bearer token is empty"));
    }
    match verifier.verify(token).await {
        Ok(verified) => Ok(Principal::new(verified, token)),
        Err(err) => Err(Refusal {
            reason: err.kind.as_str(),
            error: refused(&err.reason),
        }),
    }
}

fn refused(why: &str) -> GatewayError {
    GatewayError::unauthorized(format!(
        "Request had invalid authentication credentials: {why}. \
         Send a current OIDC token from a trusted issuer as `Authorization: Bearer <token>`."
    ))
}
