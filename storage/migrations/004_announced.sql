-- 0 while a job's final state (failed, timed out, cancelled) has not yet reached its message;
-- set once the edit lands, so a restart can show what a crash kept from the member.
ALTER TABLE jobs ADD COLUMN announced INTEGER NOT NULL DEFAULT 1;
CREATE INDEX jobs_unannounced ON jobs (id) WHERE announced = 0;
