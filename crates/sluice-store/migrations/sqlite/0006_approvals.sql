-- Approvals: queries held for a human reviewer. Each request holds one
-- PENDING job, names who asked (requester, which may not vote) and who may
-- vote (reviewers, a JSON array), and keeps what a reviewer is shown
-- (details, JSON the store does not read). It leaves PENDING once, to
-- APPROVED, DENIED, EXPIRED or WITHDRAWN, recording when, by whom and why.
CREATE TABLE approvals (
    id                      TEXT    NOT NULL,
    project_id              TEXT    NOT NULL,
    job_id                  TEXT    NOT NULL,
    principal               TEXT    NOT NULL,
    requester               TEXT    NOT NULL,
    state                   TEXT    NOT NULL,
    rule                    TEXT    NOT NULL,
    reviewers               TEXT    NOT NULL,
    min_approvals           INTEGER NOT NULL,
    justification_required  INTEGER NOT NULL,
    details                 TEXT    NOT NULL,
    created_ms              INTEGER NOT NULL,
    expire_ms               INTEGER NOT NULL,
    closed_ms               INTEGER,
    closed_by               TEXT,
    reason                  TEXT,
    PRIMARY KEY (id),
    UNIQUE (project_id, job_id)
);
-- The expiry sweep looks for PENDING requests past their expire_ms.
CREATE INDEX approvals_by_expiry ON approvals (state, expire_ms);

-- Votes: one per reviewer identity (issuer#subject) and request, cast only
-- while the request is PENDING.
CREATE TABLE approval_votes (
    approval_id  TEXT    NOT NULL REFERENCES approvals (id),
    voter_id     TEXT    NOT NULL,
    voter        TEXT    NOT NULL,
    approve      INTEGER NOT NULL,
    reason       TEXT    NOT NULL,
    at_ms        INTEGER NOT NULL,
    PRIMARY KEY (approval_id, voter_id)
);
