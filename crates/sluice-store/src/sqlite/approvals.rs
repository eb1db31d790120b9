//! The `approvals` and `approval_votes` tables: queries held for a reviewer
//! and the votes on them.

use serde::de::DeserializeOwned;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Row, Sqlite};

use crate::{ApprovalRecord, ApprovalState, StoreError, Vote};

/// The approval columns, as a literal so that every statement stays a
/// compile-time constant (sqlx refuses SQL built at run time).
macro_rules! approval_columns {
    () => {
        "id, project_id, job_id, principal, requester, state, rule, reviewers, min_approvals, \
         justification_required, details, created_ms, expire_ms, closed_ms, closed_by, reason"
    };
}

fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("approvals.{column}: {e}")))
}

/// The record of a row, without its votes.
fn approval_from_row(row: &SqliteRow) -> Result<ApprovalRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let min_approvals: i64 = row.try_get("min_approvals")?;
    Ok(ApprovalRecord {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        job_id: row.try_get("job_id")?,
        principal: row.try_get("principal")?,
        requester: row.try_get("requester")?,
        state: ApprovalState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("approvals.state: {state}")))?,
        rule: row.try_get("rule")?,
        reviewers: from_json("reviewers", row.try_get("reviewers")?)?,
        min_approvals: u32::try_from(min_approvals).map_err(|_| {
            StoreError::Corrupt(format!("approvals.min_approvals: {min_approvals}"))
        })?,
        justification_required: row.try_get("justification_required")?,
        details: from_json("details", row.try_get("details")?)?,
        created_ms: row.try_get("created_ms")?,
        expire_ms: row.try_get("expire_ms")?,
        closed_ms: row.try_get("closed_ms")?,
        closed_by: row.try_get("closed_by")?,
        reason: row.try_get("reason")?,
        votes: Vec::new(),
    })
}

fn vote_from_row(row: &SqliteRow) -> Result<Vote, StoreError> {
    Ok(Vote {
        voter: row.try_get("voter")?,
        voter_id: row.try_get("voter_id")?,
        approve: row.try_get("approve")?,
        reason: row.try_get("reason")?,
        at_ms: row.try_get("at_ms")?,
    })
}

/// Runs `query` (a SELECT of `approval_columns!()`) and reads each
/// record's votes in the same transaction, so the votes are those of the
/// state read.
async fn read(
    pool: &SqlitePool,
    query: Query<'_, Sqlite, SqliteArguments>,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    let mut tx = pool.begin().await?;
    let rows = query.fetch_all(&mut *tx).await?;
    let mut approvals = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut approval = approval_from_row(row)?;
        approval.votes = votes(&mut tx, &approval.id).await?;
        approvals.push(approval);
    }
    tx.commit().await?;
    Ok(approvals)
}

async fn votes(conn: &mut SqliteConnection, approval_id: &str) -> Result<Vec<Vote>, StoreError> {
    let rows = sqlx::query(
        "SELECT voter, voter_id, approve, reason, at_ms FROM approval_votes \
         WHERE approval_id = $1 ORDER BY at_ms, voter_id",
    )
    .bind(approval_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(vote_from_row).collect()
}

/// `limit` as SQL wants it; more rows than `i64` counts is no limit.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(super) async fn insert(pool: &SqlitePool, approval: &ApprovalRecord) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO approvals (",
        approval_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(&approval.id)
    .bind(&approval.project_id)
    .bind(&approval.job_id)
    .bind(&approval.principal)
    .bind(&approval.requester)
    .bind(approval.state.as_str())
    .bind(&approval.rule)
    .bind(serde_json::Value::from(approval.reviewers.clone()).to_string())
    .bind(i64::from(approval.min_approvals))
    .bind(approval.justification_required)
    .bind(approval.details.to_string())
    .bind(approval.created_ms)
    .bind(approval.expire_ms)
    .bind(approval.closed_ms)
    .bind(&approval.closed_by)
    .bind(&approval.reason)
    .execute(pool)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Duplicate(_) => StoreError::Duplicate(format!(
            "approval {} (or one for job {}:{})",
            approval.id, approval.project_id, approval.job_id
        )),
        other => other,
    })?;
    Ok(())
}

pub(super) async fn get(pool: &SqlitePool, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
    let query = sqlx::query(concat!(
        "SELECT ",
        approval_columns!(),
        " FROM approvals WHERE id = $1"
    ))
    .bind(id);
    Ok(read(pool, query).await?.pop())
}

pub(super) async fn for_job(
    pool: &SqlitePool,
    project_id: &str,
    job_id: &str,
) -> Result<Option<ApprovalRecord>, StoreError> {
    let query = sqlx::query(concat!(
        "SELECT ",
        approval_columns!(),
        " FROM approvals WHERE project_id = $1 AND job_id = $2"
    ))
    .bind(project_id)
    .bind(job_id);
    Ok(read(pool, query).await?.pop())
}

pub(super) async fn list(
    pool: &SqlitePool,
    state: Option<ApprovalState>,
    limit: usize,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    let query = sqlx::query(concat!(
        "SELECT ",
        approval_columns!(),
        " FROM approvals WHERE ($1 IS NULL OR state = $1) \
         ORDER BY created_ms DESC, id LIMIT $2"
    ))
    .bind(state.map(ApprovalState::as_str))
    .bind(sql_limit(limit));
    read(pool, query).await
}

pub(super) async fn expired(
    pool: &SqlitePool,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    let query = sqlx::query(concat!(
        "SELECT ",
        approval_columns!(),
        " FROM approvals WHERE state = 'PENDING' AND expire_ms <= $1 \
         ORDER BY expire_ms, id LIMIT $2"
    ))
    .bind(now_ms)
    .bind(sql_limit(limit));
    read(pool, query).await
}

pub(super) async fn add_vote(
    pool: &SqlitePool,
    approval_id: &str,
    vote: &Vote,
) -> Result<bool, StoreError> {
    // The state check and the insert are one statement, so a close that
    // commits in between cannot let a vote land on a closed request. The
    // WHERE also keeps SQLite from reading ON CONFLICT as a join clause.
    let done = sqlx::query(
        "INSERT INTO approval_votes (approval_id, voter_id, voter, approve, reason, at_ms) \
         SELECT $1, $2, $3, $4, $5, $6 \
         WHERE EXISTS (SELECT 1 FROM approvals WHERE id = $1 AND state = 'PENDING') \
         ON CONFLICT (approval_id, voter_id) DO NOTHING",
    )
    .bind(approval_id)
    .bind(&vote.voter_id)
    .bind(&vote.voter)
    .bind(vote.approve)
    .bind(&vote.reason)
    .bind(vote.at_ms)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn close(
    pool: &SqlitePool,
    id: &str,
    state: ApprovalState,
    closed_by: &str,
    reason: &str,
    closed_ms: i64,
) -> Result<bool, StoreError> {
    if state == ApprovalState::Pending {
        return Err(StoreError::Conflict(format!(
            "approval {id} cannot close to PENDING (only to APPROVED, DENIED, EXPIRED or \
             WITHDRAWN); nothing was changed"
        )));
    }
    let closed = sqlx::query(
        "UPDATE approvals SET state = $2, closed_by = $3, reason = $4, closed_ms = $5 \
         WHERE id = $1 AND state = 'PENDING'",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(closed_by)
    .bind(reason)
    .bind(closed_ms)
    .execute(pool)
    .await?;
    Ok(closed.rows_affected() == 1)
}

#[cfg(test)]
mod tests;
