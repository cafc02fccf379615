-- Per-server safety controls (/videoadmin safety). No row: everything off.
-- age_restricted_only: jobs start only in age-restricted (NSFW) channels and their threads.
-- screening: prompts are checked by the moderation model (SAFETY_MODEL) before a job is taken;
-- screen_unavailable: what happens when that check gives no answer ('refuse' or 'allow').
CREATE TABLE safety_settings (
    guild_id            INTEGER PRIMARY KEY,
    age_restricted_only INTEGER NOT NULL DEFAULT 0 CHECK (age_restricted_only IN (0, 1)),
    screening           INTEGER NOT NULL DEFAULT 0 CHECK (screening IN (0, 1)),
    screen_unavailable  TEXT    NOT NULL DEFAULT 'refuse'
                                CHECK (screen_unavailable IN ('refuse', 'allow')),
    updated_at          REAL    NOT NULL
);

-- Blocked words and phrases, kept folded (no accents, invisible marks or case).
CREATE TABLE blocked_words (
    guild_id  INTEGER NOT NULL,
    entry     TEXT    NOT NULL,
    added_by  INTEGER NOT NULL,
    added_at  REAL    NOT NULL,
    PRIMARY KEY (guild_id, entry)
);
