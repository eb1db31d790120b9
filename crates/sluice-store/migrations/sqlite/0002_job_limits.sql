-- The most result rows the policy that admitted a job allows; a job whose
-- result is larger ends refused instead of serving its rows.
ALTER TABLE jobs ADD COLUMN max_rows INTEGER;
