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

use serde_json::json;
use sluice_policy::PolicySet;
use sluice_store::{JobRecord, JobState, Store};
use sluice_warehouse::{Access, QueryRequest, QueryStatus, Warehouse, WarehouseErrorKind};

use crate::Principal;
use crate::credential::Credentials;
use crate::error::GatewayError;
use crate::quota::Quota;

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

/// Creates, runs, holds and settles jobs.
#[derive(Debug, Clone)]
pub struct Jobs {
    pub store: Arc<dyn Store>,
    pub warehouse: Arc<dyn Warehouse>,
    pub credentials: Arc<Credentials>,
    /// Who may act on a job: a caller one of the job's admitting policies
    /// admits now.
    pub policy: Arc<PolicySet>,
    /// Bounds each principal's running jobs.
    pub quota: Arc<Quota>,
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
    sluice_warehouse::bigquery::labels(pairs)
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
}

impl Jobs {
    /// Records the job, then starts it. A job id already in use is
    /// `duplicate` (409) and nothing runs. A query the warehouse refuses
    /// at planning leaves a DONE job carrying the error, as BigQuery does.
    pub async fn start(
        &self,
        principal: &Principal,
        mut new: NewJob,
    ) -> Result<JobRecord, GatewayError> {
        let now = now_ms();
        let mut job = JobRecord {
            project_id: new.project_id,
            job_id: new.job_id,
            location: self.location.clone(),
            principal: principal.name.clone(),
            state: JobState::Running,
            request_id: new.request_id,
            warehouse_key: uuid::Uuid::new_v4().simple().to_string(),
            configuration: new.configuration,
            statistics: None,
            error: None,
            created_ms: now,
            started_ms: Some(now),
            ended_ms: None,
            max_rows: new.max_rows,
            admitted_by: self.policy.matching_names(&principal.who()),
            admitted_groups: principal.verified.groups.clone(),
        };
        // A job counts against its principal's running jobs until it is
        // settled, or for at most its longest run (plus a minute) if
        // nobody settles it.
        let longest =
            Duration::from_millis(new.query.job_timeout_ms.unwrap_or(0)) + Duration::from_secs(60);
        self.quota
            .start_job(&principal.name, &job.warehouse_key, longest)?;
        // No credential, no job: nothing is recorded, so the caller can
        // simply try again.
        let access = match self.credentials.access(principal, &job.warehouse_key).await {
            Ok(access) => access,
            Err(err) => {
                self.quota.finished(&principal.name, &job.warehouse_key);
                return Err(err);
            }
        };
        if let Err(err) = self.store.insert_job(&job).await {
            // A job id already in use (or a store failure): nothing runs,
            // and the token minted for it dies now.
            self.credentials.release(&job.warehouse_key);
            self.quota.finished(&principal.name, &job.warehouse_key);
            return Err(err.into());
        }
        new.query.labels.extend(attribution(principal, &job.job_id));
        match self
            .warehouse
            .start_query(&access, &job.warehouse_key, &new.query)
            .await
        {
            Ok(()) => {
                self.watch(job.clone(), access);
                Ok(job)
            }
            Err(err) => {
                let err = GatewayError::from(err);
                self.quota.finished(&principal.name, &job.warehouse_key);
                if err.is_retryable() {
                    // Nothing exists upstream: the job is forgotten and the
                    // caller told to try again, under the same id if it
                    // likes (a failed job would make clients resubmit).
                    self.credentials.release(&job.warehouse_key);
                    self.store.delete_job(&job.project_id, &job.job_id).await?;
                    return Err(err);
                }
                job.error = Some(err.error_result());
                self.credentials.release(&job.warehouse_key);
                job.state = JobState::Done;
                job.ended_ms = Some(now_ms());
                self.store.finish_job(&job).await?;
                Ok(job)
            }
        }
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
        };
        self.store.insert_job(&job).await?;
        Ok(job)
    }

    /// Settles the job in the background once the warehouse finishes it.
    /// It polls with the token the job started with; once that expires,
    /// callers polling with their own tokens settle the job instead.
    fn watch(&self, mut job: JobRecord, access: Access) {
        let jobs = self.clone();
        tokio::spawn(async move {
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

    /// Whether `principal` may act on `job`: the same principal (issuer
    /// and subject), and one of the policies that admitted the job admits
    /// the caller now. Many runs share a subject (every pull request of a
    /// repository, every job of a GitHub environment), so the subject
    /// alone does not make a run the job's owner.
    pub fn owns(&self, principal: &Principal, job: &JobRecord) -> bool {
        if job.principal != principal.name {
            return false;
        }
        let now = self.policy.matching_names(&principal.who());
        job.admitted_by.iter().any(|policy| now.contains(policy))
    }

    /// Loads a job the caller owns ([`Self::owns`]); any other job does
    /// not exist for them.
    pub async fn load(
        &self,
        principal: &Principal,
        project_id: &str,
        job_id: &str,
    ) -> Result<JobRecord, GatewayError> {
        match self.store.get_job(project_id, job_id).await? {
            Some(job) if self.owns(principal, &job) => {
                self.warehouse.resume(&job.warehouse_key, &job.project_id);
                Ok(job)
            }
            _ => Err(GatewayError::not_found(format!(
                "Not found: Job {project_id}:{}.{job_id}",
                self.location
            ))),
        }
    }

    /// Waits up to `hold` for an unfinished job, then returns it as it
    /// stands. Never holds longer: clients poll again.
    pub async fn hold(
        &self,
        principal: &Principal,
        mut job: JobRecord,
        hold: Duration,
    ) -> Result<JobRecord, GatewayError> {
        if job.state == JobState::Done {
            return Ok(job);
        }
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
                job.error = job
                    .max_rows
                    .filter(|limit| outcome.total_rows > *limit)
                    .map(|limit| {
                        GatewayError::access_denied(format!(
                            "Access Denied: rule limits.max_rows: the result has {} rows and your policy allows at most {limit}; \
                             no rows were returned. Add a LIMIT, filter or aggregate, or ask for a higher limit.",
                            outcome.total_rows
                        ))
                        .error_result()
                    });
                job.statistics =
                    Some(serde_json::to_value(&outcome).map_err(GatewayError::internal)?);
            }
            QueryStatus::Failed(err) => {
                let err = GatewayError::from(err);
                job.error = Some(json!({"reason": err.reason, "message": err.message}));
            }
        }
        if job.error.is_some() {
            // No pages will be read: the job's tokens are done with.
            self.credentials.release(&job.warehouse_key);
        }
        job.state = JobState::Done;
        job.ended_ms = Some(now_ms());
        self.quota.finished(&job.principal, &job.warehouse_key);
        if !self.store.finish_job(job).await? {
            // Someone settled it first (the watcher, another poll, a
            // cancel, another replica): theirs is the outcome.
            if let Some(stored) = self.store.get_job(&job.project_id, &job.job_id).await? {
                *job = stored;
            }
        }
        Ok(())
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
