//! The `audit_events` table.

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::StoreError;
use crate::audit::{AuditEvent, AuditRecord, GENESIS, chain_hash};

fn record_from_row(row: &SqliteRow) -> Result<AuditRecord, StoreError> {
    let detail: String = row.try_get("detail")?;
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        event: AuditEvent {
            at_ms: row.try_get("at_ms")?,
            kind: row.try_get("kind")?,
            principal: row.try_get("principal")?,
            request_id: row.try_get("request_id")?,
            instance: row.try_get("instance")?,
            detail: serde_json::from_str(&detail)
                .map_err(|e| StoreError::Corrupt(format!("audit_events.detail: {e}")))?,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Appends `event` after the last one, in one transaction; the caller
/// serializes appends of this process (`SqliteStore::audit_lock`), and the
/// primary key refuses a second event with the same `seq` from another.
pub(super) async fn append(
    pool: &SqlitePool,
    event: &AuditEvent,
) -> Result<AuditRecord, StoreError> {
    // IMMEDIATE: the write lock is taken before the last hash is read, so
    // no other connection's commit can slip in between (a deferred
    // transaction would fail to upgrade, SQLITE_BUSY_SNAPSHOT, instead of
    // waiting).
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    let hash = chain_hash(&prev_hash, seq, event);
    sqlx::query(
        "INSERT INTO audit_events (seq, at_ms, kind, principal, request_id, instance, detail, \
         prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(event.at_ms)
    .bind(&event.kind)
    .bind(&event.principal)
    .bind(&event.request_id)
    .bind(&event.instance)
    .bind(event.detail.to_string())
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(AuditRecord {
        seq,
        event: event.clone(),
        prev_hash,
        hash,
    })
}

/// Events after `after_seq`, in order, at most `limit`.
pub(super) async fn after(
    pool: &SqlitePool,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at_ms, kind, principal, request_id, instance, detail, prev_hash, hash \
         FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    rows.iter().map(record_from_row).collect()
}
