-- Secrets: upstream credentials, envelope-encrypted. Each version holds its
-- own data key wrapped under the master key (which is never stored; only
-- its id is) and the secret encrypted under that data key. Rotating the
-- master key rewrites master_key_id and wrapped_key; ciphertext never
-- changes after the insert.
CREATE TABLE secrets (
    name           TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    master_key_id  TEXT    NOT NULL,
    wrapped_key    BLOB    NOT NULL,
    ciphertext     BLOB    NOT NULL,
    created_ms     INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
