//! The job lifecycle: create a job record, start it in the warehouse,
//! hold a caller while it runs, and settle its outcome in the store.
//!
//! The store is the source of truth for a job's state, so any replica (or
//! this one after a restart) answers for it; the warehouse only knows how
//! far its execution got. A job is settled by whoever sees it finish
//! first: the background watcher started with it, or a caller holding on
//! `getQueryResults`. Settling is idempotent.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use serde_json::json;
use sluice_policy::PolicySet;
use sluice_store::{JobRecord, JobState, Store};
use sluice_warehouse::{Access, QueryRequest, QueryStatus, Warehouse, WarehouseErrorKind};

use crate::Principal;
use crate::authenticate::RecordedCaller;
use crate::credential::{Credentials, JobAccess};
use crate::error::GatewayError;
use crate::exit::MaskPlan;
use crate::quota::Quota;

mod finished;
pub use finished::FinishedJobs;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A fresh job id in BigQuery's style (`job_…`).
pub fn new_job_id() -> String {
    format!("job_{}", uuid::Uuid::new_v4().simple())
}

/// Job ids: letters, digits, `_` and `-`, at most 1024 characters.
pub fn check_job_id(id: &str) -> Result<(), GatewayError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(GatewayError::invalid(format!(
            "Invalid job ID \"{}\". Job IDs must be alphanumeric (plus underscores and dashes) and must be at most 1024 characters long.",
            id.chars().take(100).collect::<String>()
        )))
    }
}

/// What a finished job adds to the budgets it was admitted under.
fn usage(job: &JobRecord, bytes: u64, rows: u64) -> Vec<sluice_store::UsageAdd> {
    let Ok(request) = StoredRequest::of(job) else {
        return Vec::new();
    };
    request
        .budgets
        .into_iter()
        .map(|counted| sluice_store::UsageAdd {
            budget: counted.budget,
            key: counted.key,
            period: counted.period,
            bytes,
            rows,
        })
        .collect()
}

/// The longest a job can wait for approval (the longest rule timeout) and
/// a minute more: after it, a waiting job nobody settled stops counting.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600 + 60);

/// How long after its start a job may still be unknown to the warehouse:
/// the store says RUNNING just before the warehouse is handed the job.
const STARTING_MS: i64 = 30_000;

/// Creates, runs, holds and settles jobs.
#[derive(Debug, Clone)]
pub struct Jobs {
    pub store: Arc<dyn Store>,
    /// Where a job's write-ahead audit event goes before it is sent.
    pub audit: Arc<crate::audit::Audit>,
    pub warehouse: Arc<dyn Warehouse>,
    pub credentials: Arc<Credentials>,
    /// Who may act on a job: a caller one of the job's admitting policies
    /// admits now.
    pub policy: Arc<PolicySet>,
    /// Bounds each principal's running jobs.
    pub quota: Arc<Quota>,
    /// Woken on every state change this process makes, so a poll held on
    /// a job that is not executing re-reads the store at once.
    pub changed: Arc<tokio::sync::Notify>,
    /// Whether a finished job that lists no table, though its SQL reads
    /// some, fails its cross-check (real BigQuery always lists them).
    pub require_tables: bool,
    /// The jobs (warehouse keys) a watcher of this process is following:
    /// a poll held on one of them waits for the watcher's settlement
    /// instead of asking the warehouse again.
    pub watching: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Finished jobs answered from memory: a DONE record never changes.
    pub finished: Arc<FinishedJobs>,
    pub location: String,
}

/// Labels that name who asked, for the warehouse's own job history. Sluice
/// writes every one of them on every job (callers may not set keys
/// beginning with `sluice`): the principal's name, its issuer, a hash of
/// issuer and subject (so two issuers' equal names, or names that differ
/// only in characters a label cannot hold, never look alike), the session
/// and CI run (`none` when the token names none), and the job id the
/// client knows.
pub fn attribution(
    principal: &Principal,
    job_id: &str,
) -> std::collections::BTreeMap<String, String> {
    let verified = &principal.verified;
    let subject = subject_hash(&verified.issuer, &verified.subject);
    let issuer = verified
        .issuer
        .split_once("://")
        .map_or(verified.issuer.as_str(), |(_, rest)| rest);
    let pairs = vec![
        ("sluice-principal", verified.name.as_str()),
        ("sluice-issuer", issuer),
        ("sluice-subject", subject.as_str()),
        (
            "sluice-session",
            verified.session.as_deref().unwrap_or("none"),
        ),
        ("sluice-run", verified.run.as_deref().unwrap_or("none")),
        ("sluice-job", job_id),
    ];
    sluice_bigquery::labels(pairs)
}

/// The first 80 bits of SHA-256 over `issuer#subject`, in hex: fits a label
/// value and tells principals apart where their names cannot.
fn subject_hash(issuer: &str, subject: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{issuer}#{subject}").as_bytes(),
    );
    digest.as_ref()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A job in [`Jobs::watching`] while its watcher runs; dropped, it leaves
/// the set, so polls ask the warehouse themselves again.
struct Watched {
    set: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    key: String,
}

impl Watched {
    fn new(set: &Arc<std::sync::Mutex<std::collections::HashSet<String>>>, key: &str) -> Self {
        set.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned());
        Self {
            set: set.clone(),
            key: key.to_owned(),
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// What a new job is.
#[derive(Debug)]
pub struct NewJob {
    pub project_id: String,
    pub job_id: String,
    pub request_id: Option<String>,
    pub configuration: serde_json::Value,
    pub query: QueryRequest,
    /// The most result rows the policy allows.
    pub max_rows: Option<u64>,
    /// How the result's columns are masked.
    pub mask: MaskPlan,
    /// No dry run was made: cross-check the finished job before any row
    /// leaves.
    pub check_after_run: bool,
    /// For a job that waits for approval: the request it waits on and
    /// its caller, so that it can start later without the caller's token.
    pub parked: Option<Parked>,
    /// The budgets the job counts toward when it finishes.
    pub budgets: Vec<crate::access::Counted>,
}

/// What a job that waits for approval records: the approval request, what
/// it waits for in words, and the caller it will run as.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Parked {
    /// The approval request's id (`apr_…`).
    pub approval: String,
    /// "waiting for approval by …": the job's status message while PENDING.
    pub message: String,
    pub caller: RecordedCaller,
}

/// What a job was admitted to run, exactly as decided: the query with
/// its capped `maximumBytesBilled`, `jobTimeoutMs` and Sluice's labels,
/// the policy's `max_rows`, and a hash of the normalized SQL and its
/// parameters. Stored with the job (versioned), so any replica can start a
/// recorded job from the record alone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredRequest {
    pub version: u32,
    pub query: QueryRequest,
    pub max_rows: Option<u64>,
    /// SHA-256 (hex) of the SQL as the parser prints it back (so spacing
    /// and keyword case do not count) and of the parameters.
    pub sql_hash: String,
    /// How the result's columns are masked, as decided.
    #[serde(default)]
    pub mask: MaskPlan,
    /// No dry run was made (`dry_run: when_needed`): the finished job's
    /// tables and statement type are cross-checked before any row leaves.
    #[serde(default)]
    pub check_after_run: bool,
    /// The approval the job waits for, if it was parked.
    #[serde(default)]
    pub parked: Option<Parked>,
    /// The budgets the job counts toward when it finishes (whichever
    /// replica settles it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<crate::access::Counted>,
    /// The audit session of the caller who asked, for the events of the
    /// job's end (written by whichever replica settles it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub audit_session: String,
    /// The caller's CI-run claims, for the same events.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub audit_claims: serde_json::Map<String, serde_json::Value>,
}

impl StoredRequest {
    const VERSION: u32 = 1;

    fn new(new: &NewJob) -> Self {
        let query = new.query.clone();
        let normalized = match sluice_sql::parse(&query.sql) {
            Ok(statements) => statements
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(";\n"),
            Err(_) => query.sql.trim().to_owned(),
        };
        let parameters =
            serde_json::to_string(&(query.parameter_mode, &query.parameters)).unwrap_or_default();
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            format!("{normalized}\n{parameters}").as_bytes(),
        );
        let sql_hash = sluice_store::audit::hex(digest.as_ref());
        Self {
            version: Self::VERSION,
            query,
            max_rows: new.max_rows,
            sql_hash,
            mask: new.mask.clone(),
            check_after_run: new.check_after_run,
            parked: new.parked.clone(),
            budgets: new.budgets.clone(),
            audit_session: String::new(),
            audit_claims: serde_json::Map::new(),
        }
    }

    /// [`StoredRequest::new`] for `principal`'s job.
    fn of_caller(new: &NewJob, principal: &Principal) -> Self {
        Self {
            audit_session: crate::audit::session_of(principal, now_ms()),
            audit_claims: principal.workload_claims(),
            ..Self::new(new)
        }
    }

    /// The request recorded with `job`.
    pub fn of(job: &JobRecord) -> Result<Self, GatewayError> {
        let stored: Self = job
            .request
            .clone()
            .ok_or_else(|| {
                GatewayError::internal(format!("job {} has no recorded request", job.job_id))
            })
            .and_then(|v| serde_json::from_value(v).map_err(GatewayError::internal))?;
        if stored.version != Self::VERSION {
            return Err(GatewayError::internal(format!(
                "job {} was recorded with request version {}",
                job.job_id, stored.version
            )));
        }
        Ok(stored)
    }
}

impl Jobs {
    /// Records the job (PENDING), then runs it. A job id already in use is
    /// `duplicate` (409): nothing runs, and the token minted meanwhile is
    /// revoked unused. A query the warehouse refuses at planning leaves a
    /// DONE job carrying the error, as BigQuery does.
    pub async fn start(
        &self,
        principal: &Principal,
        new: NewJob,
    ) -> Result<JobRecord, GatewayError> {
        let mut job = self.admit(principal, new)?;
        // The job's token is minted while its record is written, not
        // after. A record refused (the job id is in use) releases the
        // token at once, which revokes it.
        let (recorded, minted) = tokio::join!(
            self.write(&job),
            self.credentials
                .access_for_job(principal, &job.warehouse_key)
        );
        if let Err(err) = recorded {
            self.credentials.release(&job.warehouse_key);
            if let Ok(JobAccess {
                minted: Some(minted),
                ..
            }) = minted
            {
                self.audit.append_after(minted).await;
            }
            return Err(err);
        }
        self.run_as(principal, &mut job, false, Some(minted))
            .await?;
        Ok(job)
    }

    /// Records an admitted job as PENDING, with the exact request decided.
    /// It counts against its principal's running jobs from now until it is
    /// settled (or its longest run plus a minute, if nobody settles it).
    pub async fn record(
        &self,
        principal: &Principal,
        new: NewJob,
    ) -> Result<JobRecord, GatewayError> {
        let job = self.admit(principal, new)?;
        self.write(&job).await?;
        Ok(job)
    }

    /// The record of an admitted job, counted against its principal's
    /// running (or waiting) jobs; not yet written.
    fn admit(&self, principal: &Principal, mut new: NewJob) -> Result<JobRecord, GatewayError> {
        let warehouse_key = uuid::Uuid::new_v4().simple().to_string();
        new.query.labels.extend(attribution(principal, &new.job_id));
        let longest =
            Duration::from_millis(new.query.job_timeout_ms.unwrap_or(0)) + Duration::from_secs(60);
        let request = StoredRequest::of_caller(&new, principal);
        let job = JobRecord {
            project_id: new.project_id,
            job_id: new.job_id,
            location: self.location.clone(),
            principal: principal.name.clone(),
            state: JobState::Pending,
            request_id: new.request_id,
            warehouse_key,
            configuration: new.configuration,
            statistics: None,
            error: None,
            created_ms: now_ms(),
            started_ms: None,
            ended_ms: None,
            max_rows: new.max_rows,
            admitted_by: self.policy.matching_names(&principal.who()),
            admitted_groups: principal.verified.groups.clone(),
            request: Some(serde_json::to_value(&request).map_err(GatewayError::internal)?),
        };
        if request.parked.is_some() {
            // It waits for a reviewer: not running until approved.
            self.quota
                .start_waiting(&principal.name, &job.warehouse_key, MAX_WAIT)?;
        } else {
            self.quota
                .start_job(&principal.name, &job.warehouse_key, longest)?;
        }
        Ok(job)
    }

    /// Writes an admitted job's record. A job id already in use (or a
    /// store failure): nothing runs, and the job no longer counts.
    async fn write(&self, job: &JobRecord) -> Result<(), GatewayError> {
        if let Err(err) = self.store.insert_job(job).await {
            self.quota.finished(&job.principal, &job.warehouse_key);
            return Err(err.into());
        }
        self.changed.notify_waiters();
        Ok(())
    }

    /// Runs a job that waited for approval and was approved, as its
    /// recorded caller. Nobody waits on this call to retry it, so a
    /// failure to start ends the job with the error (its caller's next
    /// poll reads it) instead of forgetting it.
    pub async fn run_approved(
        &self,
        principal: &Principal,
        job: &mut JobRecord,
    ) -> Result<(), GatewayError> {
        self.run_as(principal, job, true, None).await
    }

    /// Runs a recorded PENDING job from its record: a token for it (or
    /// `minted`, the one asked for already), the transition to RUNNING (a
    /// conditional update: of two replicas only one starts it), then the
    /// warehouse. A job someone else started or ended is left as they
    /// left it (`job` is re-read).
    async fn run_as(
        &self,
        principal: &Principal,
        job: &mut JobRecord,
        approved: bool,
        minted: Option<Result<JobAccess, GatewayError>>,
    ) -> Result<(), GatewayError> {
        let request = StoredRequest::of(job)?;
        if approved {
            let longest = Duration::from_millis(request.query.job_timeout_ms.unwrap_or(0))
                + Duration::from_secs(60);
            self.quota
                .approved(&principal.name, &job.warehouse_key, longest);
        }
        // No credential, no job: the record is forgotten, so the caller can
        // simply try again (an approved job ends with the error instead).
        let minted = match minted {
            Some(minted) => minted,
            None => {
                self.credentials
                    .access_for_job(principal, &job.warehouse_key)
                    .await
            }
        };
        let JobAccess { access, minted } = match minted {
            Ok(job_access) => job_access,
            Err(err) if approved => {
                job.error = Some(err.error_result());
                return self.finish(job).await.map(drop);
            }
            Err(err) => {
                self.forget(job).await?;
                return Err(err);
            }
        };
        let started = now_ms();
        // Write-ahead: no event, no query. The job becomes RUNNING in the
        // transaction that records its `query.started`.
        match self
            .audit
            .start_job(principal, job, started, &request, &access, minted)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                self.credentials.release(&job.warehouse_key);
                if let Some(stored) = self.store.get_job(&job.project_id, &job.job_id).await? {
                    *job = stored;
                }
                return Ok(());
            }
            Err(err) => {
                // Ended at its start, like a job the warehouse could not
                // plan: it has a start time and no statistics of a run.
                self.credentials.release(&job.warehouse_key);
                job.started_ms = Some(started);
                job.error = Some(err.error_result());
                self.finish(job).await?;
                return match approved {
                    true => Ok(()),
                    false => Err(err),
                };
            }
        }
        job.state = JobState::Running;
        job.started_ms = Some(started);
        match self
            .warehouse
            .start_query(&access, &job.warehouse_key, &request.query)
            .await
        {
            Ok(()) => {
                // Waiters wake once the warehouse knows the job.
                self.changed.notify_waiters();
                self.watch(job.clone(), access);
                Ok(())
            }
            Err(err) => {
                let err = GatewayError::from(err);
                if err.is_retryable() && !approved {
                    // Nothing exists upstream: the job is forgotten and the
                    // caller told to try again, under the same id if it
                    // likes (a failed job would make clients resubmit).
                    self.forget(job).await?;
                    return Err(err);
                }
                job.error = Some(err.error_result());
                self.finish(job).await.map(drop)
            }
        }
    }

    /// Ends a job that never ran (refused by a reviewer, not approved in
    /// time) with `error`; a job already DONE stays as it was.
    pub async fn refuse(
        &self,
        job: &mut JobRecord,
        error: &GatewayError,
    ) -> Result<(), GatewayError> {
        if job.state == JobState::Done {
            return Ok(());
        }
        job.error = Some(error.error_result());
        self.finish(job).await.map(drop)
    }

    /// Forgets a job that never ran: its record, its tokens, its place in
    /// its principal's running jobs.
    pub async fn forget(&self, job: &JobRecord) -> Result<(), GatewayError> {
        self.credentials.release(&job.warehouse_key);
        self.quota.finished(&job.principal, &job.warehouse_key);
        self.store.delete_job(&job.project_id, &job.job_id).await?;
        Ok(())
    }

    /// Records a job that failed before it could start (the warehouse
    /// could not plan it): a DONE job carrying the error.
    pub async fn record_failed(
        &self,
        principal: &Principal,
        new: NewJob,
        error: &GatewayError,
    ) -> Result<JobRecord, GatewayError> {
        let now = now_ms();
        let request = serde_json::to_value(StoredRequest::of_caller(&new, principal))
            .map_err(GatewayError::internal)?;
        let job = JobRecord {
            project_id: new.project_id,
            job_id: new.job_id,
            location: self.location.clone(),
            principal: principal.name.clone(),
            state: JobState::Done,
            request_id: new.request_id,
            warehouse_key: uuid::Uuid::new_v4().simple().to_string(),
            configuration: new.configuration,
            statistics: None,
            error: Some(error.error_result()),
            created_ms: now,
            started_ms: Some(now),
            ended_ms: Some(now),
            max_rows: new.max_rows,
            admitted_by: self.policy.matching_names(&principal.who()),
            admitted_groups: principal.verified.groups.clone(),
            request: Some(request),
        };
        self.store.insert_job(&job).await?;
        Ok(job)
    }

    /// Settles the job in the background once the warehouse finishes it.
    /// It polls with the token the job started with; once that expires,
    /// callers polling with their own tokens settle the job instead.
    fn watch(&self, mut job: JobRecord, access: Access) {
        let jobs = self.clone();
        let watched = Watched::new(&self.watching, &job.warehouse_key);
        tokio::spawn(async move {
            let _watched = watched;
            loop {
                match jobs
                    .warehouse
                    .wait_query(&access, &job.warehouse_key, Duration::from_secs(60))
                    .await
                {
                    Ok(QueryStatus::Running) => continue,
                    Ok(status) => {
                        if let Err(err) = jobs.settle(&mut job, status).await {
                            tracing::error!(job = %job.job_id, %err, "could not record a finished job");
                        }
                        return;
                    }
                    Err(err) => {
                        // Callers polling with their own tokens settle it.
                        let err = crate::exit::scrub(&err.to_string());
                        tracing::warn!(job = %job.job_id, %err, "lost track of a running job");
                        jobs.credentials.release(&job.warehouse_key);
                        return;
                    }
                }
            }
        });
    }

    /// Whether a watcher of this process follows the job.
    fn is_watched(&self, warehouse_key: &str) -> bool {
        self.watching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(warehouse_key)
    }

    /// Whether `principal` may act on `job`: the same principal (issuer
    /// and subject), and one of the policies that admitted the job admits
    /// the caller now. Many runs share a subject (every pull request of a
    /// repository, every job of a GitHub environment), so the subject
    /// alone does not make a run the job's owner.
    pub fn owns(&self, principal: &Principal, job: &JobRecord) -> bool {
        self.owner_check(principal)(job)
    }

    /// [`Self::owns`] for many jobs of one caller: the policies that admit
    /// the caller now are matched once.
    pub fn owner_check<'a>(&self, principal: &'a Principal) -> impl Fn(&JobRecord) -> bool + 'a {
        let now = self.policy.matching_names(&principal.who());
        move |job| {
            job.principal == principal.name
                && job.admitted_by.iter().any(|policy| now.contains(policy))
        }
    }

    /// Loads a job the caller owns ([`Self::owns`]); any other job does
    /// not exist for them.
    pub async fn load(
        &self,
        principal: &Principal,
        project_id: &str,
        job_id: &str,
    ) -> Result<JobRecord, GatewayError> {
        if let Some(finished) = self.finished.get(project_id, job_id) {
            self.check_owner(principal, &finished.record)?;
            return Ok(finished.record.clone());
        }
        let job = self.store.get_job(project_id, job_id).await?;
        if let Some(job) = &job {
            self.finished.remember(job);
        }
        match job {
            Some(job) => {
                self.check_owner(principal, &job)?;
                Ok(job)
            }
            None => Err(self.not_found(project_id, job_id)),
        }
    }

    /// jobs.get: the resource of a job the caller owns, as `render`
    /// encodes it. A finished job's resource is rendered once and its
    /// bytes answer every later poll ([`FinishedJobs`]).
    pub async fn resource(
        &self,
        principal: &Principal,
        project_id: &str,
        job_id: &str,
        render: impl FnOnce(&JobRecord) -> Bytes,
    ) -> Result<Bytes, GatewayError> {
        if let Some(finished) = self.finished.get(project_id, job_id) {
            self.check_owner(principal, &finished.record)?;
            return Ok(finished.resource(render));
        }
        let job = self.load(principal, project_id, job_id).await?;
        Ok(render(&job))
    }

    /// A job that is not the caller's does not exist for them; one that
    /// is may have a watcher to resume.
    fn check_owner(&self, principal: &Principal, job: &JobRecord) -> Result<(), GatewayError> {
        if !self.owns(principal, job) {
            return Err(self.not_found(&job.project_id, &job.job_id));
        }
        self.warehouse.resume(&job.warehouse_key, &job.project_id);
        Ok(())
    }

    fn not_found(&self, project_id: &str, job_id: &str) -> GatewayError {
        GatewayError::not_found(format!(
            "Not found: Job {project_id}:{}.{job_id}",
            self.location
        ))
    }

    /// Waits up to `hold` for an unfinished job, then returns it as it
    /// stands. Never holds longer: clients poll again.
    pub async fn hold(
        &self,
        principal: &Principal,
        mut job: JobRecord,
        hold: Duration,
    ) -> Result<JobRecord, GatewayError> {
        let deadline = tokio::time::Instant::now() + hold;
        // A job that is not executing (recorded, or waiting for a decision)
        // is waited for on the store, never asked of the warehouse; so is
        // one this process's watcher follows: it settles the job, and one
        // upstream call per job serves every poll.
        while job.state == JobState::Pending
            || (job.state == JobState::Running && self.is_watched(&job.warehouse_key))
        {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Listening before looking: a job settled after the look below
            // wakes this wait, and one settled before it (by a watcher
            // quicker than the caller) is found by it, not waited for.
            changed.as_mut().enable();
            // A job settled here is remembered before its waiters wake: no
            // store read for it.
            if let Some(finished) = self.finished.get(&job.project_id, &job.job_id) {
                job = finished.record.clone();
                continue;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(job);
            }
            // Woken by a change here, or re-read now and then for a change
            // another replica made.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(250)), changed).await;
            if let Some(finished) = self.finished.get(&job.project_id, &job.job_id) {
                job = finished.record.clone();
                continue;
            }
            match self.store.get_job(&job.project_id, &job.job_id).await? {
                Some(stored) => job = stored,
                None => return Err(self.not_found(&job.project_id, &job.job_id)),
            }
        }
        if job.state == JobState::Done {
            return Ok(job);
        }
        let hold = deadline.saturating_duration_since(tokio::time::Instant::now());
        let access = self
            .credentials
            .access(principal, &job.warehouse_key)
            .await?;
        let status = match self
            .warehouse
            .wait_query(&access, &job.warehouse_key, hold)
            .await
        {
            Ok(status) => status,
            // Started in the store a moment ago, and the warehouse is still
            // being handed it (here or on another replica).
            Err(err)
                if err.kind == WarehouseErrorKind::NotFound
                    && job
                        .started_ms
                        .is_some_and(|t| now_ms().saturating_sub(t) < STARTING_MS) =>
            {
                QueryStatus::Running
            }
            Err(err) if err.kind == WarehouseErrorKind::NotFound => {
                // The warehouse no longer knows the execution (a restart
                // interrupted it, or BigQuery never started or no longer
                // keeps it): the job ends, it does not hang.
                QueryStatus::Failed(sluice_warehouse::WarehouseError::new(
                    WarehouseErrorKind::Stopped,
                    "The job is no longer known to the warehouse (interrupted by a restart of Sluice, or expired); run the query again.",
                ))
            }
            Err(err) => return Err(err.into()),
        };
        if status.is_finished() {
            self.settle(&mut job, status).await?;
        }
        Ok(job)
    }

    /// Records a finished job's outcome.
    pub async fn settle(
        &self,
        job: &mut JobRecord,
        status: QueryStatus,
    ) -> Result<(), GatewayError> {
        match status {
            QueryStatus::Running => return Ok(()),
            QueryStatus::Done(outcome) => {
                job.error = self.check_finished(job, &outcome).err().or_else(|| job
                    .max_rows
                    .filter(|limit| outcome.total_rows > *limit)
                    .map(|limit| {
                        GatewayError::access_denied(format!(
                            "Access Denied: rule limits.max_rows: the result has {} rows and your policy allows at most {limit}; \
                             no rows were returned. Add a LIMIT, filter or aggregate, or ask for a higher limit.",
                            outcome.total_rows
                        ))
                        .error_result()
                    }));
                job.statistics =
                    Some(serde_json::to_value(&outcome).map_err(GatewayError::internal)?);
                // Bytes are billed whatever became of the rows; rows count
                // only when they could be read.
                let rows = if job.error.is_none() {
                    outcome.total_rows
                } else {
                    0
                };
                let usage = usage(job, outcome.total_bytes_processed, rows);
                return self.finish_counting(job, &usage).await.map(drop);
            }
            QueryStatus::Failed(err) => {
                let mut err = GatewayError::from(err);
                // A job that read a masked column loses the values its
                // error quotes.
                if let Ok(request) = StoredRequest::of(job) {
                    err.message = crate::exit::scrub_for(&err.message, &request.mask);
                }
                job.error = Some(json!({"reason": err.reason, "message": err.message}));
            }
        }
        self.finish(job).await.map(drop)
    }

    /// For a job that ran without a dry run: the cross-check of its
    /// tables, routines and statement type against the analysis of its
    /// SQL. A mismatch is the job's error (`errorResult`), so none of its
    /// rows leave.
    fn check_finished(
        &self,
        job: &JobRecord,
        outcome: &sluice_warehouse::QueryOutcome,
    ) -> Result<(), serde_json::Value> {
        let request = StoredRequest::of(job).map_err(|err| err.error_result())?;
        if !request.check_after_run {
            return Ok(());
        }
        crate::estimate::check_finished(
            &request.query,
            outcome,
            &job.principal,
            self.require_tables,
        )
        .map_err(|err| err.error_result())
    }

    /// Ends a job (DONE, with its statistics or error): a conditional
    /// update, so of several callers ending one job exactly one wins and
    /// the others read its outcome back. True for the winner.
    async fn finish(&self, job: &mut JobRecord) -> Result<bool, GatewayError> {
        self.finish_counting(job, &[]).await
    }

    /// [`Jobs::finish`], adding `usage` to the job's budgets if this call
    /// is the one that ends it (in the same store transaction).
    async fn finish_counting(
        &self,
        job: &mut JobRecord,
        usage: &[sluice_store::UsageAdd],
    ) -> Result<bool, GatewayError> {
        if job.error.is_some() {
            // No pages will be read: the job's tokens are done with.
            self.credentials.release(&job.warehouse_key);
        }
        job.state = JobState::Done;
        job.ended_ms = Some(now_ms());
        self.quota.finished(&job.principal, &job.warehouse_key);
        // The end and its `query.finished` event: one commit.
        let won = self.audit.finish_job(job, usage).await?;
        if !won {
            // Someone settled it first (the watcher, another poll, a
            // cancel, another replica): theirs is the outcome.
            if let Some(stored) = self.store.get_job(&job.project_id, &job.job_id).await? {
                *job = stored;
            }
        }
        self.finished.remember(job);
        self.changed.notify_waiters();
        Ok(won)
    }

    /// Stops a job; a finished job stays as it is.
    pub async fn cancel(
        &self,
        principal: &Principal,
        mut job: JobRecord,
    ) -> Result<JobRecord, GatewayError> {
        if job.state == JobState::Done {
            return Ok(job);
        }
        if job.state == JobState::Pending {
            // Never started: it ends here, without the warehouse.
            job.error = Some(
                GatewayError::from(sluice_warehouse::WarehouseError::new(
                    WarehouseErrorKind::Stopped,
                    "Job execution was cancelled: User requested cancellation",
                ))
                .error_result(),
            );
            self.finish(&mut job).await?;
            return Ok(job);
        }
        let access = self
            .credentials
            .access(principal, &job.warehouse_key)
            .await?;
        self.warehouse
            .cancel_query(&access, &job.warehouse_key)
            .await?;
        let stopped = sluice_warehouse::WarehouseError::new(
            WarehouseErrorKind::Stopped,
            "Job execution was cancelled: User requested cancellation",
        );
        // The execution may have finished just before the cancel arrived.
        let status = match self
            .warehouse
            .wait_query(&access, &job.warehouse_key, Duration::ZERO)
            .await
        {
            Ok(QueryStatus::Done(outcome)) => QueryStatus::Done(outcome),
            _ => QueryStatus::Failed(stopped),
        };
        self.settle(&mut job, status).await?;
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(issuer: &str, subject: &str, name: &str) -> Principal {
        Principal::new(
            sluice_identity::Principal {
                name: name.to_owned(),
                issuer: issuer.to_owned(),
                subject: subject.to_owned(),
                groups: vec![],
                run: None,
                session: None,
            },
            "unused.jwt.token",
        )
    }

    /// Issue: labels tell the truth. Every job carries all of Sluice's
    /// labels, and two principals whose names collide (across issuers, or
    /// in characters a label cannot hold) still differ in `sluice-subject`.
    #[test]
    fn every_label_is_written_and_colliding_names_stay_apart() {
        let a = attribution(
            &principal(
                "https://token.actions.githubusercontent.com",
                "repo:acme/etl",
                "etl",
            ),
            "j1",
        );
        let keys: Vec<&str> = a.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "sluice-issuer",
                "sluice-job",
                "sluice-principal",
                "sluice-run",
                "sluice-session",
                "sluice-subject"
            ]
        );
        assert_eq!(a["sluice-run"], "none");
        assert_eq!(a["sluice-session"], "none");
        assert_eq!(a["sluice-issuer"], "token_actions_githubusercontent_com");
        assert_eq!(a["sluice-subject"].len(), 20);

        let other_issuer = attribution(
            &principal("https://gitlab.example.com", "repo:acme/etl", "etl"),
            "j1",
        );
        assert_eq!(a["sluice-principal"], other_issuer["sluice-principal"]);
        assert_ne!(a["sluice-subject"], other_issuer["sluice-subject"]);

        let upper = attribution(&principal("https://i.example", "Agent", "Agent"), "j1");
        let lower = attribution(&principal("https://i.example", "agent", "agent"), "j1");
        assert_eq!(upper["sluice-principal"], lower["sluice-principal"]);
        assert_ne!(upper["sluice-subject"], lower["sluice-subject"]);
    }
}

/// The lifecycle that can wait: a recorded job is PENDING until it is run,
/// a poll held on it waits on the store, and of the callers that start or
/// end it exactly one wins.
#[cfg(all(test, feature = "embedded"))]
mod lifecycle_tests {
    use std::time::Instant;

    use sluice_embedded::{EmbeddedConfig, EmbeddedWarehouse};
    use sluice_policy::{RawAllow, RawGuardrails, RawPolicy, RawWho};

    use super::*;

    async fn jobs(dir: &std::path::Path) -> Jobs {
        let policy = RawPolicy {
            name: "testers".into(),
            who: RawWho {
                groups: vec!["testers".into()],
                ..RawWho::default()
            },
            allow: RawAllow {
                read: vec!["proj".into()],
                statements: vec!["select".into()],
                ..RawAllow::default()
            },
            ..RawPolicy::default()
        };
        let policy = Arc::new(PolicySet::build(&[policy], &RawGuardrails::default()).unwrap());
        std::fs::create_dir_all(dir.join("warehouse")).unwrap();
        let warehouse = EmbeddedWarehouse::open(EmbeddedConfig {
            data_dir: dir.join("warehouse"),
            results_dir: dir.join("results"),
            location: "US".into(),
            max_concurrent_queries: 2,
            query_memory_bytes: 256 << 20,
            result_retention: Duration::from_secs(3600),
        })
        .await
        .unwrap();
        let store: Arc<dyn Store> = Arc::new(
            sluice_store::SqliteStore::open(&dir.join("jobs.db"))
                .await
                .unwrap(),
        );
        Jobs {
            audit: Arc::new(
                crate::audit::Audit::new(
                    store.clone(),
                    crate::audit::AuditConfig::default(),
                    crate::metrics::Metrics::new(),
                )
                .expect("no sinks to start"),
            ),
            store,
            warehouse: Arc::new(warehouse),
            credentials: Arc::new(Credentials::none()),
            policy,
            quota: Arc::new(Quota::new(10, 100)),
            changed: Arc::default(),
            require_tables: false,
            watching: Arc::default(),
            finished: Arc::default(),
            location: "US".into(),
        }
    }

    fn tester() -> Principal {
        Principal::new(
            sluice_identity::Principal {
                name: "tess".into(),
                issuer: "https://issuer.test".into(),
                subject: "tess".into(),
                groups: vec!["testers".into()],
                run: None,
                session: None,
            },
            "caller.jwt.token",
        )
    }

    fn new_job(id: &str, sql: &str) -> NewJob {
        NewJob {
            project_id: "proj".into(),
            job_id: id.into(),
            request_id: None,
            configuration: json!({"query": {"query": sql}}),
            query: QueryRequest {
                sql: sql.into(),
                default_project: "proj".into(),
                maximum_bytes_billed: Some(1000),
                job_timeout_ms: Some(60_000),
                ..QueryRequest::default()
            },
            max_rows: Some(5),
            mask: MaskPlan::default(),
            check_after_run: false,
            parked: None,
            budgets: Vec::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recorded_job_waits_on_the_store_until_it_is_run() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = jobs(dir.path()).await;
        let tess = tester();
        let mut job = jobs
            .record(&tess, new_job("j1", "SELECT 1 AS one"))
            .await
            .unwrap();
        assert_eq!(job.state, JobState::Pending);
        assert_eq!(job.started_ms, None);

        // The record alone says what was decided.
        let stored = StoredRequest::of(&job).unwrap();
        assert_eq!(stored.query.sql, "SELECT 1 AS one");
        assert_eq!(stored.query.maximum_bytes_billed, Some(1000));
        assert_eq!(stored.max_rows, Some(5));
        assert_eq!(stored.query.labels["sluice-job"], "j1");
        let respaced = StoredRequest::new(&NewJob {
            query: QueryRequest {
                sql: "select   1 as one".into(),
                ..stored.query.clone()
            },
            ..new_job("j1", "unused")
        });
        assert_eq!(
            respaced.sql_hash, stored.sql_hash,
            "spacing and case do not count"
        );

        let held = {
            let jobs = jobs.clone();
            let tess = tess.clone();
            let pending = job.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let job = jobs
                    .hold(&tess, pending, Duration::from_secs(10))
                    .await
                    .unwrap();
                (job, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        jobs.run_as(&tess, &mut job, false, None).await.unwrap();
        let (seen, waited) = held.await.unwrap();
        assert!(waited >= Duration::from_millis(300), "held {waited:?}");
        assert!(waited < Duration::from_secs(10), "woken, not timed out");
        assert_eq!(seen.state, JobState::Done, "{seen:?}");
        assert!(seen.error.is_none(), "{:?}", seen.error);
    }

    /// A poll that brings a stale copy of a job this process has settled
    /// (the watcher was quicker than the caller) gets the job as it ended,
    /// even with no time to wait: it is not waited for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_settled_before_its_poll_is_seen_settled_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = jobs(dir.path()).await;
        let tess = tester();
        let mut job = jobs
            .record(&tess, new_job("j3", "SELECT 1 AS one"))
            .await
            .unwrap();
        let stale = job.clone();
        jobs.run_as(&tess, &mut job, false, None).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while jobs.finished.get("proj", "j3").is_none() {
            assert!(Instant::now() < deadline, "the watcher settles the job");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seen = jobs.hold(&tess, stale, Duration::ZERO).await.unwrap();
        assert_eq!(seen.state, JobState::Done, "{seen:?}");
        assert!(seen.error.is_none(), "{:?}", seen.error);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_cancelled_before_it_runs_never_reaches_the_warehouse() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = jobs(dir.path()).await;
        let tess = tester();
        let job = jobs
            .record(&tess, new_job("j2", "SELECT 1 AS one"))
            .await
            .unwrap();
        let cancelled = jobs.cancel(&tess, job.clone()).await.unwrap();
        assert_eq!(cancelled.state, JobState::Done);
        assert_eq!(cancelled.error.as_ref().unwrap()["reason"], "stopped");

        // A replica that tries to start it now finds it ended: the
        // conditional start loses, nothing runs.
        let mut late = job.clone();
        jobs.run_as(&tess, &mut late, false, None).await.unwrap();
        assert_eq!(late.state, JobState::Done);
        assert_eq!(late.error.as_ref().unwrap()["reason"], "stopped");
        let result = jobs
            .warehouse
            .wait_query(&Access::none(), &job.warehouse_key, Duration::ZERO)
            .await;
        assert!(
            result.is_err(),
            "the warehouse never saw the job: {result:?}"
        );
    }
}
