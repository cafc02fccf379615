-- SQLite's 013_settings_versions.sql and 014_leases.sql (see those files for what each column
-- means), which main's PostgreSQL schema lacked: the settings change counter each settings
-- change bumps, the per-server versions other processes read, the running processes and the
-- jobs' leases.
CREATE TABLE settings_change_counter (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    value  BIGINT  NOT NULL
);
INSERT INTO settings_change_counter (id, value) VALUES (1, 0);

CREATE TABLE settings_versions (
    guild_id  BIGINT PRIMARY KEY,
    version   BIGINT NOT NULL
);
CREATE INDEX settings_versions_by_version ON settings_versions (version);

CREATE TABLE processes (
    id            TEXT    PRIMARY KEY,
    host          TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    DOUBLE PRECISION NOT NULL,
    heartbeat_at  DOUBLE PRECISION NOT NULL
);

ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION;
CREATE INDEX jobs_by_lease_owner ON jobs (lease_owner) WHERE lease_owner IS NOT NULL;
