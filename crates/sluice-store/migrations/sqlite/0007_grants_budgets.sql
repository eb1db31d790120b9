-- Grants: what reviewers approved an access request for. A grant covers
-- the datasets and tables it names (JSON arrays) for its holder
-- (issuer#subject) from start_ms until expire_ms, unless revoked first.
-- Its id is the access request's.
CREATE TABLE grants (
    id          TEXT    NOT NULL,
    holder      TEXT    NOT NULL,
    principal   TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    datasets    TEXT    NOT NULL,
    tables      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    approved_by TEXT    NOT NULL,
    start_ms    INTEGER NOT NULL,
    expire_ms   INTEGER NOT NULL,
    revoked_ms  INTEGER,
    revoked_by  TEXT,
    PRIMARY KEY (id)
);
CREATE INDEX grants_by_holder ON grants (holder, expire_ms);

-- Budget use: bytes billed and rows returned by finished jobs, per budget,
-- key (a principal, or a CI run's claim values) and period (a UTC day,
-- or `all` for a budget that never resets). Added to in one statement.
CREATE TABLE budget_usage (
    budget  TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    period  TEXT    NOT NULL,
    bytes   INTEGER NOT NULL,
    rows    INTEGER NOT NULL,
    PRIMARY KEY (budget, key, period)
);
