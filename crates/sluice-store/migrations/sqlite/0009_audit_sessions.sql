-- Sessions, signed checkpoints and recorded pages.
--
-- Each event names its session (a CI run, else a token, else an hour of
-- one principal); old events have none.
ALTER TABLE audit_events ADD COLUMN session TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_by_session ON audit_events (session, seq);

-- The chain's head signed from time to time (Ed25519): a chain that ends
-- before a checkpoint was truncated.
CREATE TABLE audit_checkpoints (
    seq       INTEGER NOT NULL PRIMARY KEY,
    hash      TEXT    NOT NULL,
    at_ms     INTEGER NOT NULL,
    key_id    TEXT    NOT NULL,
    signature TEXT    NOT NULL
);

-- The rows a request returned, as the agent received them (masked), kept
-- apart from the chain so that retention can drop them; the request's
-- event (seq) carries their SHA-256.
CREATE TABLE audit_pages (
    seq        INTEGER NOT NULL PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    session    TEXT    NOT NULL,
    body       TEXT    NOT NULL
);
CREATE INDEX audit_pages_by_time ON audit_pages (at_ms);
