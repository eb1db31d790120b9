//! The credential phase: the upstream token a call runs with.
//!
//! A token is minted for one principal and one job (or, for metadata
//! calls, one principal's catalog reads), kept in memory only, reused for
//! that job's polling and pages while it is fresh, and revoked once the job
//! is done where Google allows it. Tokens are never shared between
//! principals, and a failure to mint is a refusal (403) or an outage (503):
//! there is no fall-back to a broader credential.
//!
//! A minter is told who the token is for as a [`Caller`]: the verified
//! identity, the policies that admit it and the workload claims of its
//! token. Workload identity puts that in an assertion Sluice signs; the
//! caller's token itself is never handed to a minter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sluice_credentials::{AccessToken, COPIED_CLAIMS, Caller, CredentialErrorKind, Minter};
use sluice_policy::PolicySet;
use sluice_warehouse::Access;

use crate::authenticate::Principal;
use crate::error::GatewayError;
use crate::secrets::StoredIssuer;

/// A token is used only while it has at least this long left.
const FRESH_MARGIN: Duration = Duration::from_secs(60);

/// How long a released token waits for calls still using it before it is
/// revoked anyway, unless [`Credentials::with_revoke_grace`] says (the
/// gateway sets it to the longest an upstream call may take).
const REVOKE_GRACE: Duration = Duration::from_secs(120);

/// What a cached token was minted for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Purpose {
    principal: String,
    /// The job key, or none for metadata calls.
    job: Option<String>,
}

/// A minted token and the minter that made it (and may revoke it).
#[derive(Debug, Clone)]
struct Minted {
    token: Arc<AccessToken>,
    minter: Arc<Minter>,
}

/// Mints and keeps upstream tokens.
#[derive(Debug, Default)]
pub struct Credentials {
    /// `warehouse.credentials`; none for a warehouse that needs no token.
    default: Option<Arc<Minter>>,
    /// `warehouse.named_credentials`, picked by policies.
    named: HashMap<String, Arc<Minter>>,
    /// Which policies pick which named credential.
    policy: Arc<PolicySet>,
    tokens: Mutex<HashMap<Purpose, Minted>>,
    revoke_grace: Duration,
    /// Sluice's issuer, when a credential uses workload identity.
    issuer: Option<Arc<StoredIssuer>>,
}

impl Credentials {
    /// For a warehouse that needs no credential.
    pub fn none() -> Self {
        Self::default()
    }

    /// `default` for principals whose policies name no credential, the
    /// `named` ones for those whose policies do.
    pub fn new(default: Minter, named: HashMap<String, Minter>, policy: Arc<PolicySet>) -> Self {
        Self {
            default: Some(Arc::new(default)),
            named: named
                .into_iter()
                .map(|(name, minter)| (name, Arc::new(minter)))
                .collect(),
            policy,
            tokens: Mutex::default(),
            revoke_grace: REVOKE_GRACE,
            issuer: None,
        }
    }

    /// Workload-identity credentials sign with `issuer`'s keys; they are
    /// read again before minting when a rotation may have changed them.
    pub fn with_issuer(mut self, issuer: Arc<StoredIssuer>) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// Sluice's issuer, whose discovery document and keys the gateway
    /// publishes.
    pub fn issuer(&self) -> Option<&Arc<StoredIssuer>> {
        self.issuer.as_ref()
    }

    /// Released tokens wait at most `grace` for calls still using them.
    pub fn with_revoke_grace(mut self, grace: Duration) -> Self {
        self.revoke_grace = grace;
        self
    }

    /// The minter for `principal`: the named credential its matching
    /// policies pick, else the default. Policies that pick different
    /// credentials are refused, never resolved by picking one.
    fn minter_for(&self, principal: &Principal) -> Result<Option<Arc<Minter>>, GatewayError> {
        let Some(default) = &self.default else {
            return Ok(None);
        };
        match self.policy.credentials_for(&principal.who()) {
            Ok(None) => Ok(Some(default.clone())),
            Ok(Some(name)) => match self.named.get(name) {
                Some(minter) => Ok(Some(minter.clone())),
                // Configuration validation rules this out.
                None => Err(GatewayError::internal(format!(
                    "the policies name the credential \"{name}\", which is not configured"
                ))),
            },
            Err(pairs) => {
                let named = pairs
                    .iter()
                    .map(|(policy, credential)| format!("policy {policy} uses {credential}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                tracing::warn!(principal = %principal.verified.name, conflict = %named, "policies pick different upstream credentials");
                Err(GatewayError::access_denied(format!(
                    "Access Denied: check policies.credentials: the policies matching {} pick different BigQuery credentials ({named}), \
                     so Sluice cannot tell which one to run with and ran nothing. \
                     Ask the Sluice administrators to make these policies agree or not overlap.",
                    principal.verified.name
                )))
            }
        }
    }

    /// The access for a call by `principal`, for `job` (or catalog reads).
    pub async fn access(
        &self,
        principal: &Principal,
        job: Option<&str>,
    ) -> Result<Access, GatewayError> {
        let Some(minter) = self.minter_for(principal)? else {
            return Ok(Access::none());
        };
        let purpose = Purpose {
            principal: principal.name.clone(),
            job: job.map(str::to_string),
        };
        if let Some(token) = self.cached(&purpose, &minter) {
            return Ok(Access::with_token(token));
        }
        if let Some(issuer) = &self.issuer {
            issuer.refresh().await;
        }
        let token = minter
            .mint(Some(&self.caller(principal)))
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
        tokens.retain(|_, m| m.token.is_fresh(Duration::ZERO));
        tokens.insert(
            purpose,
            Minted {
                token: token.clone(),
                minter,
            },
        );
        Ok(Access::with_token(token))
    }

    /// Who a token is minted for, as Sluice asserts it.
    fn caller(&self, principal: &Principal) -> Caller {
        let verified = &principal.verified;
        Caller {
            issuer: verified.issuer.clone(),
            subject: verified.subject.clone(),
            groups: verified.groups.clone(),
            policies: self.policy.matching_names(&principal.who()),
            claims: workload_claims(principal.token.secret()),
        }
    }

    fn cached(&self, purpose: &Purpose, minter: &Arc<Minter>) -> Option<Arc<AccessToken>> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(purpose)
            .filter(|m| Arc::ptr_eq(&m.minter, minter) && m.token.is_fresh(FRESH_MARGIN))
            .map(|m| m.token.clone())
    }

    /// The job is done: its token is forgotten and, where Google allows
    /// it, revoked in the background once no call still uses it (or after
    /// the revoke grace). A later call for the same job mints a new one.
    pub fn release(&self, principal: &str, job: &str) {
        let purpose = Purpose {
            principal: principal.to_string(),
            job: Some(job.to_string()),
        };
        let minted = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&purpose);
        let Some(Minted { token, minter }) = minted else {
            return;
        };
        if !minter.revocable() {
            return;
        }
        let grace = self.revoke_grace;
        tokio::spawn(async move {
            let released = Instant::now();
            // Calls in flight hold their own reference to the token.
            while Arc::strong_count(&token) > 1 && released.elapsed() < grace {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if let Err(err) = minter.revoke(&token).await {
                tracing::warn!(error = %err.message, "could not revoke a job's upstream token; it expires on its own");
            }
        });
    }
}

/// The workload claims ([`COPIED_CLAIMS`]) of the caller's token. The
/// token was verified by the authenticate phase; only its payload is read
/// here, and nothing of it but those claims is kept.
fn workload_claims(token: &str) -> Map<String, Value> {
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|part| URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let Some(Value::Object(mut claims)) = payload else {
        return Map::new();
    };
    claims.retain(|name, _| COPIED_CLAIMS.contains(&name.as_str()));
    claims
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::State;
    use axum::routing::post;
    use sluice_credentials::{Credential, Endpoints, MinterConfig, ServiceAccountKey};
    use sluice_policy::{RawAllow, RawGuardrails, RawPolicy, RawWho};

    use super::*;

    /// A token endpoint per credential (`/default/token`, `/named/token`)
    /// and a revocation endpoint, counting calls.
    #[derive(Default)]
    struct Google {
        default_mints: AtomicUsize,
        named_mints: AtomicUsize,
        revokes: AtomicUsize,
    }

    async fn start_google() -> (Arc<Google>, String) {
        async fn token(google: &AtomicUsize) -> axum::Json<serde_json::Value> {
            let n = google.fetch_add(1, Ordering::SeqCst);
            axum::Json(serde_json::json!({
                "access_token": format!("ya29.test-{n}"), "expires_in": 3600, "token_type": "Bearer"
            }))
        }
        let google = Arc::new(Google::default());
        let app = axum::Router::new()
            .route(
                "/default/token",
                post(|State(g): State<Arc<Google>>| async move { token(&g.default_mints).await }),
            )
            .route(
                "/named/token",
                post(|State(g): State<Arc<Google>>| async move { token(&g.named_mints).await }),
            )
            .route(
                "/revoke",
                post(|State(g): State<Arc<Google>>| async move {
                    g.revokes.fetch_add(1, Ordering::SeqCst);
                    "{}"
                }),
            )
            .with_state(google.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (google, url)
    }

    fn key_minter(google: &str, path: &str) -> Minter {
        let fixture = include_str!("../../sluice-credentials/tests/fixtures/service-account.json");
        let json = fixture.replace(
            "https://token-uri.invalid/token",
            &format!("{google}/{path}/token"),
        );
        let key = ServiceAccountKey::from_json(json.as_bytes()).unwrap();
        Minter::new(MinterConfig {
            credential: Credential::ServiceAccountKey { key: Arc::new(key) },
            endpoints: Endpoints {
                sts_url: format!("{google}/sts"),
                iam_credentials_url: google.to_string(),
                metadata_url: google.to_string(),
                revoke_url: Some(format!("{google}/revoke")),
            },
            scopes: vec!["https://www.googleapis.com/auth/bigquery".into()],
            lifetime: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(5),
        })
        .unwrap()
    }

    fn policy(name: &str, group: &str, credentials: Option<&str>) -> RawPolicy {
        RawPolicy {
            name: name.into(),
            who: RawWho {
                groups: vec![group.into()],
                principals: Vec::new(),
            },
            allow: RawAllow {
                read: vec!["proj".into()],
                statements: vec!["select".into()],
                ..RawAllow::default()
            },
            credentials: credentials.map(str::to_string),
            ..RawPolicy::default()
        }
    }

    async fn credentials() -> (Arc<Google>, Credentials) {
        let (google, url) = start_google().await;
        let policies = PolicySet::build(
            &[
                policy("staff", "staff", None),
                policy("finance", "finance", Some("finance-reader")),
                policy("ops", "ops", Some("ops-reader")),
            ],
            &RawGuardrails::default(),
        )
        .unwrap();
        let named = HashMap::from([
            ("finance-reader".to_string(), key_minter(&url, "named")),
            ("ops-reader".to_string(), key_minter(&url, "named")),
        ]);
        let credentials = Credentials::new(key_minter(&url, "default"), named, Arc::new(policies));
        (google, credentials)
    }

    fn principal(subject: &str, groups: &[&str]) -> Principal {
        Principal::new(
            sluice_identity::Principal {
                name: subject.into(),
                issuer: "https://issuer.test".into(),
                subject: subject.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                run: None,
                session: None,
            },
            "caller.jwt.token",
        )
    }

    #[tokio::test]
    async fn the_policies_pick_the_credential_and_a_conflict_mints_nothing() {
        let (google, credentials) = credentials().await;
        let staff = principal("alice", &["staff"]);
        let finance = principal("bob", &["finance", "staff"]);
        let both = principal("carol", &["finance", "ops"]);

        let access = credentials.access(&staff, Some("job-1")).await.unwrap();
        assert!(access.token().is_some());
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 1);
        assert_eq!(google.named_mints.load(Ordering::SeqCst), 0);

        credentials.access(&finance, Some("job-2")).await.unwrap();
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 1);
        assert_eq!(google.named_mints.load(Ordering::SeqCst), 1);

        let refused = credentials.access(&both, Some("job-3")).await.unwrap_err();
        let message = refused.to_string();
        assert!(message.contains("policies.credentials"), "{message}");
        assert!(message.contains("finance uses finance-reader"), "{message}");
        assert!(message.contains("ops uses ops-reader"), "{message}");
        assert_eq!(google.named_mints.load(Ordering::SeqCst), 1);
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_token_serves_one_principal_and_job_and_is_revoked_after_its_last_use() {
        let (google, credentials) = credentials().await;
        let alice = principal("alice", &["staff"]);
        let mallory = principal("mallory", &["staff"]);

        let first = credentials.access(&alice, Some("job-1")).await.unwrap();
        let again = credentials.access(&alice, Some("job-1")).await.unwrap();
        let other = credentials.access(&mallory, Some("job-1")).await.unwrap();
        let next_job = credentials.access(&alice, Some("job-2")).await.unwrap();
        let secret = |a: &Access| a.token().unwrap().secret().to_string();
        assert_eq!(secret(&first), secret(&again), "reused within the job");
        assert_ne!(
            secret(&first),
            secret(&other),
            "never shared between principals"
        );
        assert_ne!(
            secret(&first),
            secret(&next_job),
            "never shared between jobs"
        );
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 3);

        // The job is done while a call still holds its token: it is not
        // revoked under that call's feet…
        drop(again);
        credentials.release(&alice.name, "job-1");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(google.revokes.load(Ordering::SeqCst), 0);
        // …but as soon as the call is over.
        drop(first);
        for _ in 0..50 {
            if google.revokes.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(google.revokes.load(Ordering::SeqCst), 1);
        // A later call for the job mints afresh.
        let after = credentials.access(&alice, Some("job-1")).await.unwrap();
        assert_ne!(secret(&after), secret(&other));
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn the_caller_is_described_by_its_policies_and_its_workload_claims() {
        let policies = PolicySet::build(
            &[
                policy("staff", "staff", None),
                policy("finance", "finance", None),
                policy("ops", "ops", None),
            ],
            &RawGuardrails::default(),
        )
        .unwrap();
        let bob = principal("bob", &["finance", "staff"]);
        assert_eq!(policies.matching_names(&bob.who()), ["staff", "finance"]);
        let nobody = principal("eve", &["visitors"]);
        assert!(policies.matching_names(&nobody.who()).is_empty());

        let payload = URL_SAFE_NO_PAD.encode(
            serde_json::json!({
                "iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/a",
                "repository": "acme/a", "run_id": "7", "email": "dev@acme.example",
            })
            .to_string(),
        );
        let claims = workload_claims(&format!("header.{payload}.signature"));
        assert_eq!(
            Value::Object(claims),
            serde_json::json!({"repository": "acme/a", "run_id": "7"})
        );
        assert!(workload_claims("not a token").is_empty());
    }
}
