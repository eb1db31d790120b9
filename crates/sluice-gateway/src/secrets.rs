//! Stored secrets and the token minter built from them: the master key
//! comes from `SLUICE_MASTER_KEY` or `secrets.master_key_file`, a key file
//! is opened from the store only in memory, and the minter is built once
//! at start-up, so a missing key or a wrong master key stops the gateway
//! with a clear message instead of failing queries later.
//!
//! Sluice's own signing keys (the workload-identity assertions) are stored
//! here too, as one ring: made the first time they are needed (`sluice
//! serve` or `sluice secrets jwks`), rotated by `sluice secrets
//! rotate-signing-key`, and re-read by a running gateway at most every
//! [`KEYS_REFRESH`], so a rotation on any replica is taken up without a
//! restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sluice_credentials::{
    Credential, Endpoints, ImpersonationSource, Minter, MinterConfig, SIGNING_KEYS_SECRET,
    ServiceAccountKey, SigningKeys, SluiceIssuer,
};
use sluice_store::{MASTER_KEY_ENV, MasterKey, SecretError, SecretStore, Store};

use crate::config::{Config, CredentialConfig, CredentialKind, UpstreamConfig};
use crate::{Credentials, StartError};

/// The master key: `SLUICE_MASTER_KEY`, else the configured file.
pub fn master_key(config: &Config) -> Result<MasterKey, sluice_store::SecretError> {
    let from_env = std::env::var(MASTER_KEY_ENV).ok();
    MasterKey::load(from_env.as_deref(), config.master_key_file.as_deref())
}

/// The store's secrets, opened with the master key.
pub fn secret_store(
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<SecretStore, sluice_store::SecretError> {
    Ok(SecretStore::new(store, master_key(config)?))
}

/// How often a running gateway reads its signing keys again.
pub const KEYS_REFRESH: Duration = Duration::from_secs(60);

/// How many times a change of the signing keys is tried again when
/// another process changed them in between.
const KEYS_WRITE_ATTEMPTS: usize = 3;

/// Why Sluice's signing keys could not be read, made or rotated.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeysError {
    #[error("Sluice's signing keys: {0}")]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Keys(String),
}

impl From<sluice_credentials::CredentialError> for SigningKeysError {
    fn from(error: sluice_credentials::CredentialError) -> Self {
        Self::Keys(error.message)
    }
}

/// Sluice's signing keys as stored, with the version they were read at.
#[derive(Debug)]
pub struct StoredKeys {
    pub keys: SigningKeys,
    pub version: i64,
    /// Made (and stored) by this call: there were none.
    pub created: bool,
}

/// Sluice's signing keys, made and stored first when there are none.
pub async fn signing_keys(secrets: &SecretStore) -> Result<StoredKeys, SigningKeysError> {
    for _ in 0..KEYS_WRITE_ATTEMPTS {
        if let Some((info, bytes)) = secrets.latest(SIGNING_KEYS_SECRET).await? {
            return Ok(StoredKeys {
                keys: SigningKeys::from_json(&bytes)?,
                version: info.version,
                created: false,
            });
        }
        let keys = SigningKeys::generate(unix_now())?;
        // Another process making them at the same moment wins; read theirs.
        if let Some(info) = secrets
            .put_version(SIGNING_KEYS_SECRET, 1, &keys.to_json()?)
            .await?
        {
            return Ok(StoredKeys {
                keys,
                version: info.version,
                created: true,
            });
        }
    }
    Err(contended())
}

/// Adds a new signing key (see [`SigningKeys::rotate`]) and stores the
/// ring as its next version.
pub async fn rotate_signing_keys(
    secrets: &SecretStore,
    activate_after: Duration,
    drop_previous: bool,
) -> Result<StoredKeys, SigningKeysError> {
    for _ in 0..KEYS_WRITE_ATTEMPTS {
        let current = signing_keys(secrets).await?;
        let keys = current
            .keys
            .rotate(unix_now(), activate_after, drop_previous)?;
        if let Some(info) = secrets
            .put_version(SIGNING_KEYS_SECRET, current.version + 1, &keys.to_json()?)
            .await?
        {
            return Ok(StoredKeys {
                keys,
                version: info.version,
                created: false,
            });
        }
    }
    Err(contended())
}

fn contended() -> SigningKeysError {
    SigningKeysError::Keys(
        "another Sluice process kept changing the signing keys at the same time; try again".into(),
    )
}

/// Sluice's issuer with its keys from the store, read again at most every
/// [`KEYS_REFRESH`].
#[derive(Debug)]
pub struct StoredIssuer {
    issuer: Arc<SluiceIssuer>,
    secrets: SecretStore,
    /// The version the keys were read at, and when the store was checked.
    checked: tokio::sync::Mutex<(i64, Instant)>,
    refresh_every: Duration,
}

impl StoredIssuer {
    /// Reads (or makes) the signing keys for `issuer`.
    pub async fn open(issuer: &str, secrets: SecretStore) -> Result<Self, StartError> {
        let failed = |e: &dyn std::fmt::Display| {
            StartError::Credentials(format!("warehouse.credentials (workload_identity): {e}"))
        };
        let stored = signing_keys(&secrets).await.map_err(|e| failed(&e))?;
        let now = unix_now();
        let kid = stored
            .keys
            .active_kid(now)
            .map_err(|e| failed(&e))?
            .to_owned();
        if stored.created {
            tracing::info!(kid = %kid, issuer, "made Sluice's signing key for workload-identity assertions; give the pool's provider Sluice's JWKS (`sluice secrets jwks`, or the issuer's /.well-known/sluice/jwks.json)");
        } else {
            tracing::info!(kid = %kid, issuer, "signing workload-identity assertions");
        }
        let issuer = SluiceIssuer::new(issuer, stored.keys).map_err(|e| failed(&e.message))?;
        Ok(Self {
            issuer: Arc::new(issuer),
            secrets,
            checked: tokio::sync::Mutex::new((stored.version, Instant::now())),
            refresh_every: KEYS_REFRESH,
        })
    }

    /// The issuer, with the keys as last read.
    pub fn issuer(&self) -> &Arc<SluiceIssuer> {
        &self.issuer
    }

    /// Reads the keys again when they were last read [`KEYS_REFRESH`] ago
    /// or more (another replica, or `sluice secrets rotate-signing-key`,
    /// may have rotated them). A failure keeps the keys in use and is logged.
    pub async fn refresh(&self) {
        let mut checked = self.checked.lock().await;
        if checked.1.elapsed() < self.refresh_every {
            return;
        }
        checked.1 = Instant::now();
        match self.secrets.latest(SIGNING_KEYS_SECRET).await {
            Ok(Some((info, _))) if info.version == checked.0 => {}
            Ok(Some((info, bytes))) => match SigningKeys::from_json(&bytes) {
                Ok(keys) => {
                    tracing::info!(
                        version = info.version,
                        "took up Sluice's rotated signing keys"
                    );
                    self.issuer.replace_keys(keys);
                    checked.0 = info.version;
                }
                Err(e) => {
                    tracing::warn!(error = %e.message, "cannot read Sluice's signing keys again; signing with the ones in use")
                }
            },
            Ok(None) => tracing::warn!(
                "Sluice's signing keys are gone from the store; signing with the ones in use"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read Sluice's signing keys again; signing with the ones in use")
            }
        }
    }

    /// The JWKS published now, after a refresh.
    pub async fn jwks(&self) -> Value {
        self.refresh().await;
        self.issuer.jwks()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The credentials of the BigQuery upstream: a minter for
/// `warehouse.credentials` and one for each of `warehouse.named_credentials`,
/// chosen per principal by the policies.
pub async fn credentials(
    config: &Config,
    upstream: &UpstreamConfig,
    store: &Arc<dyn Store>,
) -> Result<Credentials, StartError> {
    let issuer = match &upstream.issuer {
        None => None,
        Some(url) => {
            let secrets = secret_store(config, store.clone()).map_err(|e| {
                StartError::Credentials(format!(
                    "warehouse.credentials (workload_identity): Sluice keeps the key it signs \
                     its assertions with in the encrypted secret store: {e}"
                ))
            })?;
            Some(Arc::new(StoredIssuer::open(url, secrets).await?))
        }
    };
    let signer = issuer.as_ref().map(|i| i.issuer().clone());
    let default = minter(config, &upstream.credentials, store, signer.as_ref()).await?;
    let mut named = HashMap::new();
    for (name, settings) in &upstream.named_credentials {
        let minter = minter(config, settings, store, signer.as_ref())
            .await
            .map_err(|e| match e {
                StartError::Credentials(message) => {
                    StartError::Credentials(format!("named credential \"{name}\": {message}"))
                }
                other => other,
            })?;
        named.insert(name.clone(), minter);
    }
    // A call in flight may take its timeout on every retry until the
    // retry deadline; a released token waits that long for it.
    let longest_call = upstream.timeout.max(sluice_bigquery::MAX_HOLD);
    let credentials = Credentials::new(default, named, config.policy.clone())
        .with_revoke_grace(longest_call + upstream.retry_deadline);
    Ok(match issuer {
        Some(issuer) => credentials.with_issuer(issuer),
        None => credentials,
    })
}

/// The minter one credential block needs.
async fn minter(
    config: &Config,
    settings: &CredentialConfig,
    store: &Arc<dyn Store>,
    signer: Option<&Arc<SluiceIssuer>>,
) -> Result<Minter, StartError> {
    let credential = match &settings.kind {
        CredentialKind::ServiceAccountKey { key } => Credential::ServiceAccountKey {
            key: Arc::new(load_key(config, store, key).await?),
        },
        CredentialKind::Impersonation {
            key,
            service_account,
        } => Credential::Impersonation {
            source: match key {
                Some(name) => {
                    ImpersonationSource::Key(Arc::new(load_key(config, store, name).await?))
                }
                None => ImpersonationSource::MetadataServer,
            },
            service_account: service_account.clone(),
        },
        CredentialKind::WorkloadIdentity {
            audience,
            service_account,
            issuer: _,
        } => Credential::WorkloadIdentity {
            audience: audience.clone(),
            service_account: service_account.clone(),
            // Validation makes one issuer for every workload_identity block.
            issuer: signer.cloned().ok_or_else(|| {
                StartError::Credentials("workload_identity without Sluice's issuer".into())
            })?,
        },
    };
    Minter::new(MinterConfig {
        endpoints: Endpoints {
            sts_url: settings.sts_url.clone(),
            iam_credentials_url: settings.iam_credentials_url.clone(),
            metadata_url: settings.metadata_url.clone(),
            revoke_url: settings.revoke_url.clone(),
        },
        scopes: settings.scopes.clone(),
        lifetime: settings.lifetime,
        // Call timeouts and the deadline: the minter's own defaults.
        ..MinterConfig::new(credential)
    })
    .map_err(|e| StartError::Credentials(e.message))
}

async fn load_key(
    config: &Config,
    store: &Arc<dyn Store>,
    name: &str,
) -> Result<ServiceAccountKey, StartError> {
    let failed = |e: &dyn std::fmt::Display| {
        StartError::Credentials(format!("warehouse.credentials.key \"{name}\": {e}"))
    };
    let secrets = secret_store(config, store.clone()).map_err(|e| failed(&e))?;
    let bytes = secrets.get(name).await.map_err(|e| failed(&e))?;
    ServiceAccountKey::from_json(&bytes).map_err(|e| failed(&e.message))
}

/// The key that signs audit checkpoints, made and stored the first time
/// (another process making it at the same moment wins; its key is read).
pub async fn audit_key(
    secrets: &SecretStore,
) -> Result<sluice_store::audit::CheckpointKey, SigningKeysError> {
    use sluice_store::audit::{CHECKPOINT_KEY_SECRET, CheckpointKey};
    for _ in 0..KEYS_WRITE_ATTEMPTS {
        if let Some((_, pkcs8)) = secrets.latest(CHECKPOINT_KEY_SECRET).await? {
            return CheckpointKey::from_pkcs8(&pkcs8).map_err(SigningKeysError::Keys);
        }
        let pkcs8 = CheckpointKey::generate().map_err(SigningKeysError::Keys)?;
        if secrets
            .put_version(CHECKPOINT_KEY_SECRET, 1, &pkcs8)
            .await?
            .is_some()
        {
            return CheckpointKey::from_pkcs8(&pkcs8).map_err(SigningKeysError::Keys);
        }
    }
    Err(SigningKeysError::Keys(
        "another Sluice process kept changing the audit checkpoint key at the same time; try again"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use sluice_credentials::test_util::jwks_kids;
    use sluice_store::SqliteStore;

    use super::*;

    async fn memory_secrets() -> (Arc<dyn Store>, MasterKey) {
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open_url("sqlite::memory:").await.unwrap());
        (store, MasterKey::generate())
    }

    fn open(store: &Arc<dyn Store>, master: &MasterKey) -> SecretStore {
        SecretStore::new(
            store.clone(),
            MasterKey::from_base64(&master.to_base64()).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_key_is_made_once_and_then_read() {
        let (store, master) = memory_secrets().await;
        let first = signing_keys(&open(&store, &master)).await.unwrap();
        assert!(first.created);
        assert_eq!(first.version, 1);
        let again = signing_keys(&open(&store, &master)).await.unwrap();
        assert!(!again.created);
        assert_eq!(
            again.keys.jwks(unix_now()),
            first.keys.jwks(unix_now()),
            "the same key"
        );
    }

    #[tokio::test]
    async fn a_running_gateway_takes_up_a_rotation() {
        let (store, master) = memory_secrets().await;
        let mut issuer = StoredIssuer::open("https://sluice.test", open(&store, &master))
            .await
            .unwrap();
        issuer.refresh_every = Duration::ZERO;
        let before = issuer
            .issuer()
            .keys()
            .active_kid(unix_now())
            .unwrap()
            .to_owned();

        // Another process (`sluice secrets rotate-signing-key`) rotates.
        let rotated = rotate_signing_keys(&open(&store, &master), Duration::ZERO, false)
            .await
            .unwrap();
        assert_eq!(rotated.version, 2);

        let jwks = issuer.jwks().await;
        let after = issuer
            .issuer()
            .keys()
            .active_kid(unix_now())
            .unwrap()
            .to_owned();
        assert_ne!(after, before);
        assert_eq!(jwks_kids(&jwks), [after, before]);
    }

    #[tokio::test]
    async fn a_rotation_that_loses_a_race_reads_the_winner_and_tries_again() {
        let (store, master) = memory_secrets().await;
        let secrets = open(&store, &master);
        let other = open(&store, &master);
        signing_keys(&secrets).await.unwrap();
        let (a, b) = tokio::join!(
            rotate_signing_keys(&secrets, Duration::ZERO, false),
            rotate_signing_keys(&other, Duration::ZERO, false),
        );
        let mut versions = [a.unwrap().version, b.unwrap().version];
        versions.sort_unstable();
        assert_eq!(versions, [2, 3], "neither rotation was lost");
        let last = signing_keys(&secrets).await.unwrap();
        assert_eq!(last.keys.describe(unix_now()).len(), 3);
    }

    #[tokio::test]
    async fn a_wrong_master_key_stops_workload_identity_at_start() {
        let (store, master) = memory_secrets().await;
        let wrong = open(&store, &MasterKey::generate());
        signing_keys(&open(&store, &master)).await.unwrap();
        let error = StoredIssuer::open("https://sluice.test", wrong)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("master key"), "{error}");
        assert!(error.contains("workload_identity"), "{error}");
    }
}
