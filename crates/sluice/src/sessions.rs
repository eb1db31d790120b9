//! `sluice sessions`: what one agent did, request by request.
//!
//! A session is a principal's CI run (else its token, else an hour); its
//! events are read from the audit log. `show` prints the timeline — SQL,
//! decision, approvals, jobs, refusals — and `replay` adds the rows of
//! every page exactly as the agent received them (masked), each checked
//! against the SHA-256 its audit event carries.

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;
use sluice_store::AuditRecord;
use sluice_store::audit::sha256_hex;

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
                let Some(page) = record.event.detail.get("page") else {
                    continue;
                };
                for text in page_lines(store.as_ref(), record.seq, page, max_rows).await? {
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
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.audit_session_events(session, after, 1000).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        events.extend(batch);
    }
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
    let event = &record.event;
    let d = &event.detail;
    let text = |key: &str| d.get(key).and_then(Value::as_str).unwrap_or("");
    let mut parts = vec![
        time(event.at_ms),
        format!("#{}", record.seq),
        event.kind.clone(),
    ];
    match event.kind.as_str() {
        "request" => {
            parts.push(text("method").to_string());
            parts.push(d["status"].to_string());
            if let Some(decision) = d.get("decision") {
                parts.push(format!(
                    "decision {} ({}, policy {})",
                    decision["verdict"].as_str().unwrap_or("?"),
                    decision["rule"].as_str().unwrap_or("?"),
                    decision["policy"].as_str().unwrap_or("-"),
                ));
            }
            if let Some(job) = d.get("job").and_then(Value::as_str) {
                parts.push(format!("job {job}"));
            }
            if let Some(masked) = d.get("masked") {
                parts.push(format!("masked {masked}"));
            }
            if !text("sql").is_empty() {
                parts.push(format!("sql: {}", text("sql")));
            }
            if !text("refusal").is_empty() {
                parts.push(format!("refused: {}", text("refusal")));
            }
        }
        "query.started" => {
            parts.push(format!("job {}", text("job")));
            if let Some(approval) = d.get("approval").and_then(Value::as_str) {
                parts.push(format!("approved as {approval}"));
            }
            parts.push(format!("sql: {}", text("sql")));
        }
        _ => {
            let mut rest = d.clone();
            if let Some(map) = rest.as_object_mut() {
                map.remove("claims");
            }
            parts.push(rest.to_string());
        }
    }
    parts.join("  ")
}

/// The rows of a recorded page, checked against its event's hash.
async fn page_lines(
    store: &dyn sluice_store::Store,
    seq: i64,
    page: &Value,
    max_rows: usize,
) -> anyhow::Result<Vec<String>> {
    let bytes = page["bytes"].as_u64().unwrap_or(0);
    let Some(body) = store.recorded_page(seq).await? else {
        return Ok(vec![match page["recorded"].as_bool() {
            Some(false) => {
                format!("[{bytes} bytes of rows, above the recording limit: not recorded]")
            }
            _ => "[rows not kept: dropped under the retention period]".into(),
        }]);
    };
    if page["sha256"].as_str() != Some(sha256_hex(body.as_bytes()).as_str()) {
        return Ok(vec![
            "[the recorded rows do not match the SHA-256 in the audit event: altered]".into(),
        ]);
    }
    let body: Value = serde_json::from_str(&body).context("a recorded page is not JSON")?;
    let mut lines = Vec::new();
    if let Some(fields) = body["schema"]["fields"].as_array() {
        let names: Vec<&str> = fields.iter().filter_map(|f| f["name"].as_str()).collect();
        lines.push(names.join(" | "));
    }
    let rows = body["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for row in rows.iter().take(max_rows) {
        let cells: Vec<String> = row["f"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|cell| match &cell["v"] {
                Value::Null => "NULL".into(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        lines.push(cells.join(" | "));
    }
    if rows.len() > max_rows {
        lines.push(format!("… {} more rows", rows.len() - max_rows));
    }
    Ok(lines)
}
