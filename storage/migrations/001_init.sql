-- Jobs: one row per /video, from acceptance to delivery or failure.
CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    state               TEXT    NOT NULL CHECK (state IN ('queued', 'submitting', 'running',
                                 'delivering', 'delivered', 'failed', 'cancelled', 'timed_out')),
    guild_id            INTEGER NOT NULL,
    channel_id          INTEGER NOT NULL,
    user_id             INTEGER NOT NULL,
    application_id      INTEGER NOT NULL,
    interaction_id      INTEGER NOT NULL,
    interaction_token   TEXT    NOT NULL,
    message_id          INTEGER,
    upload_limit        INTEGER NOT NULL,
    -- what was asked for, exactly as it will be sent
    model               TEXT    NOT NULL,
    prompt              TEXT    NOT NULL,
    negative_prompt     TEXT,
    width               INTEGER NOT NULL,
    height              INTEGER NOT NULL,
    seconds             INTEGER NOT NULL,
    fps                 INTEGER,
    steps               INTEGER,
    seed                INTEGER,
    guidance_scale      REAL,
    output_format       TEXT    NOT NULL DEFAULT 'MP4',
    estimated_cost_usd  REAL    NOT NULL DEFAULT 0,
    -- what Together said
    together_id         TEXT    UNIQUE,
    provider_status     TEXT,
    video_url           TEXT,
    cost_usd            REAL,
    failure_reason      TEXT,
    -- when
    created_at          REAL    NOT NULL,
    updated_at          REAL    NOT NULL,
    submitted_at        REAL,
    finished_at         REAL,
    delivered_at        REAL,
    deadline_at         REAL    NOT NULL,
    -- how it was delivered: 'attachment' or 'link'
    delivery            TEXT
);

CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_by_member ON jobs (guild_id, user_id, created_at);
