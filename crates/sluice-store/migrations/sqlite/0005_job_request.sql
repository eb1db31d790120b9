-- The exact request a job was admitted to run (JSON, versioned by the
-- gateway): a PENDING job can be started by any replica from its record.
ALTER TABLE jobs ADD COLUMN request TEXT;
