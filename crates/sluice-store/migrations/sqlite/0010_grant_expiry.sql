-- A grant's expiry is written to the audit log once, by whichever replica
-- claims it first (`Store::claim_expired_grants`).
ALTER TABLE grants ADD COLUMN expiry_audited INTEGER NOT NULL DEFAULT 0;
-- Grants revoked before they expired have no expiry to record, and those
-- that ran out before this version are not announced months late.
UPDATE grants SET expiry_audited = 1
 WHERE revoked_ms IS NOT NULL OR expire_ms <= CAST(strftime('%s', 'now') AS INTEGER) * 1000;
CREATE INDEX grants_expiry_unaudited ON grants (expire_ms) WHERE expiry_audited = 0;
