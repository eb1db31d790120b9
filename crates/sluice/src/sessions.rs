//! `sluice sessions`: what one agent did, request by request.
//!
//! A session is a principal's CI run (else its token, else an hour); its
//! events are read from the audit log. `show` prints the timeline — SQL,
//! decision, approvals, jobs, refusals — and `replay` adds the rows of
//! every page exactly as the agent received them (masked), each checked
//! against the SHA-256 its audit event carries.

use clap::Subcommand;
use sluice_gateway::replay::{self, RecordedRows};
use sluice_store::AuditRecord;

use crate::secrets::Place;

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// The sessions with activity since a time, the latest first.
    List {
        #[command(flatten)]
        place: Place,
        /// Only sessions active at or after this time (RFC 3339; default:
        /// the last 7 days).
        #[arg(long, value_name = "TIME", value_parser = crate::parse_time)]
        since: Option<i64>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One session's timeline: requests, SQL, decisions, approvals, jobs.
    Show {
        #[command(flatten)]
        place: Place,
        /// The session (from `sluice sessions list`).
        id: String,
        /// Print its events as JSON Lines.
        #[arg(long)]
        json: bool,
    },
    /// The timeline with the rows of every page as the agent saw them.
    Replay {
        #[command(flatten)]
        place: Place,
        id: String,
        /// Wait between events as long as the agent did.
        #[arg(long)]
        realtime: bool,
        /// Rows printed per page (the rest is counted).
        #[arg(long, default_value_t = 20)]
        max_rows: usize,
    },
}

const WEEK_MS: i64 = 7 * 24 * 3_600_000;

pub async fn run(command: SessionsCommand) -> anyhow::Result<()> {
    match command {
        SessionsCommand::List {
            place,
            since,
            limit,
            json,
        } => {
            let (_, store) = crate::secrets::open(&place).await?;
            let since = since.unwrap_or_else(|| chrono::Utc::now().timestamp_millis() - WEEK_MS);
            let sessions = store.audit_sessions(since, limit).await?;
            if json {
                for session in &sessions {
                    crate::print_line(format_args!("{}", serde_json::to_string(session)?))?;
                }
                return Ok(());
            }
            if sessions.is_empty() {
                crate::print_note(format_args!("no session since {}", time(since)));
                return Ok(());
            }
            crate::print_line(format_args!(
                "{:<22} {:<40} {:<25} {:<25} {:>6} {:>7} {:>7}",
                "SESSION", "PRINCIPAL", "FIRST", "LAST", "EVENTS", "QUERIES", "REFUSED"
            ))?;
            for s in &sessions {
                crate::print_line(format_args!(
                    "{:<22} {:<40} {:<25} {:<25} {:>6} {:>7} {:>7}",
                    s.session,
                    s.principal,
                    time(s.first_ms),
                    time(s.last_ms),
                    s.events,
                    s.queries,
                    s.refused
                ))?;
            }
            Ok(())
        }
        SessionsCommand::Show { place, id, json } => {
            let (_, store) = crate::secrets::open(&place).await?;
            let events = events_of(store.as_ref(), &id).await?;
            for record in &events {
                if json {
                    crate::print_line(format_args!("{}", serde_json::to_string(record)?))?;
                } else {
                    crate::print_line(format_args!("{}", line(record)))?;
                }
            }
            Ok(())
        }
        SessionsCommand::Replay {
            place,
            id,
            realtime,
            max_rows,
        } => {
            let (_, store) = crate::secrets::open(&place).await?;
            let events = events_of(store.as_ref(), &id).await?;
            let mut previous: Option<i64> = None;
            for record in &events {
                if let (true, Some(before)) = (realtime, previous) {
                    let gap = u64::try_from(record.event.at_ms - before).unwrap_or(0);
                    tokio::time::sleep(std::time::Duration::from_millis(gap.min(60_000))).await;
                }
                previous = Some(record.event.at_ms);
                crate::print_line(format_args!("{}", line(record)))?;
                for text in page_lines(store.as_ref(), record, max_rows).await? {
                    crate::print_line(format_args!("    {text}"))?;
                }
            }
            Ok(())
        }
    }
}

/// Every event of a session, in order; an unknown session is an error.
async fn events_of(
    store: &dyn sluice_store::Store,
    session: &str,
) -> anyhow::Result<Vec<AuditRecord>> {
    let events = replay::session_events(store, session, usize::MAX).await?;
    anyhow::ensure!(
        !events.is_empty(),
        "no session {session:?} in the audit log (`sluice sessions list` shows them)"
    );
    Ok(events)
}

fn time(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms).map_or_else(
        || at_ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// One event as a line of the timeline.
fn line(record: &AuditRecord) -> String {
    let mut parts = vec![
        time(record.event.at_ms),
        format!("#{}", record.seq),
        record.event.kind.clone(),
    ];
    parts.extend(replay::describe(record));
    if let Some(sql) = replay::sql(record) {
        parts.push(format!("sql: {sql}"));
    }
    parts.join("  ")
}

/// The rows of a recorded page, checked against its event's hash.
async fn page_lines(
    store: &dyn sluice_store::Store,
    record: &AuditRecord,
    max_rows: usize,
) -> anyhow::Result<Vec<String>> {
    let Some(recorded) = replay::recorded_rows(store, record, max_rows).await? else {
        return Ok(Vec::new());
    };
    if let Some(notice) = recorded.notice() {
        return Ok(vec![format!("[{notice}]")]);
    }
    let mut lines = Vec::new();
    if let RecordedRows::Rows {
        columns,
        rows,
        more,
    } = recorded
    {
        if !columns.is_empty() {
            lines.push(columns.join(" | "));
        }
        lines.extend(rows.iter().map(|row| row.join(" | ")));
        if more > 0 {
            lines.push(format!("… {more} more rows"));
        }
    }
    Ok(lines)
}
