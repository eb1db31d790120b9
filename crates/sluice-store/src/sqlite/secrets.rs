//! The `secrets` table: sealed secret versions, never plaintext.

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::{SealedSecret, SecretInfo, StoreError};

fn sealed_from_row(row: &SqliteRow) -> Result<SealedSecret, StoreError> {
    Ok(SealedSecret {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        master_key_id: row.try_get("master_key_id")?,
        wrapped_key: row.try_get("wrapped_key")?,
        ciphertext: row.try_get("ciphertext")?,
        created_ms: row.try_get("created_ms")?,
    })
}

fn info_from_row(row: &SqliteRow) -> Result<SecretInfo, StoreError> {
    Ok(SecretInfo {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        master_key_id: row.try_get("master_key_id")?,
        created_ms: row.try_get("created_ms")?,
    })
}

pub(super) async fn put(pool: &SqlitePool, sealed: &SealedSecret) -> Result<(), StoreError> {
    // The key check and the insert are one statement, so a rotation that
    // commits in between cannot leave this version under the old key.
    let done = sqlx::query(
        "INSERT INTO secrets (name, version, master_key_id, wrapped_key, ciphertext, created_ms) \
         SELECT $1, $2, $3, $4, $5, $6 \
         WHERE NOT EXISTS (SELECT 1 FROM secrets WHERE master_key_id <> $3)",
    )
    .bind(&sealed.name)
    .bind(sealed.version)
    .bind(&sealed.master_key_id)
    .bind(&sealed.wrapped_key)
    .bind(&sealed.ciphertext)
    .bind(sealed.created_ms)
    .execute(pool)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Duplicate(_) => StoreError::Duplicate(format!(
            "secret {:?} version {}",
            sealed.name, sealed.version
        )),
        other => other,
    })?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "the store holds secrets under another master key than {}",
            sealed.master_key_id
        )));
    }
    Ok(())
}

pub(super) async fn latest(
    pool: &SqlitePool,
    name: &str,
) -> Result<Option<SealedSecret>, StoreError> {
    let row = sqlx::query(
        "SELECT name, version, master_key_id, wrapped_key, ciphertext, created_ms FROM secrets \
         WHERE name = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(sealed_from_row).transpose()
}

pub(super) async fn list(pool: &SqlitePool) -> Result<Vec<SecretInfo>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.name, s.version, s.master_key_id, s.created_ms FROM secrets s \
         WHERE s.version = (SELECT MAX(l.version) FROM secrets l WHERE l.name = s.name) \
         ORDER BY s.name",
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(info_from_row).collect()
}

pub(super) async fn all_versions(pool: &SqlitePool) -> Result<Vec<SealedSecret>, StoreError> {
    let rows = sqlx::query(
        "SELECT name, version, master_key_id, wrapped_key, ciphertext, created_ms FROM secrets \
         ORDER BY name, version",
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(sealed_from_row).collect()
}

pub(super) async fn replace_wrapped_keys(
    pool: &SqlitePool,
    rewrapped: &[SealedSecret],
) -> Result<(), StoreError> {
    // Returning early drops the transaction, which rolls it back.
    let mut tx = pool.begin().await?;
    for sealed in rewrapped {
        let done = sqlx::query(
            "UPDATE secrets SET master_key_id = $1, wrapped_key = $2 \
             WHERE name = $3 AND version = $4",
        )
        .bind(&sealed.master_key_id)
        .bind(&sealed.wrapped_key)
        .bind(&sealed.name)
        .bind(sealed.version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "secret {:?} version {} is no longer stored; nothing was changed",
                sealed.name, sealed.version
            )));
        }
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets")
        .fetch_one(&mut *tx)
        .await?;
    if usize::try_from(stored).ok() != Some(rewrapped.len()) {
        return Err(StoreError::Conflict(format!(
            "the store holds {stored} secret versions but {} were re-wrapped (a secret was put \
             meanwhile); nothing was changed: run the rotation again",
            rewrapped.len()
        )));
    }
    tx.commit().await?;
    // Move the new pages into the database file and empty the log, so the
    // old wrapped keys do not stay on disk in it. This is best effort: the
    // rotation is already committed, and a busy reader only delays it.
    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await;
    Ok(())
}
