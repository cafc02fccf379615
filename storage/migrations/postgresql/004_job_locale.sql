-- SQLite's 015_job_locale.sql: the requester's language and the bot's own failure reason as a
-- catalog key (see that file).
ALTER TABLE jobs ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';
ALTER TABLE jobs ADD COLUMN failure_text TEXT;
