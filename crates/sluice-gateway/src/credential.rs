//! The credential phase: the upstream token a call runs with.
//!
//! A token is minted for one principal and one job (or, for metadata
//! calls, one principal's catalog reads), kept in memory only, reused for
//! that job's polling and pages while it is fresh, and revoked once the job
//! is done where Google allows it. Tokens are never shared between
//! principals, and a failure to mint is a refusal (403) or an outage (503):
//! there is no fall-back to a broader credential.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_credentials::{AccessToken, CredentialErrorKind, Minter};
use sluice_warehouse::Access;

use crate::authenticate::Principal;
use crate::error::GatewayError;

/// A token is used only while it has at least this long left.
const FRESH_MARGIN: Duration = Duration::from_secs(60);

/// What a cached token was minted for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Purpose {
    principal: String,
    /// The job key, or none for metadata calls.
    job: Option<String>,
}

/// Mints and keeps upstream tokens.
#[derive(Debug, Default)]
pub struct Credentials {
    minter: Option<Arc<Minter>>,
    tokens: Mutex<HashMap<Purpose, Arc<AccessToken>>>,
}

impl Credentials {
    /// For a warehouse that needs no credential.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn new(minter: Minter) -> Self {
        Self {
            minter: Some(Arc::new(minter)),
            tokens: Mutex::default(),
        }
    }

    /// The access for a call by `principal`, for `job` (or catalog reads).
    pub async fn access(
        &self,
        principal: &Principal,
        job: Option<&str>,
    ) -> Result<Access, GatewayError> {
        let Some(minter) = &self.minter else {
            return Ok(Access::none());
        };
        let purpose = Purpose {
            principal: principal.name.clone(),
            job: job.map(str::to_string),
        };
        if let Some(token) = self.cached(&purpose) {
            return Ok(Access::with_token(token));
        }
        let token = minter
            .mint(Some(principal.token.secret()))
            .await
            .map_err(|err| {
                tracing::warn!(principal = %principal.verified.name, kind = ?err.kind, error = %err.message, "could not mint an upstream token");
                match err.kind {
                    CredentialErrorKind::Unavailable => GatewayError::unavailable(format!(
                        "Sluice could not obtain a BigQuery credential for this query (check credential.mint): {}. Try again shortly.",
                        err.message
                    )),
                    _ => GatewayError::access_denied(format!(
                        "Access Denied: check credential.mint: Google refused a BigQuery credential for {}: {}. \
                         Ask the Sluice administrators to check the workload identity provider or service account permissions.",
                        principal.verified.name, err.message
                    )),
                }
            })?;
        let token = Arc::new(token);
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, t| t.is_fresh(Duration::ZERO));
        tokens.insert(purpose, token.clone());
        Ok(Access::with_token(token))
    }

    fn cached(&self, purpose: &Purpose) -> Option<Arc<AccessToken>> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(purpose)
            .filter(|t| t.is_fresh(FRESH_MARGIN))
            .cloned()
    }

    /// The job is done: its token is forgotten and, where Google allows
    /// it, revoked in the background. A later call for the same job mints
    /// a new one.
    pub fn release(&self, principal: &str, job: &str) {
        let purpose = Purpose {
            principal: principal.to_string(),
            job: Some(job.to_string()),
        };
        let token = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&purpose);
        let (Some(token), Some(minter)) = (token, &self.minter) else {
            return;
        };
        if !minter.revocable() {
            return;
        }
        let minter = minter.clone();
        tokio::spawn(async move {
            if let Err(err) = minter.revoke(&token).await {
                tracing::warn!(error = %err.message, "could not revoke a job's upstream token; it expires on its own");
            }
        });
    }
}
