-- The audit log: one row per event, in order (seq), each chained to the
-- one before: hash = SHA-256(prev_hash, seq and the event's canonical
-- JSON). `sluice audit verify` recomputes the chain.
CREATE TABLE audit_events (
    seq        INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    principal  TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    PRIMARY KEY (seq)
);
CREATE INDEX audit_by_principal ON audit_events (principal, at_ms);
CREATE INDEX audit_by_time ON audit_events (at_ms);
