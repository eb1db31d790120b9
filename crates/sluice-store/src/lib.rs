//! Sluice's durable state behind one [`Store`] trait: today the job
//! records and the encrypted secrets; approvals, grants, budgets and audit
//! events join them as those features land.
//!
//! SQLite is the embedded default. A PostgreSQL implementation will share
//! the trait and the SQL (written with `$N` placeholders, valid for both).

mod error;
mod job;
pub mod secrets;
mod sqlite;

pub use error::StoreError;
pub use job::{JobPage, JobRecord, JobState};
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
    async fn finish_job(&self, job: &JobRecord) -> Result<bool, StoreError>;

    /// Starts a recorded job: PENDING → RUNNING, only if it is still
    /// PENDING. True when this call started it (exactly one caller does).
    async fn start_job(
        &self,
        project_id: &str,
        job_id: &str,
        started_ms: i64,
    ) -> Result<bool, StoreError>;

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
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
