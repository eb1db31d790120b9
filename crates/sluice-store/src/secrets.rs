//! Encrypted secrets: the upstream credentials (Google service-account
//! keys) the gateway needs to mint per-job tokens. They are kept
//! envelope-encrypted in the store under a master key that is given from
//! outside and never stored; the store records only the key's id, so a
//! wrong key is named as such instead of failing as corruption.

mod envelope;
mod error;
mod master_key;

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::{Store, StoreError};

pub use envelope::{SealedSecret, check_name, open, rewrap, seal};
pub use error::SecretError;
pub use master_key::{MASTER_KEY_ENV, MasterKey};

/// How many times [`SecretStore::put`] picks the next version again when a
/// concurrent put took the one it chose.
const PUT_ATTEMPTS: usize = 3;

/// What may be shown of a secret: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    pub version: i64,
    pub master_key_id: String,
    pub created_ms: i64,
}

impl From<&SealedSecret> for SecretInfo {
    fn from(sealed: &SealedSecret) -> Self {
        Self {
            name: sealed.name.clone(),
            version: sealed.version,
            master_key_id: sealed.master_key_id.clone(),
            created_ms: sealed.created_ms,
        }
    }
}

/// The secrets of one store, opened with the master key.
#[derive(Debug)]
pub struct SecretStore {
    store: Arc<dyn Store>,
    master: MasterKey,
}

impl SecretStore {
    pub fn new(store: Arc<dyn Store>, master: MasterKey) -> Self {
        Self { store, master }
    }

    /// Seals `plaintext` as the next version of `name`. Refused when the
    /// store already holds secrets under another master key, so one store
    /// never mixes keys (which would make rotation impossible).
    pub async fn put(&self, name: &str, plaintext: &[u8]) -> Result<SecretInfo, SecretError> {
        check_name(name)?;
        self.check_store_key().await?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let version = match self.store.latest_secret(name).await? {
                Some(latest) => latest.version + 1,
                None => 1,
            };
            let sealed = seal(&self.master, name, version, plaintext)?;
            match self.store.put_secret(&sealed).await {
                Ok(()) => return Ok(SecretInfo::from(&sealed)),
                Err(StoreError::Duplicate(_)) if attempts < PUT_ATTEMPTS => continue,
                Err(err @ StoreError::Conflict(_)) => {
                    // A secret under another key arrived since the check
                    // above; name it if it is still there.
                    self.check_store_key().await?;
                    return Err(err.into());
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// The latest version of `name`, decrypted; zeroized when dropped.
    pub async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        self.latest(name)
            .await?
            .map(|(_, plaintext)| plaintext)
            .ok_or_else(|| SecretError::NotFound {
                name: name.to_owned(),
            })
    }

    /// The latest version of `name` and what may be shown of it, or `None`
    /// when nothing is stored under that name.
    pub async fn latest(
        &self,
        name: &str,
    ) -> Result<Option<(SecretInfo, Zeroizing<Vec<u8>>)>, SecretError> {
        check_name(name)?;
        match self.store.latest_secret(name).await? {
            None => Ok(None),
            Some(sealed) => Ok(Some((
                SecretInfo::from(&sealed),
                open(&self.master, &sealed)?,
            ))),
        }
    }

    /// Seals `plaintext` as exactly `version` of `name`: a compare-and-set
    /// for values that are read, changed and written back (a key ring).
    /// `Ok(None)` when that version is already stored, because another
    /// writer got there first; read the latest again and retry.
    pub async fn put_version(
        &self,
        name: &str,
        version: i64,
        plaintext: &[u8],
    ) -> Result<Option<SecretInfo>, SecretError> {
        check_name(name)?;
        self.check_store_key().await?;
        let sealed = seal(&self.master, name, version, plaintext)?;
        match self.store.put_secret(&sealed).await {
            Ok(()) => Ok(Some(SecretInfo::from(&sealed))),
            Err(StoreError::Duplicate(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The latest version of every secret, by name.
    pub async fn list(&self) -> Result<Vec<SecretInfo>, SecretError> {
        Ok(self.store.list_secrets().await?)
    }

    /// Re-wraps every version under `new`; checks every secret opens with
    /// the current key first, so a wrong key changes nothing. Returns how
    /// many versions were re-wrapped. This value keeps the old key: open the
    /// store again with `new` to read the secrets afterwards.
    pub async fn rotate(&self, new: &MasterKey) -> Result<usize, SecretError> {
        if new.id() == self.master.id() {
            return Err(SecretError::BadMasterKey(format!(
                "the new master key is the current one ({}): create another with \
                 `sluice secrets init-key`",
                new.id()
            )));
        }
        let versions = self.store.all_secret_versions().await?;
        for sealed in &versions {
            open(&self.master, sealed)?;
        }
        let rewrapped = versions
            .iter()
            .map(|sealed| rewrap(&self.master, new, sealed))
            .collect::<Result<Vec<_>, _>>()?;
        self.store.replace_wrapped_keys(&rewrapped).await?;
        Ok(rewrapped.len())
    }

    /// Fails with [`SecretError::WrongMasterKey`] when any secret in the
    /// store was sealed under a key other than this one.
    async fn check_store_key(&self) -> Result<(), SecretError> {
        let given = self.master.id();
        let secrets = self.store.list_secrets().await?;
        match secrets.into_iter().find(|s| s.master_key_id != given) {
            Some(other) => Err(SecretError::WrongMasterKey {
                name: other.name,
                sealed_with: other.master_key_id,
                given,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
