//! Sluice's durable state behind one [`Store`] trait: today the job
//! records; approvals, grants, budgets, audit events and secrets join them
//! as those features land.
//!
//! SQLite is the embedded default. A PostgreSQL implementation will share
//! the trait and the SQL (written with `$N` placeholders, valid for both).

mod error;
mod job;
mod sqlite;

pub use error::StoreError;
pub use job::{JobPage, JobRecord, JobState};
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

    /// Saves a job's state, statistics, error and times.
    async fn update_job(&self, job: &JobRecord) -> Result<(), StoreError>;

    /// The principal's jobs in a project, newest first, `limit` at most,
    /// starting after `page_token` (from a previous page).
    async fn list_jobs(
        &self,
        project_id: &str,
        principal: &str,
        limit: usize,
        page_token: Option<&str>,
    ) -> Result<JobPage, StoreError>;
}
