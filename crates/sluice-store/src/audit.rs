//! Audit events and their hash chain.
//!
//! Each event is stored with its sequence number, the hash of the event
//! before it and its own hash: SHA-256 over the previous hash and the
//! event's canonical encoding (JSON with sorted keys, its `seq` included).
//! Editing, deleting, inserting or reordering a stored event breaks the
//! chain at that event, and [`verify`] names the first broken link.
//!
//! A chain alone cannot show that its last events were cut off, nor that
//! someone with write access recomputed every hash after an edit. So the
//! gateway signs the chain's head from time to time ([`Checkpoint`],
//! Ed25519, the key in the encrypted secret store) and sends each
//! checkpoint to the audit sinks too: a chain that ends before a signed
//! checkpoint was truncated, and one whose hash at a checkpoint differs
//! from the signed one was rewritten ([`check_checkpoints`]).
//!
//! The rows an agent received are recorded apart from the chain
//! (`audit_pages`), so retention can drop them without breaking it; the
//! request's event carries their SHA-256 ([`sha256_hex`]), so a recorded
//! page that was altered is told apart from one that was not.

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
    /// The session it belongs to: the principal's CI run, else its token,
    /// else the hour (empty for events of no principal).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
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
    let mut canonical = json!({
        "seq": seq,
        "at_ms": event.at_ms,
        "kind": event.kind,
        "principal": event.principal,
        "request_id": event.request_id,
        "instance": event.instance,
        "detail": event.detail,
    });
    // Events of no session keep the encoding they had before sessions.
    if !event.session.is_empty() {
        canonical["session"] = json!(event.session);
    }
    canonical.to_string()
}

/// The hash of event `seq` after `prev_hash`, in lower-case hex.
pub fn chain_hash(prev_hash: &str, seq: i64, event: &AuditEvent) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(prev_hash.as_bytes());
    context.update(b"\n");
    context.update(canonical(seq, event).as_bytes());
    hex(context.finish().as_ref())
}

/// SHA-256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A signed statement that the chain's event `seq` has hash `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    /// When it was signed, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Which key signed it: the first 16 hex digits of the SHA-256 of its
    /// public key.
    pub key_id: String,
    /// The Ed25519 signature of [`Checkpoint::message`], in hex.
    pub signature: String,
}

impl Checkpoint {
    /// The bytes signed: a fixed label, then the fields, one per line.
    pub fn message(seq: i64, hash: &str, at_ms: i64) -> String {
        format!("sluice-audit-checkpoint/1\n{seq}\n{hash}\n{at_ms}")
    }

    /// Whether `public_key` (raw Ed25519, 32 bytes) signed this.
    pub fn signed_by(&self, public_key: &[u8]) -> bool {
        let Some(signature) = unhex(&self.signature) else {
            return false;
        };
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, public_key)
            .verify(
                Self::message(self.seq, &self.hash, self.at_ms).as_bytes(),
                &signature,
            )
            .is_ok()
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The key that signs checkpoints: an Ed25519 key pair, kept as PKCS#8
/// in the encrypted secret store ([`CHECKPOINT_KEY_SECRET`]).
pub struct CheckpointKey {
    pair: aws_lc_rs::signature::Ed25519KeyPair,
}

/// The secret the checkpoint key is stored under.
pub const CHECKPOINT_KEY_SECRET: &str = "audit-checkpoint-key";

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointKey({})", self.key_id())
    }
}

impl CheckpointKey {
    /// A new key, as PKCS#8 bytes to store.
    pub fn generate() -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map(|doc| zeroize::Zeroizing::new(doc.as_ref().to_vec()))
            .map_err(|_| "could not generate an Ed25519 key".to_string())
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8)
            .map(|pair| Self { pair })
            .map_err(|_| "the stored audit checkpoint key is not an Ed25519 key".to_string())
    }

    /// The raw public key (32 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        use aws_lc_rs::signature::KeyPair;
        self.pair.public_key().as_ref().to_vec()
    }

    pub fn key_id(&self) -> String {
        key_id(&self.public_key())
    }

    /// Signs that event `seq` has hash `hash`, at `at_ms`.
    pub fn sign(&self, seq: i64, hash: &str, at_ms: i64) -> Checkpoint {
        let signature = self
            .pair
            .sign(Checkpoint::message(seq, hash, at_ms).as_bytes());
        Checkpoint {
            seq,
            hash: hash.to_string(),
            at_ms,
            key_id: self.key_id(),
            signature: hex(signature.as_ref()),
        }
    }
}

/// A public key's id: the first 16 hex digits of its SHA-256.
pub fn key_id(public_key: &[u8]) -> String {
    sha256_hex(public_key)[..16].to_string()
}

/// Parses a public key written as hex (what `sluice audit public-key`
/// prints).
pub fn parse_public_key(text: &str) -> Option<Vec<u8>> {
    unhex(text.trim()).filter(|key| key.len() == 32)
}

/// What the checkpoints say of a chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signed {
    /// The last event a valid checkpoint covers, with its signing time.
    pub through: Option<(i64, i64)>,
    pub checkpoints: usize,
}

/// Checks `checkpoints` against `public_key` and against the chain's
/// hashes (`hash_at(seq)`: the stored hash of event `seq`, `None` when it
/// is not there) whose last event is `head` (0 for an empty chain).
/// `first` is the first event present (a prefix may have been pruned
/// under retention, after a checkpoint). The first problem found wins.
pub fn check_checkpoints(
    checkpoints: &[Checkpoint],
    public_key: &[u8],
    first: i64,
    head: i64,
    hash_at: impl Fn(i64) -> Option<String>,
) -> Result<Signed, Broken> {
    let mut signed = Signed::default();
    for checkpoint in checkpoints {
        let broken = |why: String| Broken {
            seq: checkpoint.seq,
            why,
        };
        if !checkpoint.signed_by(public_key) {
            return Err(broken(format!(
                "the checkpoint signed at {} does not verify with the audit key {} (forged or \
                 edited)",
                checkpoint.at_ms,
                key_id(public_key)
            )));
        }
        if checkpoint.seq > head {
            return Err(broken(format!(
                "a signed checkpoint covers event {} but the log ends at event {head}: its tail \
                 was truncated",
                checkpoint.seq
            )));
        }
        if checkpoint.seq >= first {
            match hash_at(checkpoint.seq) {
                Some(hash) if hash == checkpoint.hash => {}
                Some(_) => {
                    return Err(broken(
                        "its hash differs from the signed checkpoint's: the chain was rewritten \
                         and rehashed"
                            .into(),
                    ));
                }
                None => {
                    return Err(broken(
                        "a signed checkpoint covers it, but it is missing".into(),
                    ));
                }
            }
        }
        signed.checkpoints += 1;
        if signed.through.is_none_or(|(seq, _)| checkpoint.seq >= seq) {
            signed.through = Some((checkpoint.seq, checkpoint.at_ms));
        }
    }
    Ok(signed)
}

/// Which events an auditor asks for; every field left empty matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// At or after, in milliseconds since the Unix epoch.
    pub since_ms: Option<i64>,
    /// Before.
    pub until_ms: Option<i64>,
    /// `issuer#subject`, or the subject alone.
    pub principal: Option<String>,
    /// An event that names this table (`project.dataset.table`).
    pub table: Option<String>,
    pub kind: Option<String>,
    pub session: Option<String>,
}

impl AuditFilter {
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let event = &record.event;
        self.since_ms.is_none_or(|t| event.at_ms >= t)
            && self.until_ms.is_none_or(|t| event.at_ms < t)
            && self.kind.as_deref().is_none_or(|k| event.kind == k)
            && self.session.as_deref().is_none_or(|s| event.session == s)
            && self.principal.as_deref().is_none_or(|p| {
                event.principal == p
                    || event
                        .principal
                        .rsplit_once('#')
                        .is_some_and(|(_, subject)| subject == p)
            })
            && self.table.as_deref().is_none_or(|t| {
                event.detail["tables"].as_array().is_some_and(|tables| {
                    tables
                        .iter()
                        .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(t)))
                })
            })
    }

    /// Whether it matches every event (a whole export).
    pub fn is_everything(&self) -> bool {
        *self == Self::default()
    }
}

/// One session, summed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session: String,
    pub principal: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub events: i64,
    /// Events of queries sent to the warehouse (`query.started`).
    pub queries: i64,
    /// Requests refused (status 400 and above).
    pub refused: i64,
}

/// What retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub pages: u64,
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
                    session: if seq % 2 == 0 {
                        "s1".into()
                    } else {
                        String::new()
                    },
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

    fn key() -> CheckpointKey {
        CheckpointKey::from_pkcs8(&CheckpointKey::generate().unwrap()).unwrap()
    }

    fn check(
        records: &[AuditRecord],
        checkpoints: &[Checkpoint],
        public_key: &[u8],
    ) -> Result<Signed, Broken> {
        let first = records.first().map_or(1, |r| r.seq);
        let head = records.last().map_or(0, |r| r.seq);
        check_checkpoints(checkpoints, public_key, first, head, |seq| {
            records
                .iter()
                .find(|r| r.seq == seq)
                .map(|r| r.hash.clone())
        })
    }

    #[test]
    fn checkpoints_vouch_for_the_chain_up_to_them() {
        let key = key();
        let records = chain(6);
        let checkpoints = [
            key.sign(2, &records[1].hash, 10),
            key.sign(5, &records[4].hash, 20),
        ];
        let signed = check(&records, &checkpoints, &key.public_key()).unwrap();
        assert_eq!(signed.through, Some((5, 20)));
        assert_eq!(signed.checkpoints, 2);
        // The key id in a checkpoint is the key's.
        assert_eq!(checkpoints[0].key_id, key_id(&key.public_key()));
        assert_eq!(
            parse_public_key(&hex(&key.public_key())),
            Some(key.public_key())
        );
    }

    #[test]
    fn a_truncated_tail_is_caught_by_a_checkpoint_past_the_end() {
        let key = key();
        let mut records = chain(6);
        let checkpoint = key.sign(6, &records[5].hash, 10);
        records.truncate(4);
        // The chain alone still verifies ...
        assert_eq!(verify(&records, 1, GENESIS), Ok(4));
        // ... the checkpoint does not.
        let broken = check(&records, &[checkpoint], &key.public_key()).unwrap_err();
        assert_eq!(broken.seq, 6);
        assert!(broken.why.contains("truncated"), "{broken}");
    }

    #[test]
    fn a_rehashed_chain_or_a_forged_checkpoint_is_caught() {
        let key = key();
        let records = chain(5);
        let checkpoint = key.sign(4, &records[3].hash, 10);
        // Someone edits event 2 and recomputes every hash after it.
        let mut rewritten = records.clone();
        rewritten[1].event.detail["sql"] = json!("SELECT 'innocent'");
        let mut prev = GENESIS.to_string();
        for record in &mut rewritten {
            record.prev_hash = prev.clone();
            record.hash = chain_hash(&prev, record.seq, &record.event);
            prev = record.hash.clone();
        }
        assert_eq!(verify(&rewritten, 1, GENESIS), Ok(5));
        let broken = check(
            &rewritten,
            std::slice::from_ref(&checkpoint),
            &key.public_key(),
        )
        .unwrap_err();
        assert!(broken.why.contains("rewritten"), "{broken}");

        // A checkpoint signed by another key, or edited, does not verify.
        let forged = self::key().sign(4, &rewritten[3].hash, 10);
        let broken = check(&rewritten, &[forged], &key.public_key()).unwrap_err();
        assert!(broken.why.contains("forged"), "{broken}");
        let mut edited = checkpoint;
        edited.hash = rewritten[3].hash.clone();
        assert!(check(&rewritten, &[edited], &key.public_key()).is_err());
    }

    #[test]
    fn a_pruned_prefix_is_checked_from_the_first_event_left() {
        let key = key();
        let records = chain(6);
        let checkpoint = key.sign(3, &records[2].hash, 10);
        let left = &records[3..];
        assert_eq!(verify(left, 4, &checkpoint.hash), Ok(3));
        assert!(check(left, &[checkpoint], &key.public_key()).is_ok());
    }

    #[test]
    fn events_without_a_session_keep_their_encoding() {
        let record = &chain(1)[0];
        assert!(!canonical(1, &record.event).contains("session"));
        let mut event = record.event.clone();
        event.session = "s".into();
        assert!(canonical(1, &event).contains("\"session\":\"s\""));
    }
}
