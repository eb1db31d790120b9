//! The credential phase: the upstream token a call runs with.
//!
//! A token is minted for one principal, one job and the one token the
//! caller presented (or for a single dry run or metadata call), kept in
//! memory only, reused for that job's polling and pages while it is fresh,
//! and released and revoked once the job is done where Google allows it.
//! Tokens are never shared between principals or between two tokens of one
//! principal, nothing is minted for a caller no policy names, and a failure
//! to mint is a refusal (403) or an outage (503): there is no fall-back to
//! a broader credential.
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
use crate::quota::Quota;
use crate::secrets::StoredIssuer;

/// A token is used only while it has at least this long left.
const FRESH_MARGIN: Duration = Duration::from_secs(60);

/// How long a released token waits for calls still using it before it is
/// revoked anyway, unless [`Credentials::with_revoke_grace`] says (the
/// gateway sets it to the longest an upstream call may take).
const REVOKE_GRACE: Duration = Duration::from_secs(120);

/// What a cached token was minted for: one principal, one job, and the
/// very token the caller presented (hashed), so that two callers sharing a
/// subject never share an upstream token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Purpose {
    principal: String,
    job: String,
    caller_token: [u8; 32],
}

/// A token minted for one call (a dry run, a metadata read): released,
/// and revoked where Google allows it, when the call is over.
#[derive(Debug)]
pub struct CallAccess<'a> {
    credentials: &'a Credentials,
    key: String,
    pub access: Access,
}

impl Drop for CallAccess<'_> {
    fn drop(&mut self) {
        self.credentials.release(&self.key);
    }
}

/// A minted token and the minter that made it (and may revoke it).
#[derive(Debug, Clone)]
struct Minted {
    token: Arc<AccessToken>,
    minter: Arc<Minter>,
    /// For the audit event of its revocation.
    origin: Arc<Origin>,
}

/// Where a minted token came from: the credential, for whom, in which
/// audit session, for which job.
#[derive(Debug)]
struct Origin {
    credential: String,
    principal: String,
    session: String,
    job: String,
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
    /// Bounds mints per principal.
    quota: Option<Arc<Quota>>,
    /// Records every token minted and revoked (`token.minted`,
    /// `token.revoked`) and counts them.
    audit: Option<Arc<crate::audit::Audit>>,
}

/// A job's access, and the `token.minted` event of the token minted for
/// it, which is still to be written (none when no token was minted: a
/// cached one, or no credential).
#[derive(Debug)]
pub struct JobAccess {
    pub access: Access,
    pub minted: Option<sluice_store::AuditEvent>,
}

impl From<Access> for JobAccess {
    fn from(access: Access) -> Self {
        Self {
            access,
            minted: None,
        }
    }
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
            quota: None,
            audit: None,
        }
    }

    /// Every token minted and revoked is audited and counted.
    pub fn with_audit(mut self, audit: Arc<crate::audit::Audit>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Mints for one principal are bounded by `quota`.
    pub fn with_quota(mut self, quota: Arc<Quota>) -> Self {
        self.quota = Some(quota);
        self
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
    fn minter_for(
        &self,
        principal: &Principal,
    ) -> Result<Option<(&str, Arc<Minter>)>, GatewayError> {
        let Some(default) = &self.default else {
            return Ok(None);
        };
        match self.policy.credentials_for(&principal.who()) {
            Ok(None) => Ok(Some(("default", default.clone()))),
            Ok(Some(name)) => match self.named.get_key_value(name) {
                Some((name, minter)) => Ok(Some((name.as_str(), minter.clone()))),
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

    /// The access for the calls of `principal` on `job` (its start,
    /// polling and pages), minted once per job and caller token.
    ///
    /// A caller no policy names gets nothing: no token is minted and no
    /// upstream call made for a stranger (with a public issuer, anyone).
    pub async fn access(&self, principal: &Principal, job: &str) -> Result<Access, GatewayError> {
        let JobAccess { access, minted } = self.access_for_job(principal, job).await?;
        if let (Some(audit), Some(minted)) = (self.audit.clone(), minted) {
            // Off the call's path: what it records has happened.
            let guard = audit.detached();
            tokio::spawn(async move {
                audit.append_after(minted).await;
                drop(guard);
            });
        }
        Ok(access)
    }

    /// [`Self::access`] for a job that writes the `token.minted` event of
    /// a new token itself, with its write-ahead `query.started`
    /// ([`crate::audit::Audit::start_job`]): one commit for both.
    pub async fn access_for_job(
        &self,
        principal: &Principal,
        job: &str,
    ) -> Result<JobAccess, GatewayError> {
        let Some((credential, minter)) = self.minter_for(principal)? else {
            return Ok(JobAccess::from(Access::none()));
        };
        if self.policy.matching_names(&principal.who()).is_empty() {
            return Err(GatewayError::access_denied(format!(
                "Access Denied: rule default-deny: no policy names {}, so Sluice minted no credential and called nothing. \
                 Ask the Sluice administrators for a policy that covers your identity.",
                principal.verified.name
            )));
        }
        let purpose = Purpose {
            principal: principal.name.clone(),
            job: job.to_owned(),
            caller_token: caller_token_hash(principal.token.secret()),
        };
        if let Some(token) = self.cached(&purpose, &minter) {
            return Ok(JobAccess::from(Access::with_token(token)));
        }
        if let Some(quota) = &self.quota {
            quota.mint(&principal.name)?;
        }
        if let Some(issuer) = &self.issuer {
            issuer.refresh().await;
        }
        let minted = minter.mint(Some(&self.caller(principal))).await;
        if let Some(audit) = &self.audit {
            audit.metrics().token_minted(credential, minted.is_ok());
        }
        let token = minted.map_err(|err| {
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
        let at_ms = crate::jobs::now_ms();
        let origin = Arc::new(Origin {
            credential: credential.to_owned(),
            principal: principal.name.clone(),
            session: crate::audit::session_of(principal, at_ms),
            job: job.to_owned(),
        });
        let event = self
            .audit
            .as_ref()
            .map(|audit| audit.token_minted(principal, job, credential, &token));
        let minted = Minted {
            token: token.clone(),
            minter,
            origin,
        };
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let mut dropped: Vec<Minted> = Vec::new();
        tokens.retain(|_, m| {
            let fresh = m.token.is_fresh(Duration::ZERO);
            if !fresh {
                dropped.push(m.clone());
            }
            fresh
        });
        // A concurrent call for the same purpose may have minted too: the
        // token it cached is replaced, and revoked like any other.
        dropped.extend(tokens.insert(purpose, minted));
        drop(tokens);
        for minted in dropped {
            self.revoke_later(minted);
        }
        Ok(JobAccess {
            access: Access::with_token(token),
            minted: event,
        })
    }

    /// The access for one call that belongs to no job (a dry run, a
    /// metadata read): its token is released when the result is dropped.
    pub async fn access_once(&self, principal: &Principal) -> Result<CallAccess<'_>, GatewayError> {
        let key = format!("call-{}", uuid::Uuid::new_v4().simple());
        let access = self.access(principal, &key).await?;
        Ok(CallAccess {
            credentials: self,
            key,
            access,
        })
    }

    /// Who a token is minted for, as Sluice asserts it.
    fn caller(&self, principal: &Principal) -> Caller {
        let verified = &principal.verified;
        Caller {
            issuer: verified.issuer.clone(),
            subject: verified.subject.clone(),
            groups: verified.groups.clone(),
            policies: self.policy.matching_names(&principal.who()),
            claims: principal.workload_claims(),
        }
    }

    fn cached(&self, purpose: &Purpose, minter: &Arc<Minter>) -> Option<Arc<AccessToken>> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(purpose)
            .filter(|m| Arc::ptr_eq(&m.minter, minter) && m.token.is_fresh(FRESH_MARGIN))
            .map(|m| m.token.clone())
    }

    /// The job is done: its tokens (one per caller token that used it) are
    /// forgotten and, where Google allows it, revoked in the background
    /// once no call still uses them (or after the revoke grace). A later
    /// call for the same job mints a new one.
    pub fn release(&self, job: &str) {
        let mut released = Vec::new();
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|purpose, minted| {
                let keep = purpose.job != job;
                if !keep {
                    released.push(minted.clone());
                }
                keep
            });
        for minted in released {
            self.revoke_later(minted);
        }
    }

    /// Revokes a token no longer cached, once calls still holding it are
    /// done (or after the revoke grace).
    fn revoke_later(
        &self,
        Minted {
            token,
            minter,
            origin,
        }: Minted,
    ) {
        if !minter.revocable() {
            return;
        }
        let grace = self.revoke_grace;
        let audit = self.audit.clone();
        tokio::spawn(async move {
            let released = Instant::now();
            // Calls in flight hold their own reference to the token.
            while Arc::strong_count(&token) > 1 && released.elapsed() < grace {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // From here on a shutdown waits for the revocation's event.
            let guard = audit.as_ref().map(|audit| audit.detached());
            let revoked = minter.revoke(&token).await;
            if let Err(err) = &revoked {
                tracing::warn!(error = %err.message, "could not revoke a job's upstream token; it expires on its own");
            }
            if let Some(audit) = audit {
                audit
                    .token_revoked(
                        &origin.credential,
                        &origin.principal,
                        &origin.session,
                        &origin.job,
                        &token,
                        revoked.err().map(|e| e.message),
                    )
                    .await;
            }
            drop(guard);
        });
    }
}

/// SHA-256 of the caller's token: the cache key part that keeps two
/// callers' tokens apart without keeping the token itself.
pub(crate) fn caller_token_hash(token: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// The workload claims ([`COPIED_CLAIMS`]) of the caller's token. The
/// token was verified by the authenticate phase; only its payload is read
/// here, and nothing of it but those claims is kept.
pub(crate) fn workload_claims(token: &str) -> Map<String, Value> {
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
                issuers: Vec::new(),
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
        principal_with_token(subject, groups, "caller.jwt.token")
    }

    fn principal_with_token(subject: &str, groups: &[&str], token: &str) -> Principal {
        Principal::new(
            sluice_identity::Principal {
                name: subject.into(),
                issuer: "https://issuer.test".into(),
                subject: subject.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                run: None,
                session: None,
            },
            token,
        )
    }

    #[tokio::test]
    async fn the_policies_pick_the_credential_and_a_conflict_mints_nothing() {
        let (google, credentials) = credentials().await;
        let staff = principal("alice", &["staff"]);
        let finance = principal("bob", &["finance", "staff"]);
        let both = principal("carol", &["finance", "ops"]);

        let access = credentials.access(&staff, "job-1").await.unwrap();
        assert!(access.token().is_some());
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 1);
        assert_eq!(google.named_mints.load(Ordering::SeqCst), 0);

        credentials.access(&finance, "job-2").await.unwrap();
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 1);
        assert_eq!(google.named_mints.load(Ordering::SeqCst), 1);

        let refused = credentials.access(&both, "job-3").await.unwrap_err();
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

        let first = credentials.access(&alice, "job-1").await.unwrap();
        let again = credentials.access(&alice, "job-1").await.unwrap();
        let other = credentials.access(&mallory, "job-1").await.unwrap();
        let next_job = credentials.access(&alice, "job-2").await.unwrap();
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
        credentials.release("job-1");
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
        let after = credentials.access(&alice, "job-1").await.unwrap();
        assert_ne!(secret(&after), secret(&other));
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 4);
        // The release covered every caller's token for the job.
        drop(other);
        wait_for(&google.revokes, 2).await;
    }

    async fn wait_for(counter: &AtomicUsize, n: usize) {
        for _ in 0..100 {
            if counter.load(Ordering::SeqCst) >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(counter.load(Ordering::SeqCst), n);
    }

    /// Issue: ownership is more than a subject. Two runs presenting
    /// different tokens for one subject (every pull request of a
    /// repository, say) never share a job's upstream token.
    #[tokio::test]
    async fn two_tokens_of_one_subject_never_share_an_upstream_token() {
        let (google, credentials) = credentials().await;
        let main_run = principal_with_token("repo:acme/etl", &["staff"], "main.run.jwt");
        let branch_run = principal_with_token("repo:acme/etl", &["staff"], "branch.run.jwt");
        assert_eq!(main_run.name, branch_run.name);
        let a = credentials.access(&main_run, "job-1").await.unwrap();
        let b = credentials.access(&branch_run, "job-1").await.unwrap();
        assert_ne!(a.token().unwrap().secret(), b.token().unwrap().secret());
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 2);
    }

    /// Issue: nothing is minted for strangers.
    #[tokio::test]
    async fn a_caller_no_policy_names_gets_no_token() {
        let (google, credentials) = credentials().await;
        let stranger = principal("someone", &["some-other-repo"]);
        let refused = credentials.access(&stranger, "job-1").await.unwrap_err();
        assert_eq!(refused.reason, "accessDenied");
        assert!(refused.message.contains("default-deny"), "{refused}");
        assert!(credentials.access_once(&stranger).await.is_err());
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 0);
    }

    /// Issue: tokens die on every path. A token minted for one call is
    /// revoked when the call is over, and a token a concurrent mint
    /// replaced in the cache is revoked too.
    #[tokio::test]
    async fn one_call_tokens_and_replaced_tokens_are_revoked() {
        let (google, credentials) = credentials().await;
        let alice = principal("alice", &["staff"]);
        let once = credentials.access_once(&alice).await.unwrap();
        assert!(once.access.token().is_some());
        drop(once);
        wait_for(&google.revokes, 1).await;

        let (a, b) = tokio::join!(
            credentials.access(&alice, "job-9"),
            credentials.access(&alice, "job-9")
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(google.default_mints.load(Ordering::SeqCst), 3);
        drop((a, b));
        wait_for(&google.revokes, 2).await;
        credentials.release("job-9");
        wait_for(&google.revokes, 3).await;
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
