//! The SQLite store: one file, the embedded default.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use crate::{
    ApprovalRecord, ApprovalState, AuditEvent, AuditRecord, Checkpoint, GrantRecord, JobPage,
    JobRecord, JobState, JobTransition, Pruned, SealedSecret, SecretInfo, SessionSummary, Store,
    StoreError, Usage, UsageAdd, Vote, now_ms,
};

mod approvals;
mod audit;
mod grants;
mod secrets;

/// Migrations, applied in order; each runs once, in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_jobs.sql")),
    (2, include_str!("../migrations/sqlite/0002_job_limits.sql")),
    (3, include_str!("../migrations/sqlite/0003_secrets.sql")),
    (
        4,
        include_str!("../migrations/sqlite/0004_job_admission.sql"),
    ),
    (5, include_str!("../migrations/sqlite/0005_job_request.sql")),
    (6, include_str!("../migrations/sqlite/0006_approvals.sql")),
    (
        7,
        include_str!("../migrations/sqlite/0007_grants_budgets.sql"),
    ),
    (8, include_str!("../migrations/sqlite/0008_audit.sql")),
    (
        9,
        include_str!("../migrations/sqlite/0009_audit_sessions.sql"),
    ),
    (
        10,
        include_str!("../migrations/sqlite/0010_grant_expiry.sql"),
    ),
];

/// A [`Store`] in one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection to the same database whose commits do not sync the
    /// WAL (`synchronous = NORMAL`): for what records what already
    /// happened (a job's end, audit events after the fact). They survive
    /// a crash of the process; the next commit of `pool` (FULL: each
    /// commit syncs) syncs them too, since the WAL is written in order.
    unsynced: SqlitePool,
    /// Every write of this process, one at a time: appends to the audit
    /// chain must be (each reads the last hash), and writers that queue
    /// here never meet SQLite's busy handler, which sleeps a millisecond
    /// or more each time two connections want the write lock at once.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        Self::connect(options).await
    }

    /// Opens a database from a `sqlite://…` URL (`sqlite::memory:` for tests).
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .create_if_missing(true);
        Self::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        // Freed space in the file is zeroed, so secret records that are
        // deleted or moved (old wrapped data keys after a rotation among
        // them) do not linger in free pages.
        let options = options.pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        let unsynced = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.synchronous(SqliteSynchronous::Normal))
            .await?;
        let store = Self {
            pool,
            unsynced,
            writer: std::sync::Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Writes the write-ahead log back into the database file, empties it
    /// and closes every connection. Call it on shutdown.
    pub async fn close(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        self.unsynced.close().await;
        self.pool.close().await;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS sluice_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM sluice_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if applied.is_some() {
                continue;
            }
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO sluice_migrations (version, applied_ms) VALUES ($1, $2)")
                .bind(version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

/// The job columns, as a literal so that every statement stays a
/// compile-time constant (sqlx refuses SQL built at run time).
macro_rules! job_columns {
    () => {
        "project_id, job_id, location, principal, state, request_id, warehouse_key, \
         configuration, statistics, error, created_ms, started_ms, ended_ms, max_rows, \
         admitted_by, admitted_groups, request"
    };
}

fn json_text(value: &Option<serde_json::Value>) -> Option<String> {
    value.as_ref().map(|v| v.to_string())
}

fn parse_json(column: &str, text: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("jobs.{column}: {e}")))
    })
    .transpose()
}

fn job_from_row(row: &SqliteRow) -> Result<JobRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let configuration: String = row.try_get("configuration")?;
    Ok(JobRecord {
        project_id: row.try_get("project_id")?,
        job_id: row.try_get("job_id")?,
        location: row.try_get("location")?,
        principal: row.try_get("principal")?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("jobs.state: {state}")))?,
        request_id: row.try_get("request_id")?,
        warehouse_key: row.try_get("warehouse_key")?,
        configuration: parse_json("configuration", Some(configuration))?.unwrap_or_default(),
        statistics: parse_json("statistics", row.try_get("statistics")?)?,
        error: parse_json("error", row.try_get("error")?)?,
        created_ms: row.try_get("created_ms")?,
        started_ms: row.try_get("started_ms")?,
        ended_ms: row.try_get("ended_ms")?,
        max_rows: row
            .try_get::<Option<i64>, _>("max_rows")?
            .map(|n| u64::try_from(n).unwrap_or(0)),
        admitted_by: names("admitted_by", row.try_get("admitted_by")?)?,
        admitted_groups: names("admitted_groups", row.try_get("admitted_groups")?)?,
        request: parse_json("request", row.try_get("request")?)?,
    })
}

/// A JSON array of names; none (a job from before the column) is empty.
fn names(column: &str, text: Option<String>) -> Result<Vec<String>, StoreError> {
    match text {
        None => Ok(Vec::new()),
        Some(t) => {
            serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("jobs.{column}: {e}")))
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        sqlx::query(concat!(
            "INSERT INTO jobs (",
            job_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(&job.project_id)
        .bind(&job.job_id)
        .bind(&job.location)
        .bind(&job.principal)
        .bind(job.state.as_str())
        .bind(&job.request_id)
        .bind(&job.warehouse_key)
        .bind(job.configuration.to_string())
        .bind(json_text(&job.statistics))
        .bind(json_text(&job.error))
        .bind(job.created_ms)
        .bind(job.started_ms)
        .bind(job.ended_ms)
        .bind(job.max_rows.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
        .bind(serde_json::Value::from(job.admitted_by.clone()).to_string())
        .bind(serde_json::Value::from(job.admitted_groups.clone()).to_string())
        .bind(json_text(&job.request))
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Duplicate(_) => {
                StoreError::Duplicate(format!("job {}:{}", job.project_id, job.job_id))
            }
            other => other,
        })?;
        Ok(())
    }

    async fn get_job(
        &self,
        project_id: &str,
        job_id: &str,
    ) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE project_id = $1 AND job_id = $2"
        ))
        .bind(project_id)
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn find_job_by_request_id(
        &self,
        project_id: &str,
        request_id: &str,
    ) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE project_id = $1 AND request_id = $2"
        ))
        .bind(project_id)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn finish_job(
        &self,
        job: &JobRecord,
        usage: &[UsageAdd],
        events: &[AuditEvent],
    ) -> Result<JobTransition, StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        // Not synced: a job's end records what has happened. A crash of
        // the process loses none of it; the next synced commit (the next
        // job's start) syncs it too, and a job whose end a power cut lost
        // is RUNNING again, settled anew from the warehouse.
        let mut tx = self.unsynced.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE jobs SET state = $3, statistics = $4, error = $5, started_ms = $6, ended_ms = $7 \
             WHERE project_id = $1 AND job_id = $2 AND state <> 'DONE'",
        )
        .bind(&job.project_id)
        .bind(&job.job_id)
        .bind(job.state.as_str())
        .bind(json_text(&job.statistics))
        .bind(json_text(&job.error))
        .bind(job.started_ms)
        .bind(job.ended_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(JobTransition::Lost);
        }
        for add in usage {
            grants::add_usage(&mut *tx, add).await?;
        }
        let events = audit::append_all(&mut tx, events).await?;
        tx.commit().await?;
        Ok(JobTransition::Won { events })
    }

    async fn start_job(
        &self,
        project_id: &str,
        job_id: &str,
        started_ms: i64,
        write_ahead: &[AuditEvent],
    ) -> Result<JobTransition, StoreError> {
        // The audit chain's order is this process's lock, then SQLite's
        // write lock (IMMEDIATE), as for any other append.
        let _one_at_a_time = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let started = sqlx::query(
            "UPDATE jobs SET state = 'RUNNING', started_ms = $3 \
             WHERE project_id = $1 AND job_id = $2 AND state = 'PENDING'",
        )
        .bind(project_id)
        .bind(job_id)
        .bind(started_ms)
        .execute(&mut *tx)
        .await?;
        if started.rows_affected() != 1 {
            return Ok(JobTransition::Lost);
        }
        let events = audit::append_all(&mut tx, write_ahead).await?;
        tx.commit().await?;
        Ok(JobTransition::Won { events })
    }

    async fn delete_job(&self, project_id: &str, job_id: &str) -> Result<(), StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        sqlx::query("DELETE FROM jobs WHERE project_id = $1 AND job_id = $2")
            .bind(project_id)
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_jobs(
        &self,
        project_id: &str,
        principal: &str,
        limit: usize,
        page_token: Option<&str>,
    ) -> Result<JobPage, StoreError> {
        let offset: i64 = match page_token {
            None => 0,
            Some(token) => token.parse().map_err(|_| StoreError::InvalidPageToken)?,
        };
        if offset < 0 {
            return Err(StoreError::InvalidPageToken);
        }
        let limit = limit.clamp(1, 1000) as i64;
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE project_id = $1 AND principal = $2 \
             ORDER BY created_ms DESC, job_id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(project_id)
        .bind(principal)
        .bind(limit + 1)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_page_token = if jobs.len() as i64 > limit {
            jobs.truncate(limit as usize);
            Some((offset + limit).to_string())
        } else {
            None
        };
        Ok(JobPage {
            jobs,
            next_page_token,
        })
    }

    async fn put_secret(&self, sealed: &SealedSecret) -> Result<(), StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        secrets::put(&self.pool, sealed).await
    }

    async fn latest_secret(&self, name: &str) -> Result<Option<SealedSecret>, StoreError> {
        secrets::latest(&self.pool, name).await
    }

    async fn list_secrets(&self) -> Result<Vec<SecretInfo>, StoreError> {
        secrets::list(&self.pool).await
    }

    async fn all_secret_versions(&self) -> Result<Vec<SealedSecret>, StoreError> {
        secrets::all_versions(&self.pool).await
    }

    async fn replace_wrapped_keys(&self, rewrapped: &[SealedSecret]) -> Result<(), StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        secrets::replace_wrapped_keys(&self.pool, rewrapped).await
    }

    async fn insert_approval(&self, approval: &ApprovalRecord) -> Result<(), StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        approvals::insert(&self.pool, approval).await
    }

    async fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        approvals::get(&self.pool, id).await
    }

    async fn approval_for_job(
        &self,
        project_id: &str,
        job_id: &str,
    ) -> Result<Option<ApprovalRecord>, StoreError> {
        approvals::for_job(&self.pool, project_id, job_id).await
    }

    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        approvals::list(&self.pool, state, limit).await
    }

    async fn add_vote(&self, approval_id: &str, vote: &Vote) -> Result<bool, StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        approvals::add_vote(&self.pool, approval_id, vote).await
    }

    async fn close_approval(
        &self,
        id: &str,
        state: ApprovalState,
        closed_by: &str,
        reason: &str,
        closed_ms: i64,
    ) -> Result<bool, StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        approvals::close(&self.pool, id, state, closed_by, reason, closed_ms).await
    }

    async fn expired_approvals(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        approvals::expired(&self.pool, now_ms, limit).await
    }
    async fn insert_grant(&self, grant: &GrantRecord) -> Result<bool, StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        grants::insert(&self.pool, grant).await
    }

    async fn get_grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError> {
        grants::get(&self.pool, id).await
    }

    async fn list_grants(
        &self,
        holder: Option<&str>,
        active_at: Option<i64>,
        limit: usize,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        grants::list(&self.pool, holder, active_at, limit).await
    }

    async fn revoke_grant(&self, id: &str, by: &str, at_ms: i64) -> Result<bool, StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        grants::revoke(&self.pool, id, by, at_ms).await
    }

    async fn claim_expired_grants(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        grants::claim_expired(&self.pool, now_ms, limit).await
    }

    async fn unclaim_expired_grant(&self, id: &str) -> Result<(), StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        grants::unclaim_expired(&self.pool, id).await
    }

    async fn add_usage(
        &self,
        budget: &str,
        key: &str,
        period: &str,
        bytes: u64,
        rows: u64,
    ) -> Result<(), StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        let add = UsageAdd {
            budget: budget.to_owned(),
            key: key.to_owned(),
            period: period.to_owned(),
            bytes,
            rows,
        };
        grants::add_usage(&self.pool, &add).await
    }

    async fn usage(&self, budget: &str, key: &str, period: &str) -> Result<Usage, StoreError> {
        grants::usage(&self.pool, budget, key, period).await
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditRecord, StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        audit::append(&self.pool, event, None).await
    }

    async fn append_audit_recorded(
        &self,
        event: &AuditEvent,
        page: Option<&str>,
    ) -> Result<AuditRecord, StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        audit::append(&self.unsynced, event, page).await
    }

    async fn audit_events(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        audit::after(&self.pool, after_seq, limit).await
    }

    async fn audit_session_events(
        &self,
        session: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        audit::of_session(&self.pool, session, after_seq, limit).await
    }

    async fn audit_sessions(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        audit::sessions(&self.pool, since_ms, limit).await
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        audit::head(&self.pool).await
    }

    async fn append_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        audit::append_checkpoint(&self.pool, checkpoint).await
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        audit::checkpoints(&self.pool).await
    }

    async fn recorded_page(&self, seq: i64) -> Result<Option<String>, StoreError> {
        audit::recorded_page(&self.pool, seq).await
    }

    async fn prune_audit(&self, before_ms: i64) -> Result<Pruned, StoreError> {
        let _one_at_a_time = self.writer.lock().await;
        audit::prune(&self.pool, before_ms).await
    }
}

#[cfg(test)]
mod tests;
