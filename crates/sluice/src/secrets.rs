//! `sluice secrets`: create the master key, import a service-account key
//! into the encrypted store, list what is stored, rotate the master key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
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
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            sluice_credentials::ServiceAccountKey::from_json(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message))?;
            let (config, store) = open(&place).await?;
            let secrets = sluice_gateway::secret_store(&config, store)?;
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
            let secrets = sluice_gateway::secret_store(&config, store)?;
            let count = secrets.rotate(&new).await?;
            println!(
                "re-encrypted {count} secret version(s) under master key {}; \
                 now point SLUICE_MASTER_KEY or secrets.master_key_file at {} and restart Sluice",
                new.id(),
                new_key_file.display()
            );
            Ok(())
        }
    }
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

async fn open(place: &Place) -> anyhow::Result<(Config, Arc<dyn Store>)> {
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
