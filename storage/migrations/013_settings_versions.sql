-- Each bot process caches moderators' settings per server (storage/server_settings.py); with
-- several processes on one database, a change made through one must reach the others' caches.
--
-- settings_change_counter: one row, the number of settings changes ever made. Every change
-- adds one to it in its own transaction, which also takes the row's write lock until commit,
-- so changes get their numbers in commit order: a reader who has seen number N has seen every
-- change numbered N or less (a plain sequence or MAX()+1 would not promise that on PostgreSQL).
CREATE TABLE settings_change_counter (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    value  INTEGER NOT NULL
);
INSERT INTO settings_change_counter (id, value) VALUES (1, 0);

-- Per server, the counter's value at its latest change: what a process reads to learn which
-- servers changed since the number it saw last (version > N, by the index).
CREATE TABLE settings_versions (
    guild_id  INTEGER PRIMARY KEY,
    version   INTEGER NOT NULL
);
CREATE INDEX settings_versions_by_version ON settings_versions (version);
