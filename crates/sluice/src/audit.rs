//! `sluice audit`: check the audit log's hash chain and export events.
//!
//! `verify` recomputes the chain from the store (or from a file `export`
//! wrote) and names the first broken link: an event edited, deleted,
//! inserted or moved. It then checks the signed checkpoints — the store's,
//! and any kept elsewhere (`--checkpoints`, e.g. a sink's file) — against
//! the audit key: a log that ends before a checkpoint was truncated, one
//! whose hash differs from a checkpoint's was rewritten. `export` writes
//! events as JSON Lines, each with its sequence number and hashes, then
//! the checkpoints, so an export can be verified on its own.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;
use sluice_store::audit::{self, AuditRecord, Checkpoint, GENESIS};

use crate::secrets::Place;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and name the first broken link (exit 1).
    Verify {
        #[command(flatten)]
        place: Place,
        /// Verify an exported file (JSON Lines) instead of the store.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Checkpoints kept outside the store (JSON Lines: a sink's file or
        /// an export), checked too: they catch a tail cut off together with
        /// the store's own checkpoints.
        #[arg(long, value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// The audit key (hex, from `sluice audit public-key`), when the
        /// master key is not at hand.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
    },
    /// Print the public key that checks the audit log's checkpoints (hex).
    PublicKey {
        #[command(flatten)]
        place: Place,
    },
    /// Print events as JSON Lines, oldest first: who ran what, the
    /// decision, the tables, the masking, the refusals.
    Export {
        #[command(flatten)]
        place: Place,
        /// Only events at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
        #[arg(long, value_name = "TIME", value_parser = crate::parse_time)]
        since: Option<i64>,
        /// Only events of this principal (issuer#subject, or the subject alone).
        #[arg(long, value_name = "NAME")]
        principal: Option<String>,
        /// Only events that name this table (project.dataset.table).
        #[arg(long, value_name = "TABLE")]
        table: Option<String>,
    },
}

/// Events read from the store at a time.
const BATCH: usize = 1000;

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify {
            place,
            file,
            checkpoints,
            public_key,
        } => {
            let mut elsewhere = Vec::new();
            for path in &checkpoints {
                elsewhere.extend(read_checkpoints(path)?);
            }
            let chain = match &file {
                Some(path) => read_file(path, elsewhere)?,
                None => read_store(&place, elsewhere).await?,
            };
            let key =
                match public_key {
                    Some(hex) => Some(audit::parse_public_key(&hex).context(
                        "--public-key is not an Ed25519 public key in hex (64 hex digits)",
                    )?),
                    None if file.is_none() || !chain.checkpoints.is_empty() => {
                        stored_public_key(&place).await?
                    }
                    None => None,
                };
            report(&chain, key.as_deref())
        }
        AuditCommand::PublicKey { place } => {
            let key = stored_public_key(&place).await?.context(
                "there is no audit key yet: `sluice serve` makes it when a master key is configured",
            )?;
            crate::print_line(format_args!("{}", audit::hex(&key)))
        }
        AuditCommand::Export {
            place,
            since,
            principal,
            table,
        } => {
            let filter = audit::AuditFilter {
                since_ms: since,
                principal,
                table,
                ..audit::AuditFilter::default()
            };
            let (_, store) = crate::secrets::open(&place).await?;
            let mut out = std::io::stdout().lock();
            let mut after = 0;
            loop {
                let batch = store.audit_events(after, BATCH).await?;
                let Some(last) = batch.last() else { break };
                after = last.seq;
                for record in &batch {
                    if filter.matches(record) {
                        let line = serde_json::to_string(record)?;
                        if writeln!(out, "{line}").is_err() {
                            return Err(crate::OutputClosed.into());
                        }
                    }
                }
            }
            // A whole export carries the checkpoints, to be verified alone.
            if filter.is_everything() {
                for checkpoint in store.audit_checkpoints().await? {
                    let line = serde_json::json!({ "checkpoint": checkpoint });
                    if writeln!(out, "{line}").is_err() {
                        return Err(crate::OutputClosed.into());
                    }
                }
            }
            Ok(())
        }
    }
}

/// A chain as read: its events' hashes at the checkpoints, and where it
/// broke, if it did.
#[derive(Debug, Default)]
struct Chain {
    checked: usize,
    first: Option<i64>,
    head: i64,
    broken: Option<audit::Broken>,
    checkpoints: Vec<Checkpoint>,
    /// The hash of every event a checkpoint names.
    hashes: BTreeMap<i64, String>,
    /// The hash of the last event taken.
    last_hash: String,
}

impl Chain {
    /// Takes the next records (in order), checked from `prev`.
    fn take(&mut self, records: &[AuditRecord]) {
        let Some(first) = records.first() else {
            return;
        };
        if self.broken.is_some() {
            return;
        }
        let (seq, prev) = match self.first {
            None => {
                self.first = Some(first.seq);
                // A log pruned under retention starts after a checkpoint.
                let prev = if first.seq == 1 {
                    GENESIS.to_string()
                } else {
                    first.prev_hash.clone()
                };
                (first.seq, prev)
            }
            Some(_) => (self.head + 1, self.last_hash.clone()),
        };
        match audit::verify(records, seq, &prev) {
            Ok(n) => self.checked += n,
            Err(broken) => {
                self.checked += usize::try_from(broken.seq - seq).unwrap_or(0);
                self.broken = Some(broken);
                return;
            }
        }
        let want: std::collections::BTreeSet<i64> =
            self.checkpoints.iter().map(|c| c.seq).collect();
        for record in records {
            if want.contains(&record.seq) || record.seq == seq {
                self.hashes.insert(record.seq, record.hash.clone());
            }
        }
        if let Some(last) = records.last() {
            self.head = last.seq;
            self.last_hash = last.hash.clone();
        }
    }
}

async fn read_store(place: &Place, mut checkpoints: Vec<Checkpoint>) -> anyhow::Result<Chain> {
    let (_, store) = crate::secrets::open(place).await?;
    checkpoints.extend(store.audit_checkpoints().await?);
    let mut chain = Chain {
        checkpoints,
        ..Chain::default()
    };
    let mut after = 0;
    loop {
        let batch = store.audit_events(after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        chain.take(&batch);
    }
    Ok(chain)
}

fn read_file(path: &Path, elsewhere: Vec<Checkpoint>) -> anyhow::Result<Chain> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut records = Vec::new();
    let mut checkpoints = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not JSON", path.display(), n + 1))?;
        if let Some(checkpoint) = value.get("checkpoint") {
            checkpoints.push(
                serde_json::from_value(checkpoint.clone()).with_context(|| {
                    format!("{} line {}: not a checkpoint", path.display(), n + 1)
                })?,
            );
            continue;
        }
        let record: AuditRecord = serde_json::from_value(value)
            .with_context(|| format!("{} line {}: not an audit event", path.display(), n + 1))?;
        records.push(record);
    }
    checkpoints.extend(elsewhere);
    let mut chain = Chain {
        checkpoints,
        ..Chain::default()
    };
    // An export filtered by time, principal or table is not a whole
    // chain: it is checked from its first event on (and has no
    // checkpoints).
    chain.take(&records);
    Ok(chain)
}

/// The checkpoints in a file: lines holding a `checkpoint` object (an
/// export, or a sink's file), others skipped.
fn read_checkpoints(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut found = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(checkpoint) = value.get("checkpoint") {
            found.push(serde_json::from_value(checkpoint.clone()).with_context(|| {
                format!("{}: a checkpoint that cannot be read", path.display())
            })?);
        }
    }
    Ok(found)
}

/// The audit key's public half, from the secret store; `None` without a
/// master key or before the first `sluice serve` made the key.
async fn stored_public_key(place: &Place) -> anyhow::Result<Option<Vec<u8>>> {
    let (config, store) = crate::secrets::open(place).await?;
    let secrets = match sluice_gateway::secret_store(&config, store) {
        Ok(secrets) => secrets,
        Err(sluice_store::SecretError::NoMasterKey) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let Some((_, pkcs8)) = secrets.latest(audit::CHECKPOINT_KEY_SECRET).await? else {
        return Ok(None);
    };
    let key = audit::CheckpointKey::from_pkcs8(&pkcs8).map_err(anyhow::Error::msg)?;
    Ok(Some(key.public_key()))
}

fn time(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map_or_else(|| at_ms.to_string(), |t| t.to_rfc3339())
}

/// Prints what was verified, or fails with the first broken link.
fn report(chain: &Chain, key: Option<&[u8]>) -> anyhow::Result<()> {
    if let Some(broken) = &chain.broken {
        anyhow::bail!("{broken} ({} events before it are intact)", chain.checked);
    }
    let first = chain.first.unwrap_or(1);
    let Some(key) = key else {
        crate::print_line(format_args!(
            "audit chain intact: {} events; checkpoints not checked: no audit key at hand (give \
             the master key, or --public-key from `sluice audit public-key`), so a truncated tail \
             would not show",
            chain.checked
        ))?;
        return Ok(());
    };
    if first > 1 && !chain.checkpoints.iter().any(|c| c.seq == first) {
        anyhow::bail!(
            "the audit chain breaks at event {first}: events 1 to {} are missing and no signed \
             checkpoint vouches for their removal",
            first - 1
        );
    }
    let signed = audit::check_checkpoints(&chain.checkpoints, key, first, chain.head, |seq| {
        chain.hashes.get(&seq).cloned()
    })
    .map_err(|broken| {
        anyhow::anyhow!(
            "{broken} (the chain itself is intact through event {})",
            chain.head
        )
    })?;
    match signed.through {
        Some((seq, at_ms)) => crate::print_line(format_args!(
            "audit chain intact: {} events (to event {}); signed through event {seq} at {} by key \
             {} ({} checkpoints); {} later events not signed yet",
            chain.checked,
            chain.head,
            time(at_ms),
            audit::key_id(key),
            signed.checkpoints,
            chain.head - seq
        )),
        None => crate::print_line(format_args!(
            "audit chain intact: {} events; no signed checkpoint yet",
            chain.checked
        )),
    }
}
