//! Audit events and their hash chain.
//!
//! Each event is stored with its sequence number, the hash of the event
//! before it and its own hash: SHA-256 over the previous hash and the
//! event's canonical encoding (JSON with sorted keys, its `seq` included).
//! Editing, deleting, inserting or reordering a stored event breaks the
//! chain at that event, and [`verify`] names the first broken link.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One event, as the gateway appends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What happened: `request`, `query.started`, ….
    pub kind: String,
    /// Who (`issuer#subject`), or empty before authentication.
    pub principal: String,
    /// The request it belongs to (its `x-request-id`).
    pub request_id: String,
    /// The gateway process that wrote it.
    pub instance: String,
    /// The rest, by kind (never a token or a raw masked value).
    pub detail: Value,
}

/// An event as stored: its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// The canonical encoding the hash covers.
pub fn canonical(seq: i64, event: &AuditEvent) -> String {
    // serde_json's maps keep keys sorted, nested ones too.
    json!({
        "seq": seq,
        "at_ms": event.at_ms,
        "kind": event.kind,
        "principal": event.principal,
        "request_id": event.request_id,
        "instance": event.instance,
        "detail": event.detail,
    })
    .to_string()
}

/// The hash of event `seq` after `prev_hash`, in lower-case hex.
pub fn chain_hash(prev_hash: &str, seq: i64, event: &AuditEvent) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(prev_hash.as_bytes());
    context.update(b"\n");
    context.update(canonical(seq, event).as_bytes());
    context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit chain breaks at event {seq}: {why}")]
pub struct Broken {
    /// The first event that does not follow from the ones before it.
    pub seq: i64,
    pub why: String,
}

/// Checks `records`, in order, as a chain starting after `prev_hash`
/// with sequence number `first_seq`; returns how many were checked.
pub fn verify(records: &[AuditRecord], first_seq: i64, prev_hash: &str) -> Result<usize, Broken> {
    let mut prev = prev_hash.to_string();
    for (expected_seq, record) in (first_seq..).zip(records) {
        let broken = |why: String| Broken {
            seq: record.seq,
            why,
        };
        if record.seq != expected_seq {
            return Err(broken(format!(
                "expected event {expected_seq} here (an event was deleted, inserted or moved)"
            )));
        }
        if record.prev_hash != prev {
            return Err(broken(
                "its prev_hash is not the hash of the event before it (an event before it was \
                 deleted, inserted or moved)"
                    .into(),
            ));
        }
        let hash = chain_hash(&prev, record.seq, &record.event);
        if record.hash != hash {
            return Err(broken(
                "its content does not match its hash (the event was edited)".into(),
            ));
        }
        prev = hash;
    }
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let event = AuditEvent {
                    at_ms: 1_000 + seq,
                    kind: "request".into(),
                    principal: "iss#agent".into(),
                    request_id: format!("r{seq}"),
                    instance: "i".into(),
                    detail: json!({"status": 200, "sql": format!("SELECT {seq}")}),
                };
                let hash = chain_hash(&prev, seq, &event);
                let record = AuditRecord {
                    seq,
                    event,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                record
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(verify(&chain(5), 1, GENESIS), Ok(5));
        assert_eq!(verify(&[], 1, GENESIS), Ok(0));
    }

    #[test]
    fn an_edited_event_breaks_the_chain_there() {
        let mut records = chain(5);
        records[2].event.detail["sql"] = json!("SELECT 42");
        let broken = verify(&records, 1, GENESIS).unwrap_err();
        assert_eq!(broken.seq, 3);
        assert!(broken.why.contains("edited"), "{broken}");
        // Rehashing the edited event alone moves the break to the next one.
        records[2].hash = chain_hash(&records[2].prev_hash, 3, &records[2].event);
        assert_eq!(verify(&records, 1, GENESIS).unwrap_err().seq, 4);
    }

    #[test]
    fn a_deleted_inserted_or_reordered_event_breaks_the_chain() {
        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(verify(&deleted, 1, GENESIS).unwrap_err().seq, 3);

        let mut inserted = chain(5);
        let mut extra = inserted[1].clone();
        extra.event.request_id = "forged".into();
        inserted.insert(2, extra);
        assert_eq!(verify(&inserted, 1, GENESIS).unwrap_err().seq, 2);

        let mut reordered = chain(5);
        reordered.swap(1, 3);
        assert_eq!(verify(&reordered, 1, GENESIS).unwrap_err().seq, 4);

        // Renumbering after a deletion does not help: the hashes cover seq.
        let mut renumbered = chain(5);
        renumbered.remove(1);
        for (i, r) in renumbered.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert_eq!(verify(&renumbered, 1, GENESIS).unwrap_err().seq, 2);
    }
}
