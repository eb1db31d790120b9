//! Why a secret could not be sealed, stored or opened. Messages name the
//! secret, the master key ids and the next step; never key bytes or
//! plaintext.

use crate::StoreError;

/// A failure of the secrets store.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret was sealed under a different master key than the one given.
    #[error(
        "secret {name:?} was sealed with master key {sealed_with}, but the master key given is \
         {given}: set SLUICE_MASTER_KEY (or master_key_file) to the key the store was created with"
    )]
    WrongMasterKey {
        name: String,
        sealed_with: String,
        given: String,
    },
    /// The record does not authenticate under the right master key: it was
    /// altered, damaged, or moved to another name or version.
    #[error(
        "secret {name:?} version {version} failed its integrity check (altered or damaged at \
         rest): import it again with `sluice secrets put {name} --file FILE`"
    )]
    Corrupt { name: String, version: i64 },
    #[error("no secret named {name:?}: import one with `sluice secrets put {name} --file FILE`")]
    NotFound { name: String },
    /// The name breaks the naming rule; the field describes the name (it is
    /// quoted only when short, since a mistyped command line may hold a
    /// secret where the name belongs).
    #[error(
        "invalid secret name {0}: use 1 to 128 characters from letters, digits, '_', '.' and '-'"
    )]
    InvalidName(String),
    /// The master key given cannot be used; the message says why and where
    /// it came from, never what it was.
    #[error("{0}")]
    BadMasterKey(String),
    #[error(
        "no master key: set SLUICE_MASTER_KEY to a base64-encoded 32-byte key, or point \
         master_key_file at a file holding one; `sluice secrets init-key` writes a new one"
    )]
    NoMasterKey,
    /// The cryptographic library refused an operation that cannot fail on
    /// valid input (for example the random source is unavailable).
    #[error("encryption failed: {0}")]
    Crypto(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SecretError {
    /// Says where a bad master key came from (`SLUICE_MASTER_KEY`, a file).
    pub(super) fn in_source(self, source: &str) -> Self {
        match self {
            Self::BadMasterKey(why) => Self::BadMasterKey(format!("{source}: {why}")),
            other => other,
        }
    }
}
