-- Who admitted a job: the policies that matched its caller and the caller's
-- groups when it was admitted (JSON arrays). Every later call on the job
-- needs a caller one of these policies admits now; a job recorded before
-- this column existed has none, so nobody can reach it (fail closed).
ALTER TABLE jobs ADD COLUMN admitted_by TEXT;
ALTER TABLE jobs ADD COLUMN admitted_groups TEXT;
