"""Per-server quota settings, moderation lists, the audit log, and usage read from `jobs`.

What counts: a job holds quota from acceptance unless it was given back, that is unless it was
cancelled, timed out, or failed before Together accepted it (no together_id). Its spend is
Together's reported cost when known, else the catalog estimate. Usage is always computed from
`jobs`, never kept in counters, so it cannot drift from the jobs themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import asdict, replace

import aiosqlite

from storage.db import Database, fetch_all, fetch_one
from storage.models import (
    DAY_SECONDS,
    LIMIT_NAMES,
    MONEY_EPSILON,
    MONTH_SECONDS,
    AuditEntry,
    EffectiveLimits,
    GuildLimits,
    Job,
    MemberUsage,
    ModelRule,
    NewJob,
    ServerRules,
    UsageReport,
    UsageRow,
)
from storage.rows import JOB_COLUMNS, NEW_JOB_COLUMNS, UNFINISHED, job_from_row

# The rule above as SQL, shared by every usage query so they cannot disagree.
_COUNTS = """state NOT IN ('cancelled', 'timed_out')
    AND NOT (state = 'failed' AND together_id IS NULL)"""
_SPEND = "COALESCE(cost_usd, estimated_cost_usd)"

# One pass over the server's counting jobs of the last 30 days gives every windowed figure.
SELECT_WINDOW_USAGE = f"""
SELECT
    COALESCE(SUM(user_id = :user_id AND created_at > :day_start), 0) AS user_day,
    COALESCE(SUM(created_at > :day_start), 0) AS guild_day,
    COALESCE(SUM({_SPEND}), 0.0) AS guild_month_usd,
    MIN(CASE WHEN user_id = :user_id AND created_at > :day_start THEN created_at END),
    MIN(CASE WHEN created_at > :day_start THEN created_at END),
    MIN(CASE WHEN {_SPEND} > 0 THEN created_at END),
    -- Unfinished jobs count toward concurrency whatever their age.
    (SELECT COUNT(*) FROM jobs
     WHERE guild_id = :guild_id AND user_id = :user_id AND {UNFINISHED}) AS user_active
FROM jobs
WHERE guild_id = :guild_id AND created_at > :month_start AND {_COUNTS}
"""
# The reservation's fast path: the job is inserted only if quota.check would accept it, in one
# statement (atomic on its own in autocommit mode), so one trip to SQLite's thread. Same
# comparisons, in the same terms, as quota.check; test_quota_storage holds them together.
INSERT_WITHIN_LIMITS = f"""
INSERT INTO jobs (state, updated_at, {", ".join(NEW_JOB_COLUMNS)})
SELECT 'queued', :created_at, {", ".join(":" + c for c in NEW_JOB_COLUMNS)}
FROM ({SELECT_WINDOW_USAGE}) AS usage
WHERE (:max_seconds IS NULL OR :seconds <= :max_seconds)
    AND usage.user_active < :user_concurrent
    AND usage.user_day < :user_daily
    AND usage.guild_day < :guild_daily
    AND usage.guild_month_usd + :estimated_cost_usd <= :monthly_budget_usd + {MONEY_EPSILON!r}
RETURNING {", ".join(JOB_COLUMNS)}
"""
SELECT_REPORT_TOTALS = f"""
SELECT
    COALESCE(SUM(created_at > :day_start), 0),
    COALESCE(SUM(CASE WHEN created_at > :day_start THEN {_SPEND} END), 0.0),
    COUNT(*),
    COALESCE(SUM({_SPEND}), 0.0)
FROM jobs
WHERE guild_id = :guild_id AND created_at > :month_start AND {_COUNTS}
    AND (:user_id IS NULL OR user_id = :user_id)
"""
SELECT_REPORT_MEMBERS = f"""
SELECT user_id, COUNT(*), COALESCE(SUM({_SPEND}), 0.0) AS spend
FROM jobs
WHERE guild_id = :guild_id AND created_at > :month_start AND {_COUNTS}
    AND (:user_id IS NULL OR user_id = :user_id)
GROUP BY user_id
ORDER BY spend DESC, COUNT(*) DESC, user_id
LIMIT :top
"""
SELECT_UNFINISHED = f"""
SELECT {", ".join(JOB_COLUMNS)} FROM jobs
WHERE guild_id = ? AND {UNFINISHED}
ORDER BY id
"""

SELECT_LIMITS = """
SELECT user_daily, guild_daily, user_concurrent, monthly_budget_usd, max_seconds
FROM guild_settings WHERE guild_id = ?
"""
UPSERT_LIMITS = """
INSERT INTO guild_settings
    (guild_id, user_daily, guild_daily, user_concurrent, monthly_budget_usd, max_seconds,
     updated_at)
VALUES
    (:guild_id, :user_daily, :guild_daily, :user_concurrent, :monthly_budget_usd, :max_seconds,
     :updated_at)
ON CONFLICT (guild_id) DO UPDATE SET
    user_daily = excluded.user_daily,
    guild_daily = excluded.guild_daily,
    user_concurrent = excluded.user_concurrent,
    monthly_budget_usd = excluded.monthly_budget_usd,
    max_seconds = excluded.max_seconds,
    updated_at = excluded.updated_at
"""
SELECT_ROLE_QUOTAS = "SELECT role_id, user_daily FROM role_quotas WHERE guild_id = ?"
UPSERT_ROLE_QUOTA = """
INSERT INTO role_quotas (guild_id, role_id, user_daily) VALUES (?, ?, ?)
ON CONFLICT (guild_id, role_id) DO UPDATE SET user_daily = excluded.user_daily
"""
DELETE_ROLE_QUOTA = "DELETE FROM role_quotas WHERE guild_id = ? AND role_id = ?"
SELECT_MODEL_RULES = "SELECT model_id, rule FROM model_rules WHERE guild_id = ?"
UPSERT_MODEL_RULE = """
INSERT INTO model_rules (guild_id, model_id, rule) VALUES (?, ?, ?)
ON CONFLICT (guild_id, model_id) DO UPDATE SET rule = excluded.rule
"""
DELETE_MODEL_RULE = "DELETE FROM model_rules WHERE guild_id = ? AND model_id = ?"
SELECT_CHANNELS = "SELECT channel_id FROM allowed_channels WHERE guild_id = ?"
DELETE_CHANNELS = "DELETE FROM allowed_channels WHERE guild_id = ?"
INSERT_CHANNEL = "INSERT INTO allowed_channels (guild_id, channel_id) VALUES (?, ?)"
SELECT_BLOCKED_IDS = "SELECT user_id FROM blocked_members WHERE guild_id = ?"
INSERT_BLOCKED = """
INSERT INTO blocked_members (guild_id, user_id, blocked_by, blocked_at) VALUES (?, ?, ?, ?)
ON CONFLICT (guild_id, user_id) DO NOTHING
"""
DELETE_BLOCKED = "DELETE FROM blocked_members WHERE guild_id = ? AND user_id = ?"
INSERT_AUDIT = """
INSERT INTO audit_log (guild_id, actor_id, action, detail, created_at) VALUES (?, ?, ?, ?, ?)
"""
SELECT_AUDIT = """
SELECT id, guild_id, actor_id, action, detail, created_at FROM audit_log
WHERE guild_id = ? ORDER BY id DESC LIMIT ?
"""


def _window_starts(now: float) -> dict[str, float]:
    """The :day_start and :month_start parameters of the usage queries."""
    return {"day_start": now - DAY_SECONDS, "month_start": now - MONTH_SECONDS}


async def read_member_usage(
    conn: aiosqlite.Connection, guild_id: int, user_id: int, now: float
) -> MemberUsage:
    """The member's usage at `now`; run it inside the caller's transaction."""
    params = {"guild_id": guild_id, "user_id": user_id, **_window_starts(now)}
    row = await fetch_one(conn, SELECT_WINDOW_USAGE, params)
    assert row is not None  # aggregates always return a row
    user_day, guild_day, month_usd, user_oldest, guild_oldest, month_oldest, active = row
    return MemberUsage(
        user_day=int(user_day),
        guild_day=int(guild_day),
        user_active=int(active),
        guild_month_usd=float(month_usd),
        user_day_oldest=user_oldest,
        guild_day_oldest=guild_oldest,
        guild_month_oldest=month_oldest,
    )


async def insert_within_limits(
    conn: aiosqlite.Connection, new_job: NewJob, limits: EffectiveLimits
) -> Job | None:
    """Store the job if the member's usage leaves room under `limits`; None if it does not."""
    params = {**asdict(new_job), **asdict(limits), **_window_starts(new_job.created_at)}
    row = await fetch_one(conn, INSERT_WITHIN_LIMITS, params)
    return job_from_row(row) if row else None


def _check_limit(name: str, value: float | None) -> float | None:
    if name not in LIMIT_NAMES:
        raise ValueError(f"unknown limit {name!r}")
    if value is None:
        return None
    if isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be 0 or more, or None for the default")
    if name == "monthly_budget_usd":
        return float(value)
    if not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number")
    return value


def _describe(name: str, value: object) -> str:
    return f"{name}={'default' if value is None else value}"


class GuildSettingsRepository:
    """Moderator settings per server. Every change is audited in its own transaction.

    The settings are kept in memory per server once read, and every change made through this
    repository drops that copy: /video reads them on every command, and under a burst the
    trips to SQLite, not the queries, are what each member waits for.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._rules: dict[int, ServerRules] = {}
        self._loading: dict[int, asyncio.Future[ServerRules]] = {}

    async def rules(self, guild_id: int) -> ServerRules:
        cached = self._rules.get(guild_id)
        if cached is not None:
            return cached
        # A burst of commands on a server not yet read shares one read, not one each.
        loading = self._loading.get(guild_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load_rules(guild_id))
            self._loading[guild_id] = loading
        return await asyncio.shield(loading)

    async def _load_rules(self, guild_id: int) -> ServerRules:
        try:
            return await self._read_rules(guild_id)
        finally:
            self._loading.pop(guild_id, None)

    async def _read_rules(self, guild_id: int) -> ServerRules:
        # Changes take the same lock as this read, and the copy is kept in the step the read
        # ends in: no change can land between the two and be missed.
        async with self._db.access() as conn:
            limits = await self._read_limits(conn, guild_id)
            roles = await fetch_all(conn, SELECT_ROLE_QUOTAS, (guild_id,))
            models = await fetch_all(conn, SELECT_MODEL_RULES, (guild_id,))
            channels = await fetch_all(conn, SELECT_CHANNELS, (guild_id,))
            blocked = await fetch_all(conn, SELECT_BLOCKED_IDS, (guild_id,))
        rules = ServerRules(
            limits=limits,
            role_quotas={int(role_id): int(user_daily) for role_id, user_daily in roles},
            model_rules={str(model_id): str(rule) for model_id, rule in models},
            channels=frozenset(int(channel_id) for (channel_id,) in channels),
            blocked=frozenset(int(user_id) for (user_id,) in blocked),
        )
        self._rules[guild_id] = rules
        return rules

    # --- limits -------------------------------------------------------------------------

    async def limits(self, guild_id: int) -> GuildLimits:
        return (await self.rules(guild_id)).limits

    async def set_limits(
        self, guild_id: int, actor_id: int, now: float, **changes: float | None
    ) -> GuildLimits:
        """Change only the given limits (None = back to the default); returns all of them."""
        checked = {name: _check_limit(name, value) for name, value in changes.items()}
        async with self._db.transaction() as conn:
            current = await self._read_limits(conn, guild_id)
            if not checked:
                return current
            updated = replace(current, **checked)  # type: ignore[arg-type]
            params = {name: getattr(updated, name) for name in LIMIT_NAMES}
            await conn.execute(UPSERT_LIMITS, {**params, "guild_id": guild_id, "updated_at": now})
            detail = ", ".join(_describe(name, value) for name, value in checked.items())
            await self._audit(conn, guild_id, actor_id, "quota", detail, now)
        return updated

    @staticmethod
    async def _read_limits(conn: aiosqlite.Connection, guild_id: int) -> GuildLimits:
        row = await fetch_one(conn, SELECT_LIMITS, (guild_id,))
        return GuildLimits(*row) if row else GuildLimits()

    # --- role quotas --------------------------------------------------------------------

    async def role_quotas(self, guild_id: int) -> dict[int, int]:
        """role_id -> that role's daily limit per member."""
        return dict((await self.rules(guild_id)).role_quotas)

    async def set_role_quota(
        self, guild_id: int, role_id: int, user_daily: int | None, actor_id: int, now: float
    ) -> None:
        """Give a role its own daily limit, or remove it with None."""
        _check_limit("user_daily", user_daily)
        async with self._db.transaction() as conn:
            if user_daily is None:
                await conn.execute(DELETE_ROLE_QUOTA, (guild_id, role_id))
            else:
                await conn.execute(UPSERT_ROLE_QUOTA, (guild_id, role_id, user_daily))
            detail = f"<@&{role_id}> {_describe('user_daily', user_daily)}"
            await self._audit(conn, guild_id, actor_id, "role_quota", detail, now)

    # --- models -------------------------------------------------------------------------

    async def set_model_rule(
        self, guild_id: int, model_id: str, rule: ModelRule | None, actor_id: int, now: float
    ) -> None:
        """Allow or deny a model on the server; None removes the rule."""
        if rule not in ("allow", "deny", None):
            raise ValueError(f"unknown model rule {rule!r}")
        async with self._db.transaction() as conn:
            if rule is None:
                await conn.execute(DELETE_MODEL_RULE, (guild_id, model_id))
            else:
                await conn.execute(UPSERT_MODEL_RULE, (guild_id, model_id, rule))
            detail = f"{model_id} {rule or 'default'}"
            await self._audit(conn, guild_id, actor_id, "model_rule", detail, now)

    # --- channels -----------------------------------------------------------------------

    async def set_channels(
        self, guild_id: int, channel_ids: Iterable[int], actor_id: int, now: float
    ) -> None:
        """Replace the allowed channels; an empty set allows every channel."""
        wanted = sorted(set(channel_ids))
        async with self._db.transaction() as conn:
            await conn.execute(DELETE_CHANNELS, (guild_id,))
            await conn.executemany(INSERT_CHANNEL, [(guild_id, c) for c in wanted])
            detail = ", ".join(f"<#{c}>" for c in wanted) or "all"
            await self._audit(conn, guild_id, actor_id, "channels", detail, now)

    # --- blocked members ----------------------------------------------------------------

    async def set_blocked(
        self, guild_id: int, user_id: int, blocked: bool, actor_id: int, now: float
    ) -> bool:
        """Block or unblock a member. Returns False (and audits nothing) if nothing changed."""
        async with self._db.transaction() as conn:
            if blocked:
                cursor = await conn.execute(INSERT_BLOCKED, (guild_id, user_id, actor_id, now))
            else:
                cursor = await conn.execute(DELETE_BLOCKED, (guild_id, user_id))
            if cursor.rowcount != 1:
                return False
            action = "block" if blocked else "unblock"
            await self._audit(conn, guild_id, actor_id, action, f"<@{user_id}>", now)
        return True

    # --- audit --------------------------------------------------------------------------

    async def audit(self, guild_id: int, limit: int = 20) -> list[AuditEntry]:
        """The server's latest moderator changes, newest first."""
        rows = await self._db.fetch_all(SELECT_AUDIT, (guild_id, limit))
        return [AuditEntry(*row) for row in rows]

    async def _audit(
        self,
        conn: aiosqlite.Connection,
        guild_id: int,
        actor_id: int,
        action: str,
        detail: str,
        now: float,
    ) -> None:
        await conn.execute(INSERT_AUDIT, (guild_id, actor_id, action, detail, now))
        self._rules.pop(guild_id, None)  # every change is audited, in its own transaction

    # --- usage --------------------------------------------------------------------------

    async def member_usage(self, guild_id: int, user_id: int, now: float) -> MemberUsage:
        """A member's usage at `now` (for their /videos summary)."""
        async with self._db.transaction() as conn:
            return await read_member_usage(conn, guild_id, user_id, now)

    async def usage_report(
        self, guild_id: int, now: float, *, user_id: int | None = None, top: int = 5
    ) -> UsageReport:
        """Counting jobs and spend over 24 hours and 30 days; top members by 30-day spend.

        With user_id, every figure is that member's, and top_members is just them.
        """
        params = {
            "guild_id": guild_id,
            "user_id": user_id,
            **_window_starts(now),
            "top": 1 if user_id is not None else top,
        }
        async with self._db.transaction() as conn:
            totals = await fetch_one(conn, SELECT_REPORT_TOTALS, params)
            members = await fetch_all(conn, SELECT_REPORT_MEMBERS, params)
        assert totals is not None  # aggregates always return a row
        rows = [UsageRow(int(uid), int(jobs), float(spend)) for uid, jobs, spend in members]
        if user_id is not None and not rows:
            rows = [UsageRow(user_id, 0, 0.0)]
        day_jobs, day_usd, month_jobs, month_usd = totals
        return UsageReport(int(day_jobs), float(day_usd), int(month_jobs), float(month_usd), rows)

    async def unfinished_jobs(self, guild_id: int) -> list[Job]:
        """The server's jobs still in progress, oldest first."""
        rows = await self._db.fetch_all(SELECT_UNFINISHED, (guild_id,))
        return [job_from_row(row) for row in rows]
