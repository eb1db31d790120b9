-- Jobs: Sluice's own record of every query job, so that any replica (or
-- the same one after a restart) can answer jobs.get and getQueryResults.
CREATE TABLE jobs (
    project_id     TEXT    NOT NULL,
    job_id         TEXT    NOT NULL,
    location       TEXT    NOT NULL,
    principal      TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    request_id     TEXT,
    warehouse_key  TEXT    NOT NULL,
    configuration  TEXT    NOT NULL,
    statistics     TEXT,
    error          TEXT,
    created_ms     INTEGER NOT NULL,
    started_ms     INTEGER,
    ended_ms       INTEGER,
    PRIMARY KEY (project_id, job_id)
);
CREATE UNIQUE INDEX jobs_request_id ON jobs (project_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX jobs_by_principal ON jobs (project_id, principal, created_ms);
