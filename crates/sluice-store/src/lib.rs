//! Sluice's durable state behind one [`Store`] trait: today the job
//! records, the encrypted secrets, the approval requests with their
//! votes, just-in-time grants and budget use; audit events join them as
//! that feature lands.
//!
//! SQLite is the embedded default. A PostgreSQL implementation will share
//! the trait and the SQL (written with `$N` placeholders, valid for both).

mod approval;
pub mod audit;
mod error;
mod grant;
mod job;
pub mod secrets;
mod sqlite;

pub use approval::{ApprovalRecord, ApprovalState, Vote};
pub use audit::{AuditEvent, AuditRecord, Checkpoint, Pruned, SessionSummary};
pub use error::StoreError;
pub use grant::{GrantRecord, Usage, UsageAdd};
pub use job::{JobPage, JobRecord, JobState, JobTransition};
pub use secrets::{MASTER_KEY_ENV, MasterKey, SealedSecret, SecretError, SecretInfo, SecretStore};
pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// Everything Sluice keeps across requests, restarts and replicas.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Records a new job. A job id already used in the project is
    /// [`StoreError::Duplicate`].
    async fn insert_job(&self, job: &JobRecord) -> Result<(), StoreError>;

    async fn get_job(
        &self,
        project_id: &str,
        job_id: &str,
    ) -> Result<Option<JobRecord>, StoreError>;

    /// The job a `jobs.query` call with this `requestId` created, so a
    /// retried call answers for the same job instead of running twice.
    async fn find_job_by_request_id(
        &self,
        project_id: &str,
        request_id: &str,
    ) -> Result<Option<JobRecord>, StoreError>;

    /// Finishes a job: saves its state, statistics, error and times, but
    /// only if the stored job is not DONE yet. True when this call made the
    /// change: of several callers settling one job at once, on one process
    /// or several, exactly one wins, and the others read what it wrote.
    /// The winner's `usage` is added to the budgets, and its `events`
    /// (`query.finished`) appended to the audit chain, in the same
    /// transaction: a job is counted once, and its end is recorded, before
    /// anyone can see it DONE. A store may commit an end without syncing
    /// it (a job's start is synced, its end can be settled again).
    async fn finish_job(
        &self,
        job: &JobRecord,
        usage: &[UsageAdd],
        events: &[AuditEvent],
    ) -> Result<JobTransition, StoreError>;

    /// Starts a recorded job: PENDING → RUNNING, only if it is still
    /// PENDING, appending its write-ahead audit events (`token.minted`,
    /// `query.started`) in the same durable transaction: a job is RUNNING
    /// only if its events are recorded, and one sync makes them durable.
    /// [`JobTransition::Won`] when this call started it (exactly one
    /// caller does), with the events' records.
    async fn start_job(
        &self,
        project_id: &str,
        job_id: &str,
        started_ms: i64,
        write_ahead: &[AuditEvent],
    ) -> Result<JobTransition, StoreError>;

    /// Forgets a job that never started (a transient failure before it
    /// existed upstream), so a retry under the same id can make it.
    async fn delete_job(&self, project_id: &str, job_id: &str) -> Result<(), StoreError>;

    /// The principal's jobs in a project, newest first, `limit` at most,
    /// starting after `page_token` (from a previous page).
    async fn list_jobs(
        &self,
        project_id: &str,
        principal: &str,
        limit: usize,
        page_token: Option<&str>,
    ) -> Result<JobPage, StoreError>;

    /// Adds a secret version; a `(name, version)` already stored is
    /// [`StoreError::Duplicate`]. All secrets of a store share one master
    /// key: a version under another key than the stored ones is
    /// [`StoreError::Conflict`].
    async fn put_secret(&self, sealed: &SealedSecret) -> Result<(), StoreError>;

    /// The highest version of the secret `name`.
    async fn latest_secret(&self, name: &str) -> Result<Option<SealedSecret>, StoreError>;

    /// The latest version of each secret, by name.
    async fn list_secrets(&self) -> Result<Vec<SecretInfo>, StoreError>;

    /// Every version of every secret, by name and version.
    async fn all_secret_versions(&self) -> Result<Vec<SealedSecret>, StoreError>;

    /// Replaces `master_key_id` and `wrapped_key` of each `(name, version)`
    /// in one transaction (master key rotation). `rewrapped` must cover
    /// every stored version; if one is missing (put meanwhile) or gone,
    /// nothing changes and the call is [`StoreError::Conflict`].
    async fn replace_wrapped_keys(&self, rewrapped: &[SealedSecret]) -> Result<(), StoreError>;

    /// Records a new approval request (its `votes` are not stored). An id
    /// already used, or a second request for the same job, is
    /// [`StoreError::Duplicate`].
    async fn insert_approval(&self, approval: &ApprovalRecord) -> Result<(), StoreError>;

    /// The approval request `id`, with its votes.
    async fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError>;

    /// The approval request the job waits (or waited) for, with its votes.
    async fn approval_for_job(
        &self,
        project_id: &str,
        job_id: &str,
    ) -> Result<Option<ApprovalRecord>, StoreError>;

    /// Approval requests in `state` (all of them when none), newest first,
    /// `limit` at most, with their votes.
    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, StoreError>;

    /// Casts a vote, only if the request exists, is still PENDING and has
    /// no vote from this `voter_id` yet; the check and the write are one
    /// step. True when this call recorded the vote; false leaves the
    /// request as it was (a repeated vote does not replace the first).
    async fn add_vote(&self, approval_id: &str, vote: &Vote) -> Result<bool, StoreError>;

    /// Closes a request: PENDING → `state`, recording who or what closed
    /// it, why and when, only if it is still PENDING. True when this call
    /// closed it: of several callers closing one request at once (reviewers,
    /// the expiry sweep, the requester), on one process or several, exactly
    /// one wins. Closing to [`ApprovalState::Pending`] is a caller's mistake
    /// and [`StoreError::Conflict`], with nothing changed.
    async fn close_approval(
        &self,
        id: &str,
        state: ApprovalState,
        closed_by: &str,
        reason: &str,
        closed_ms: i64,
    ) -> Result<bool, StoreError>;

    /// PENDING requests whose `expire_ms` is at or before `now_ms`, the
    /// earliest expiry first, `limit` at most, with their votes: the
    /// expiry sweep closes them as EXPIRED.
    async fn expired_approvals(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, StoreError>;

    /// Records a grant. A second insert of the same id leaves the first
    /// as it was and returns false (a replica that retries the start of
    /// an approved request changes nothing).
    async fn insert_grant(&self, grant: &GrantRecord) -> Result<bool, StoreError>;

    /// The grant `id`.
    async fn get_grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError>;

    /// Grants of `holder` (everyone's when `None`), newest first, `limit`
    /// at most; with `active_at`, only those in force then.
    async fn list_grants(
        &self,
        holder: Option<&str>,
        active_at: Option<i64>,
        limit: usize,
    ) -> Result<Vec<GrantRecord>, StoreError>;

    /// Revokes a grant still in force at `at_ms`; true when this call did.
    async fn revoke_grant(&self, id: &str, by: &str, at_ms: i64) -> Result<bool, StoreError>;

    /// Grants that expired (unrevoked) at or before `now_ms` and whose
    /// expiry no caller has claimed yet, at most `limit`: each is returned
    /// to exactly one caller, on one process or several, to audit.
    async fn claim_expired_grants(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<GrantRecord>, StoreError>;

    /// Gives back a claim of [`Store::claim_expired_grants`] whose audit
    /// event could not be written, so that a later sweep claims it again.
    async fn unclaim_expired_grant(&self, id: &str) -> Result<(), StoreError>;

    /// Adds `bytes` and `rows` to a budget's count for `key` in `period`,
    /// in one statement (several replicas may add at once).
    async fn add_usage(
        &self,
        budget: &str,
        key: &str,
        period: &str,
        bytes: u64,
        rows: u64,
    ) -> Result<(), StoreError>;

    /// What a budget has counted for `key` in `period` (zero when nothing).
    async fn usage(&self, budget: &str, key: &str, period: &str) -> Result<Usage, StoreError>;

    /// Appends an audit event at the end of the chain, durably, and
    /// returns it with its sequence number and hashes.
    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditRecord, StoreError>;

    /// Appends an event that records what already happened (a request's
    /// outcome), with the rows the request returned (`page`, as the agent
    /// received them) when there are any, in one transaction. Committed
    /// before it returns, so it survives a crash of the process, but not
    /// synced to disk on its own: the next durable write (an
    /// [`Store::append_audit`], a job record) syncs it with itself. The
    /// write-ahead event of a query goes through [`Store::append_audit`].
    async fn append_audit_recorded(
        &self,
        event: &AuditEvent,
        page: Option<&str>,
    ) -> Result<AuditRecord, StoreError>;

    /// Audit events after sequence number `after_seq`, in order, at most
    /// `limit`.
    async fn audit_events(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// The events of one session after `after_seq`, in order, at most
    /// `limit`.
    async fn audit_session_events(
        &self,
        session: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Sessions with an event at or after `since_ms`, the latest first.
    async fn audit_sessions(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<SessionSummary>, StoreError>;

    /// The chain's last event: its sequence number and hash.
    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError>;

    /// Stores a signed checkpoint of the chain.
    async fn append_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;

    /// Every checkpoint, oldest first.
    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;

    /// The rows recorded with event `seq`, unless retention dropped them.
    async fn recorded_page(&self, seq: i64) -> Result<Option<String>, StoreError>;

    /// Retention: drops recorded pages older than `before_ms`, and the
    /// events before the last checkpoint signed before it (that event and
    /// its checkpoint stay, so the rest of the chain verifies from it).
    async fn prune_audit(&self, before_ms: i64) -> Result<Pruned, StoreError>;
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
