//! `sluice secrets`: create the master key, import a service-account key
//! into the encrypted store, list what is stored, rotate the master key;
//! export and rotate Sluice's own signing keys (workload identity).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use sluice_credentials::{KeyState, SIGNING_KEYS_SECRET, SigningKeys};
use sluice_gateway::Config;
use sluice_store::{MasterKey, SqliteStore, Store};

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create a new master key and write it (base64) to FILE, readable by
    /// its owner only. Give it to Sluice with SLUICE_MASTER_KEY or
    /// secrets.master_key_file.
    InitKey {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Import a service-account key file under NAME, encrypted. The file
    /// can be deleted afterwards.
    Put {
        name: String,
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        place: Place,
    },
    /// List stored secrets (names, versions, master key ids; never values).
    List {
        #[command(flatten)]
        place: Place,
    },
    /// Re-encrypt every stored secret's data key under a new master key
    /// (from `sluice secrets init-key`); then switch Sluice to the new key.
    Rotate {
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
        #[command(flatten)]
        place: Place,
    },
    /// Print Sluice's JWKS, the public keys of the assertions it signs for
    /// workload identity, or write it to FILE for a pool provider given the
    /// keys directly (`gcloud iam workload-identity-pools providers
    /// create-oidc … --jwk-json-path FILE`). Makes the signing key (in the
    /// encrypted store) when there is none yet.
    Jwks {
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        place: Place,
    },
    /// Add a new signing key for Sluice's workload-identity assertions.
    /// Running gateways sign with it within a minute; the previous keys
    /// stay in the JWKS for a day, so assertions signed before still
    /// verify. Give a provider that holds the JWKS as a file the new one.
    RotateSigningKey {
        /// Publish the new key now, sign with it only after DURATION (e.g.
        /// 1h): time to give a provider the new JWKS first.
        #[arg(long, value_name = "DURATION")]
        activate_after: Option<String>,
        /// Stop publishing every previous key now (one that must not be
        /// trusted any more); assertions they signed are refused from then.
        #[arg(long)]
        drop_previous: bool,
        #[command(flatten)]
        place: Place,
    },
}

/// Which store: the configuration's, or another data folder.
#[derive(Debug, clap::Args)]
pub struct Place {
    /// YAML configuration file (default: the built-in demo).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// The data folder (overrides the configuration's data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

pub async fn run(command: SecretsCommand) -> anyhow::Result<()> {
    match command {
        SecretsCommand::InitKey { out } => init_key(&out),
        SecretsCommand::Put { name, file, place } => {
            anyhow::ensure!(
                name != SIGNING_KEYS_SECRET,
                "\"{SIGNING_KEYS_SECRET}\" holds Sluice's own signing keys; store the key under \
                 another name (rotate the signing keys with `sluice secrets rotate-signing-key`)"
            );
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            sluice_credentials::ServiceAccountKey::from_json(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message))?;
            let (config, store) = open(&place).await?;
            let secrets = sluice_gateway::secret_store(&config, store.clone())?;
            audited(
                &config,
                &store,
                "secrets.put",
                serde_json::json!({ "name": name }),
            )
            .await?;
            let info = secrets.put(&name, &bytes).await?;
            println!(
                "stored \"{}\" version {} (encrypted under master key {}); {} can now be deleted",
                info.name,
                info.version,
                info.master_key_id,
                file.display()
            );
            Ok(())
        }
        SecretsCommand::List { place } => {
            let (config, store) = open(&place).await?;
            let secrets = sluice_gateway::secret_store(&config, store)?;
            let list = secrets.list().await?;
            if list.is_empty() {
                println!("no secrets stored");
            }
            for info in list {
                println!(
                    "{}\tversion {}\tmaster key {}",
                    info.name, info.version, info.master_key_id
                );
            }
            Ok(())
        }
        SecretsCommand::Rotate {
            new_key_file,
            place,
        } => {
            let text = std::fs::read_to_string(&new_key_file)
                .with_context(|| format!("cannot read {}", new_key_file.display()))?;
            let new = MasterKey::from_base64(&text)?;
            let (config, store) = open(&place).await?;
            let secrets = sluice_gateway::secret_store(&config, store.clone())?;
            audited(
                &config,
                &store,
                "secrets.rotate",
                serde_json::json!({ "new_master_key": new.id() }),
            )
            .await?;
            let count = secrets.rotate(&new).await?;
            println!(
                "re-encrypted {count} secret version(s) under master key {}; \
                 now point SLUICE_MASTER_KEY or secrets.master_key_file at {} and restart Sluice",
                new.id(),
                new_key_file.display()
            );
            Ok(())
        }
        SecretsCommand::Jwks { out, place } => {
            let (config, store) = open(&place).await?;
            let secrets = sluice_gateway::secret_store(&config, store.clone())?;
            let stored = sluice_gateway::signing_keys(&secrets).await?;
            if stored.created {
                // Made on first use, so recorded after the fact.
                audited(
                    &config,
                    &store,
                    "secrets.create-signing-key",
                    serde_json::json!({ "name": SIGNING_KEYS_SECRET }),
                )
                .await?;
                eprintln!(
                    "made Sluice's signing key (stored encrypted as \"{SIGNING_KEYS_SECRET}\")"
                );
            }
            describe(&stored.keys);
            let jwks = format!("{:#}", stored.keys.jwks(unix_now()));
            match out {
                None => println!("{jwks}"),
                Some(path) => {
                    std::fs::write(&path, format!("{jwks}\n"))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "wrote the JWKS (public keys only) to {}; give it to the pool provider with \
                         --jwk-json-path, again after every rotation",
                        path.display()
                    );
                }
            }
            Ok(())
        }
        SecretsCommand::RotateSigningKey {
            activate_after,
            drop_previous,
            place,
        } => {
            let delay = match activate_after.as_deref() {
                None => std::time::Duration::ZERO,
                Some(text) => sluice_identity::parse_duration(text)
                    .map_err(|e| anyhow::anyhow!("--activate-after: {e}"))?,
            };
            let (config, store) = open(&place).await?;
            let secrets = sluice_gateway::secret_store(&config, store.clone())?;
            audited(
                &config,
                &store,
                "secrets.rotate-signing-key",
                serde_json::json!({
                    "activate_after_s": delay.as_secs(),
                    "drop_previous": drop_previous,
                }),
            )
            .await?;
            let stored =
                sluice_gateway::rotate_signing_keys(&secrets, delay, drop_previous).await?;
            describe(&stored.keys);
            println!(
                "added a signing key (version {} of \"{SIGNING_KEYS_SECRET}\"); running gateways \
                 take it up within a minute. A pool provider given the JWKS as a file needs the \
                 new one: `sluice secrets jwks --out FILE`",
                stored.version
            );
            Ok(())
        }
    }
}

/// Records an administrator's action in the audit log before it is taken;
/// when the log cannot take it, the action is not taken.
async fn audited(
    config: &Config,
    store: &Arc<dyn sluice_store::Store>,
    action: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    if !config.audit.enabled {
        return Ok(());
    }
    store
        .append_audit(&sluice_gateway::admin_event(action, detail))
        .await
        .context("the audit log cannot record this action, so it was not taken")?;
    Ok(())
}

/// One line per signing key on stderr: its id and state.
fn describe(keys: &SigningKeys) {
    for key in keys.describe(unix_now()) {
        let state = match key.state {
            KeyState::Pending => format!("published, signs from {}", when(key.active_from)),
            KeyState::Active => "signs new assertions".to_owned(),
            KeyState::Retired { until } => format!("retired, published until {}", when(until)),
            KeyState::Expired => "retired, no longer published".to_owned(),
        };
        eprintln!("signing key {}: {state}", key.kid);
    }
}

/// Unix seconds as a UTC time.
fn when(seconds: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    let ago = time.elapsed().map(|d| d.as_secs());
    match ago {
        Ok(secs) => format!("unix time {seconds} ({secs}s ago)"),
        Err(ahead) => format!("unix time {seconds} (in {}s)", ahead.duration().as_secs()),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn init_key(out: &Path) -> anyhow::Result<()> {
    let key = MasterKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(out).with_context(|| {
        format!(
            "cannot create {} (an existing key is never overwritten)",
            out.display()
        )
    })?;
    file.write_all(key.to_base64().as_bytes())?;
    file.write_all(b"\n")?;
    println!("master key {} written to {}", key.id(), out.display());
    Ok(())
}

pub async fn open(place: &Place) -> anyhow::Result<(Config, Arc<dyn Store>)> {
    let mut config = match &place.config {
        Some(path) => Config::load(path)?,
        None => Config::demo(),
    };
    if let Some(dir) = &place.data_dir {
        config.set_data_dir(dir.clone());
    }
    if let Some(parent) = config.store_path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let store = SqliteStore::open(&config.store_path)
        .await
        .with_context(|| format!("cannot open the store {}", config.store_path.display()))?;
    Ok((config, Arc::new(store)))
}
