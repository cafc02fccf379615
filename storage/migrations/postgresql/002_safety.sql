-- SQLite's 012_safety.sql: per-server safety controls and blocked words (see that file).
CREATE TABLE safety_settings (
    guild_id            BIGINT  PRIMARY KEY,
    age_restricted_only INTEGER NOT NULL DEFAULT 0 CHECK (age_restricted_only IN (0, 1)),
    screening           INTEGER NOT NULL DEFAULT 0 CHECK (screening IN (0, 1)),
    screen_unavailable  TEXT    NOT NULL DEFAULT 'refuse'
                                CHECK (screen_unavailable IN ('refuse', 'allow')),
    updated_at          DOUBLE PRECISION NOT NULL
);

CREATE TABLE blocked_words (
    guild_id  BIGINT NOT NULL,
    entry     TEXT   NOT NULL,
    added_by  BIGINT NOT NULL,
    added_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, entry)
);
