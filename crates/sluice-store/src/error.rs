//! Store failures.

/// What went wrong in the store. Messages never contain stored secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists: {0}")]
    Duplicate(String),
    #[error("invalid page token")]
    InvalidPageToken,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The write no longer fits what is stored (another writer got there
    /// first); nothing was changed.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate(db.message().to_string())
            }
            _ => StoreError::Unavailable(err.to_string()),
        }
    }
}
