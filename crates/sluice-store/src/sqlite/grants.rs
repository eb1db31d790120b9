//! The `grants` and `budget_usage` tables.

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::{GrantRecord, StoreError, Usage, UsageAdd};

macro_rules! grant_columns {
    () => {
        "id, holder, principal, rule, datasets, tables, reason, approved_by, start_ms, \
         expire_ms, revoked_ms, revoked_by"
    };
}

fn names(column: &str, text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("grants.{column}: {e}")))
}

fn grant_from_row(row: &SqliteRow) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        id: row.try_get("id")?,
        holder: row.try_get("holder")?,
        principal: row.try_get("principal")?,
        rule: row.try_get("rule")?,
        datasets: names("datasets", row.try_get("datasets")?)?,
        tables: names("tables", row.try_get("tables")?)?,
        reason: row.try_get("reason")?,
        approved_by: row.try_get("approved_by")?,
        start_ms: row.try_get("start_ms")?,
        expire_ms: row.try_get("expire_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
        revoked_by: row.try_get("revoked_by")?,
    })
}

pub(super) async fn insert(pool: &SqlitePool, grant: &GrantRecord) -> Result<bool, StoreError> {
    let done = sqlx::query(concat!(
        "INSERT INTO grants (",
        grant_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING"
    ))
    .bind(&grant.id)
    .bind(&grant.holder)
    .bind(&grant.principal)
    .bind(&grant.rule)
    .bind(serde_json::Value::from(grant.datasets.clone()).to_string())
    .bind(serde_json::Value::from(grant.tables.clone()).to_string())
    .bind(&grant.reason)
    .bind(&grant.approved_by)
    .bind(grant.start_ms)
    .bind(grant.expire_ms)
    .bind(grant.revoked_ms)
    .bind(&grant.revoked_by)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn get(pool: &SqlitePool, id: &str) -> Result<Option<GrantRecord>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        grant_columns!(),
        " FROM grants WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(grant_from_row)
    .transpose()
}

pub(super) async fn list(
    pool: &SqlitePool,
    holder: Option<&str>,
    active_at: Option<i64>,
    limit: usize,
) -> Result<Vec<GrantRecord>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        grant_columns!(),
        " FROM grants WHERE ($1 IS NULL OR holder = $1) \
         AND ($2 IS NULL OR (revoked_ms IS NULL AND start_ms <= $2 AND expire_ms > $2)) \
         ORDER BY start_ms DESC, id LIMIT $3"
    ))
    .bind(holder)
    .bind(active_at)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    rows.iter().map(grant_from_row).collect()
}

pub(super) async fn revoke(
    pool: &SqlitePool,
    id: &str,
    by: &str,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE grants SET revoked_ms = $3, revoked_by = $2, expiry_audited = 1 \
         WHERE id = $1 AND revoked_ms IS NULL AND expire_ms > $3 AND expiry_audited = 0",
    )
    .bind(id)
    .bind(by)
    .bind(at_ms)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn claim_expired(
    pool: &SqlitePool,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<GrantRecord>, StoreError> {
    // A revocation sets `revoked_ms` only before expiry, so a grant past
    // its expiry with no revocation expired; claimed once, by one caller.
    let rows = sqlx::query(concat!(
        "UPDATE grants SET expiry_audited = 1 WHERE id IN (SELECT id FROM grants \
         WHERE expiry_audited = 0 AND revoked_ms IS NULL AND expire_ms <= $1 \
         ORDER BY expire_ms LIMIT $2) AND expiry_audited = 0 RETURNING ",
        grant_columns!()
    ))
    .bind(now_ms)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    let mut grants = rows
        .iter()
        .map(grant_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    grants.sort_by_key(|g| g.expire_ms);
    Ok(grants)
}

pub(super) async fn unclaim_expired(pool: &SqlitePool, id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE grants SET expiry_audited = 0 WHERE id = $1 AND revoked_ms IS NULL")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Counts are kept as SQLite integers (i64); a u64 above that saturates.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(super) async fn add_usage<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Sqlite>,
    add: &UsageAdd,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO budget_usage (budget, key, period, bytes, rows) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (budget, key, period) DO UPDATE SET \
         bytes = MIN(budget_usage.bytes + excluded.bytes, 9223372036854775807), \
         rows = MIN(budget_usage.rows + excluded.rows, 9223372036854775807)",
    )
    .bind(&add.budget)
    .bind(&add.key)
    .bind(&add.period)
    .bind(int(add.bytes))
    .bind(int(add.rows))
    .execute(executor)
    .await?;
    Ok(())
}

pub(super) async fn usage(
    pool: &SqlitePool,
    budget: &str,
    key: &str,
    period: &str,
) -> Result<Usage, StoreError> {
    let row = sqlx::query(
        "SELECT bytes, rows FROM budget_usage WHERE budget = $1 AND key = $2 AND period = $3",
    )
    .bind(budget)
    .bind(key)
    .bind(period)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(Usage::default());
    };
    let (bytes, rows): (i64, i64) = (row.try_get("bytes")?, row.try_get("rows")?);
    Ok(Usage {
        bytes: u64::try_from(bytes).unwrap_or_default(),
        rows: u64::try_from(rows).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
