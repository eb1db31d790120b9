//! `sluice audit`: check the audit log's hash chain and export events.
//!
//! `verify` recomputes the chain from the store (or from a file `export`
//! wrote) and names the first broken link: an event edited, deleted,
//! inserted or moved. `export` writes events as JSON Lines, each with its
//! sequence number and hashes, so an export can be verified on its own.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use sluice_store::audit::{self, AuditRecord, GENESIS};

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
        AuditCommand::Verify { place, file } => {
            let (checked, first) = match file {
                Some(path) => verify_file(&path)?,
                None => verify_store(&place).await?,
            };
            match first {
                None => println!("audit chain intact: {checked} events"),
                Some(broken) => anyhow::bail!("{broken} ({checked} events before it are intact)"),
            }
            Ok(())
        }
        AuditCommand::Export {
            place,
            since,
            principal,
            table,
        } => {
            let (_, store) = crate::secrets::open(&place).await?;
            let mut out = std::io::stdout().lock();
            let mut after = 0;
            loop {
                let batch = store.audit_events(after, BATCH).await?;
                let Some(last) = batch.last() else { break };
                after = last.seq;
                for record in &batch {
                    if keep(record, since, principal.as_deref(), table.as_deref()) {
                        let line = serde_json::to_string(record)?;
                        if writeln!(out, "{line}").is_err() {
                            return Err(crate::OutputClosed.into());
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

fn keep(
    record: &AuditRecord,
    since: Option<i64>,
    principal: Option<&str>,
    table: Option<&str>,
) -> bool {
    let event = &record.event;
    since.is_none_or(|t| event.at_ms >= t)
        && principal.is_none_or(|p| {
            event.principal == p
                || event
                    .principal
                    .rsplit_once('#')
                    .is_some_and(|(_, sub)| sub == p)
        })
        && table.is_none_or(|t| {
            event.detail["tables"]
                .as_array()
                .is_some_and(|tables| tables.iter().any(|x| x.as_str() == Some(t)))
        })
}

async fn verify_store(place: &Place) -> anyhow::Result<(usize, Option<audit::Broken>)> {
    let (_, store) = crate::secrets::open(place).await?;
    let (mut checked, mut after, mut prev) = (0, 0, GENESIS.to_string());
    loop {
        let batch = store.audit_events(after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        if let Err(broken) = audit::verify(&batch, after + 1, &prev) {
            let before = usize::try_from(broken.seq - after - 1).unwrap_or(0);
            return Ok((checked + before, Some(broken)));
        }
        checked += batch.len();
        after = last.seq;
        prev = last.hash.clone();
    }
    Ok((checked, None))
}

fn verify_file(path: &PathBuf) -> anyhow::Result<(usize, Option<audit::Broken>)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut records = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: AuditRecord = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not an audit event", path.display(), n + 1))?;
        records.push(record);
    }
    // An export filtered by time, principal or table is not a whole
    // chain: it is checked from its first event on.
    let Some(first) = records.first() else {
        return Ok((0, None));
    };
    let (seq, prev) = (first.seq, first.prev_hash.clone());
    Ok(match audit::verify(&records, seq, &prev) {
        Ok(n) => (n, None),
        Err(broken) => (usize::try_from(broken.seq - seq).unwrap_or(0), Some(broken)),
    })
}
