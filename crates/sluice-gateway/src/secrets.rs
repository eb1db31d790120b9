//! Stored secrets and the token minter built from them: the master key
//! comes from `SLUICE_MASTER_KEY` or `secrets.master_key_file`, a key file
//! is opened from the store only in memory, and the minter is built once
//! at start-up, so a missing key or a wrong master key stops the gateway
//! with a clear message instead of failing queries later.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_credentials::{
    Credential, Endpoints, ImpersonationSource, Minter, MinterConfig, ServiceAccountKey,
};
use sluice_store::{MASTER_KEY_ENV, MasterKey, SecretStore, Store};

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

/// The credentials of the BigQuery upstream: a minter for
/// `warehouse.credentials` and one for each of `warehouse.named_credentials`,
/// chosen per principal by the policies.
pub async fn credentials(
    config: &Config,
    upstream: &UpstreamConfig,
    store: &Arc<dyn Store>,
) -> Result<Credentials, StartError> {
    let default = minter(config, &upstream.credentials, store).await?;
    let mut named = HashMap::new();
    for (name, settings) in &upstream.named_credentials {
        let minter = minter(config, settings, store).await.map_err(|e| match e {
            StartError::Credentials(message) => {
                StartError::Credentials(format!("named credential \"{name}\": {message}"))
            }
            other => other,
        })?;
        named.insert(name.clone(), minter);
    }
    // A call in flight may take its timeout on every retry until the
    // retry deadline; a released token waits that long for it.
    let longest_call = upstream.timeout.max(sluice_warehouse::bigquery::MAX_HOLD);
    Ok(Credentials::new(default, named, config.policy.clone())
        .with_revoke_grace(longest_call + upstream.retry_deadline))
}

/// The minter one credential block needs.
async fn minter(
    config: &Config,
    settings: &CredentialConfig,
    store: &Arc<dyn Store>,
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
        } => Credential::WorkloadIdentity {
            audience: audience.clone(),
            service_account: service_account.clone(),
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
