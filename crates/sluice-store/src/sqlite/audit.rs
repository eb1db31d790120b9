//! The `audit_events` table.

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::StoreError;
use crate::audit::{
    AuditEvent, AuditRecord, Checkpoint, GENESIS, Pruned, SessionSummary, chain_hash,
};

/// `SELECT` of every column of `audit_events`, then `$tail`.
macro_rules! select_events {
    ($tail:literal) => {
        concat!(
            "SELECT seq, at_ms, kind, principal, request_id, instance, session, detail, ",
            "prev_hash, hash FROM audit_events ",
            $tail
        )
    };
}

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
            session: row.try_get("session")?,
            detail: serde_json::from_str(&detail)
                .map_err(|e| StoreError::Corrupt(format!("audit_events.detail: {e}")))?,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Appends `event` after the last one, in one transaction; the caller
/// serializes appends of this process (`SqliteStore::writer`), and the
/// primary key refuses a second event with the same `seq` from another.
/// With `page`, the rows the request returned are recorded in the same
/// transaction.
pub(super) async fn append(
    pool: &SqlitePool,
    event: &AuditEvent,
    page: Option<&str>,
) -> Result<AuditRecord, StoreError> {
    // IMMEDIATE: the write lock is taken before the last hash is read, so
    // no other connection's commit can slip in between (a deferred
    // transaction would fail to upgrade, SQLITE_BUSY_SNAPSHOT, instead of
    // waiting).
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let record = append_in(&mut tx, event, page).await?;
    tx.commit().await?;
    Ok(record)
}

/// [`append_in`] for each of `events`, in order.
pub(super) async fn append_all(
    tx: &mut sqlx::SqliteConnection,
    events: &[AuditEvent],
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut records = Vec::with_capacity(events.len());
    for event in events {
        records.push(append_in(&mut *tx, event, None).await?);
    }
    Ok(records)
}

/// [`append`] inside a transaction the caller began with `BEGIN
/// IMMEDIATE` and commits (with whatever else it wrote).
pub(super) async fn append_in(
    tx: &mut sqlx::SqliteConnection,
    event: &AuditEvent,
    page: Option<&str>,
) -> Result<AuditRecord, StoreError> {
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
        "INSERT INTO audit_events (seq, at_ms, kind, principal, request_id, instance, session, \
         detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(event.at_ms)
    .bind(&event.kind)
    .bind(&event.principal)
    .bind(&event.request_id)
    .bind(&event.instance)
    .bind(&event.session)
    .bind(event.detail.to_string())
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    if let Some(body) = page {
        sqlx::query("INSERT INTO audit_pages (seq, at_ms, session, body) VALUES ($1, $2, $3, $4)")
            .bind(seq)
            .bind(event.at_ms)
            .bind(&event.session)
            .bind(body)
            .execute(&mut *tx)
            .await?;
    }
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
    let rows = sqlx::query(select_events!("WHERE seq > $1 ORDER BY seq LIMIT $2"))
        .bind(after_seq)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    rows.iter().map(record_from_row).collect()
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The events of `session` after `after_seq`, in order.
pub(super) async fn of_session(
    pool: &SqlitePool,
    session: &str,
    after_seq: i64,
    most: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = sqlx::query(select_events!(
        "WHERE session = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(session)
    .bind(after_seq)
    .bind(limit(most))
    .fetch_all(pool)
    .await?;
    rows.iter().map(record_from_row).collect()
}

/// Sessions active at or after `since_ms`, the latest first.
pub(super) async fn sessions(
    pool: &SqlitePool,
    since_ms: i64,
    most: usize,
) -> Result<Vec<SessionSummary>, StoreError> {
    let rows = sqlx::query(
        "SELECT session, MAX(principal) AS principal, MIN(at_ms) AS first_ms, \
         MAX(at_ms) AS last_ms, COUNT(*) AS events, \
         SUM(kind = 'query.started') AS queries, \
         SUM(kind = 'request' AND CAST(json_extract(detail, '$.status') AS INTEGER) >= 400) \
         AS refused \
         FROM audit_events WHERE session != '' GROUP BY session HAVING MAX(at_ms) >= $1 \
         ORDER BY last_ms DESC LIMIT $2",
    )
    .bind(since_ms)
    .bind(limit(most))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(SessionSummary {
                session: row.try_get("session")?,
                principal: row.try_get("principal")?,
                first_ms: row.try_get("first_ms")?,
                last_ms: row.try_get("last_ms")?,
                events: row.try_get("events")?,
                queries: row.try_get("queries")?,
                refused: row.try_get("refused")?,
            })
        })
        .collect()
}

/// The last event's sequence number and hash.
pub(super) async fn head(pool: &SqlitePool) -> Result<Option<(i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(pool)
            .await?,
    )
}

pub(super) async fn append_checkpoint(
    pool: &SqlitePool,
    checkpoint: &Checkpoint,
) -> Result<(), StoreError> {
    // A second checkpoint of the same event (two replicas at once) adds
    // nothing.
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, at_ms, key_id, signature) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING",
    )
    .bind(checkpoint.seq)
    .bind(&checkpoint.hash)
    .bind(checkpoint.at_ms)
    .bind(&checkpoint.key_id)
    .bind(&checkpoint.signature)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn checkpoints(pool: &SqlitePool) -> Result<Vec<Checkpoint>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, hash, at_ms, key_id, signature FROM audit_checkpoints ORDER BY seq",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Checkpoint {
                seq: row.try_get("seq")?,
                hash: row.try_get("hash")?,
                at_ms: row.try_get("at_ms")?,
                key_id: row.try_get("key_id")?,
                signature: row.try_get("signature")?,
            })
        })
        .collect()
}

pub(super) async fn recorded_page(
    pool: &SqlitePool,
    seq: i64,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT body FROM audit_pages WHERE seq = $1")
            .bind(seq)
            .fetch_optional(pool)
            .await?,
    )
}

/// Drops pages older than `before_ms`, and the events before the last
/// checkpoint signed before it.
pub(super) async fn prune(pool: &SqlitePool, before_ms: i64) -> Result<Pruned, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let pages = sqlx::query("DELETE FROM audit_pages WHERE at_ms < $1")
        .bind(before_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let anchor: Option<i64> =
        sqlx::query_scalar("SELECT MAX(seq) FROM audit_checkpoints WHERE at_ms < $1")
            .bind(before_ms)
            .fetch_one(&mut *tx)
            .await?;
    // The checkpointed event itself stays: the chain goes on from it, the
    // checkpoint vouches for its hash, and the next append chains to the
    // last event, which is never pruned.
    let events = match anchor {
        Some(seq) => sqlx::query("DELETE FROM audit_events WHERE seq < $1")
            .bind(seq)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        None => 0,
    };
    tx.commit().await?;
    Ok(Pruned { events, pages })
}
