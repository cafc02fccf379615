-- Per-server quota settings, moderation lists and their audit trail.
-- Usage is never stored: it is always derived from `jobs`, so it cannot drift from it.

-- One row per server that changed anything. A NULL column means "use the bot-wide default";
-- any other value (0 or more) is the server's own; 0 switches that kind of generation off.
CREATE TABLE guild_settings (
    guild_id            INTEGER PRIMARY KEY,
    user_daily          INTEGER CHECK (user_daily IS NULL OR user_daily >= 0),
    guild_daily         INTEGER CHECK (guild_daily IS NULL OR guild_daily >= 0),
    user_concurrent     INTEGER CHECK (user_concurrent IS NULL OR user_concurrent >= 0),
    monthly_budget_usd  REAL    CHECK (monthly_budget_usd IS NULL OR monthly_budget_usd >= 0),
    max_seconds         INTEGER CHECK (max_seconds IS NULL OR max_seconds >= 0),
    updated_at          REAL    NOT NULL
);

-- A role's own daily limit for its members; a member with several gets the highest.
CREATE TABLE role_quotas (
    guild_id    INTEGER NOT NULL,
    role_id     INTEGER NOT NULL,
    user_daily  INTEGER NOT NULL CHECK (user_daily >= 0),
    PRIMARY KEY (guild_id, role_id)
) WITHOUT ROWID;

CREATE TABLE model_rules (
    guild_id  INTEGER NOT NULL,
    model_id  TEXT    NOT NULL,
    rule      TEXT    NOT NULL CHECK (rule IN ('allow', 'deny')),
    PRIMARY KEY (guild_id, model_id)
) WITHOUT ROWID;

-- Channels where /video may be used; no row for a server means every channel.
CREATE TABLE allowed_channels (
    guild_id    INTEGER NOT NULL,
    channel_id  INTEGER NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
) WITHOUT ROWID;

CREATE TABLE blocked_members (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    blocked_by  INTEGER NOT NULL,
    blocked_at  REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;

-- Every moderator change, written in the same transaction as the change itself.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id    INTEGER NOT NULL,
    actor_id    INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    created_at  REAL    NOT NULL
);
CREATE INDEX audit_log_by_guild ON audit_log (guild_id, id);

-- Server-wide windows (jobs today, spend this month); per-member windows use jobs_by_member.
CREATE INDEX jobs_by_guild ON jobs (guild_id, created_at);
-- A member's unfinished jobs (the concurrency limit), whatever their age: kept small by the
-- WHERE clause, which must match the queries' state list word for word to be used.
CREATE INDEX jobs_unfinished ON jobs (guild_id, user_id)
    WHERE state IN ('queued', 'submitting', 'running', 'delivering');
