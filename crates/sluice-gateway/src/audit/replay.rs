//! A session read back from the audit log: its events in order and the
//! rows of every page as the agent received them, each checked against
//! the SHA-256 its event carries. `sluice sessions show|replay` and the
//! reviewer UI's session pages (`/ui/sessions/{id}`) both read sessions
//! through here, so they show the same thing.

use serde_json::Value;
use sluice_store::audit::sha256_hex;
use sluice_store::{AuditRecord, Store, StoreError};

/// Events read from the store per batch.
const BATCH: usize = 1000;

/// Every event of `session`, oldest first, at most `limit` (an empty list
/// when there is no such session).
pub async fn session_events(
    store: &dyn Store,
    session: &str,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut events = Vec::new();
    let mut after = 0;
    while events.len() < limit {
        let batch = store
            .audit_session_events(session, after, BATCH.min(limit - events.len()))
            .await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        events.extend(batch);
    }
    Ok(events)
}

/// The rows one request returned, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedRows {
    /// The page, as the agent received it: its column names and the first
    /// rows (each cell as text), and how many rows were left out.
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
        more: usize,
    },
    /// Larger than `audit.max_recorded_page_bytes`: only its hash and size
    /// were kept.
    TooLarge { bytes: u64 },
    /// Removed under `audit.retention`.
    Dropped,
    /// The recorded page does not match the hash in the chain: it was
    /// edited after it was written.
    Altered,
    /// The recorded page matches its hash but is not the JSON page the
    /// gateway writes.
    Unreadable,
}

impl RecordedRows {
    /// What to say instead of rows, when there are none to show.
    pub fn notice(&self) -> Option<String> {
        match self {
            RecordedRows::Rows { .. } => None,
            RecordedRows::TooLarge { bytes } => Some(format!(
                "{bytes} bytes of rows, above the recording limit: not recorded"
            )),
            RecordedRows::Dropped => {
                Some("rows not kept: dropped under the retention period".into())
            }
            RecordedRows::Altered => Some(
                "the recorded rows do not match the SHA-256 in the audit event: altered".into(),
            ),
            RecordedRows::Unreadable => {
                Some("the recorded rows match their SHA-256 but are not a page of rows".into())
            }
        }
    }
}

/// The rows of the page recorded with event `record`, if its request
/// returned any (`None` when it returned no page).
pub async fn recorded_rows(
    store: &dyn Store,
    record: &AuditRecord,
    max_rows: usize,
) -> Result<Option<RecordedRows>, StoreError> {
    let Some(page) = record.event.detail.get("page") else {
        return Ok(None);
    };
    let Some(body) = store.recorded_page(record.seq).await? else {
        return Ok(Some(match page["recorded"].as_bool() {
            Some(false) => RecordedRows::TooLarge {
                bytes: page["bytes"].as_u64().unwrap_or(0),
            },
            _ => RecordedRows::Dropped,
        }));
    };
    if page["sha256"].as_str() != Some(sha256_hex(body.as_bytes()).as_str()) {
        return Ok(Some(RecordedRows::Altered));
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return Ok(Some(RecordedRows::Unreadable));
    };
    let columns = body["schema"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let all = body["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows = all
        .iter()
        .take(max_rows)
        .map(|row| {
            row["f"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|cell| cell_text(&cell["v"]))
                .collect()
        })
        .collect();
    Ok(Some(RecordedRows::Rows {
        columns,
        rows,
        more: all.len().saturating_sub(max_rows),
    }))
}

/// A cell as text: a string as is, `NULL`, anything nested as JSON.
fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The SQL an event is about, if any.
pub fn sql(record: &AuditRecord) -> Option<&str> {
    record
        .event
        .detail
        .get("sql")
        .and_then(Value::as_str)
        .filter(|sql| !sql.is_empty())
}

/// What an event says, in a few words after its kind: the method and
/// status, the decision, the job, what was masked, the refusal (the SQL
/// is [`sql`]).
pub fn describe(record: &AuditRecord) -> Vec<String> {
    let d = &record.event.detail;
    let text = |key: &str| d.get(key).and_then(Value::as_str).unwrap_or("");
    let mut parts = Vec::new();
    match record.event.kind.as_str() {
        "request" => {
            parts.push(text("method").to_owned());
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
            if !text("refusal").is_empty() {
                parts.push(format!("refused: {}", text("refusal")));
            }
        }
        "query.started" => {
            parts.push(format!("job {}", text("job")));
            if let Some(approval) = d.get("approval").and_then(Value::as_str) {
                parts.push(format!("approved as {approval}"));
            }
        }
        _ => {
            let mut rest = d.clone();
            if let Some(map) = rest.as_object_mut() {
                map.remove("claims");
                map.remove("sql");
            }
            parts.push(rest.to_string());
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_store::AuditEvent;

    fn request_event(page: Value) -> AuditEvent {
        AuditEvent {
            at_ms: 1,
            kind: "request".into(),
            principal: "p".into(),
            request_id: "r".into(),
            instance: "i".into(),
            session: "run-1".into(),
            detail: json!({ "method": "jobs.getQueryResults", "status": 200, "page": page }),
        }
    }

    #[tokio::test]
    async fn a_page_reads_back_as_recorded_and_an_edit_is_called_altered() {
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(
            sluice_store::SqliteStore::open_url("sqlite::memory:")
                .await
                .expect("store"),
        );
        let body = json!({
            "schema": { "fields": [{ "name": "ssn" }, { "name": "n" }] },
            "rows": [{ "f": [{ "v": "***-**-****" }, { "v": "1" }] },
                     { "f": [{ "v": null }, { "v": "2" }] }]
        })
        .to_string();
        let event = request_event(json!({
            "sha256": sha256_hex(body.as_bytes()), "bytes": body.len(), "recorded": true
        }));
        let record = store
            .append_audit_recorded(&event, Some(&body))
            .await
            .expect("append");
        let rows = recorded_rows(store.as_ref(), &record, 1)
            .await
            .expect("read");
        assert_eq!(
            rows,
            Some(RecordedRows::Rows {
                columns: vec!["ssn".into(), "n".into()],
                rows: vec![vec!["***-**-****".into(), "1".into()]],
                more: 1,
            })
        );
        let events = session_events(store.as_ref(), "run-1", 10)
            .await
            .expect("events");
        assert_eq!(events.len(), 1);
        assert!(describe(&events[0]).contains(&"jobs.getQueryResults".to_owned()));

        // The same event over a page whose hash it does not carry.
        let other = request_event(json!({ "sha256": "00", "bytes": 2, "recorded": true }));
        let record = store
            .append_audit_recorded(&other, Some(&body))
            .await
            .expect("append");
        assert_eq!(
            recorded_rows(store.as_ref(), &record, 10)
                .await
                .expect("read"),
            Some(RecordedRows::Altered)
        );
        let too_large = request_event(json!({ "sha256": "00", "bytes": 9, "recorded": false }));
        let record = store.append_audit(&too_large).await.expect("append");
        assert_eq!(
            recorded_rows(store.as_ref(), &record, 10)
                .await
                .expect("read"),
            Some(RecordedRows::TooLarge { bytes: 9 })
        );
    }
}
