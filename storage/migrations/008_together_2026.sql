-- Together's 2026 request fields (VideoParams): resolution and ratio for models that take them
-- instead of width and height, generate_audio, and output_quality.
ALTER TABLE jobs ADD COLUMN resolution TEXT;
ALTER TABLE jobs ADD COLUMN ratio TEXT;
ALTER TABLE jobs ADD COLUMN generate_audio INTEGER;
ALTER TABLE jobs ADD COLUMN output_quality INTEGER;

-- Videos and soundtracks Together fetches by URL: the signed link, when it expires, and where
-- a fresh one can be had (the message holding the attachment; NULL for a slash command's).
CREATE TABLE job_links (
    job_id         INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('video', 'soundtrack')),
    url            TEXT    NOT NULL,
    expires_at     REAL,
    channel_id     INTEGER,
    message_id     INTEGER,
    attachment_id  INTEGER,
    PRIMARY KEY (job_id, kind)
);
