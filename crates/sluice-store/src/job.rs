//! The job record: what Sluice remembers of a query job.

use serde_json::Value;

/// What [`crate::Store::start_job`] or [`crate::Store::finish_job`] did.
#[derive(Debug)]
pub enum JobTransition {
    /// This call made the transition, and recorded the audit events it
    /// was given in the same transaction (in order).
    Won { events: Vec<crate::AuditRecord> },
    /// Someone else made it first: the job was no longer PENDING (a
    /// start) or was DONE already (an end).
    Lost,
}

/// Where a job stands, in BigQuery's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Accepted but not started (held for approval, or queued).
    Pending,
    Running,
    Done,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Done => "DONE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "RUNNING" => Some(Self::Running),
            "DONE" => Some(Self::Done),
            _ => None,
        }
    }
}

/// One job. `configuration`, `statistics` and `error` are kept as the JSON
/// the gateway puts into job resources, so the store needs no knowledge of
/// BigQuery's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub project_id: String,
    pub job_id: String,
    pub location: String,
    /// Who submitted the job; only they see it.
    pub principal: String,
    pub state: JobState,
    /// `jobs.query`'s idempotency key, when the client sent one.
    pub request_id: Option<String>,
    /// The warehouse's name for the job's execution.
    pub warehouse_key: String,
    pub configuration: Value,
    pub statistics: Option<Value>,
    /// BigQuery's `errorResult` (`{reason, message}`) of a failed job.
    pub error: Option<Value>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// The most result rows the job may return (the admitting policy's
    /// `limits.max_rows`); a larger result ends the job refused.
    pub max_rows: Option<u64>,
    /// The policies that admitted the job (those matching its caller then).
    /// A later call on the job needs a caller one of them admits now.
    pub admitted_by: Vec<String>,
    /// The caller's groups when the job was admitted, as a record.
    pub admitted_groups: Vec<String>,
    /// The exact request that was decided (the gateway's versioned
    /// `StoredRequest`), so a recorded job can be started from its record.
    pub request: Option<Value>,
}

/// A page of [`JobRecord`]s and the token for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    pub jobs: Vec<JobRecord>,
    pub next_page_token: Option<String>,
}
