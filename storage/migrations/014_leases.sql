-- Jobs owned by lease, so several bot processes can share one database.
-- processes: one row per running bot process, its heartbeat renewed every LEASE_SECONDS/3;
-- "live" means a heartbeat within LEASE_SECONDS. Removed on a clean shutdown.
CREATE TABLE processes (
    id            TEXT    PRIMARY KEY,
    host          TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    REAL    NOT NULL,
    heartbeat_at  REAL    NOT NULL
);

-- The process working an unfinished job, and until when (Unix time) unless it renews.
-- Both empty: nobody holds it (a new job, or one released at shutdown).
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL;
CREATE INDEX jobs_by_lease_owner ON jobs (lease_owner) WHERE lease_owner IS NOT NULL;
