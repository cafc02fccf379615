"""Usage read from `jobs`: quota windows, the one-statement reservation, reports, UTC days.

What counts: a job holds quota from acceptance unless it was given back, that is unless it was
cancelled, timed out, or failed before Together accepted it (no together_id). A Join is made
by the bot from videos already paid for: it never counts. Its spend is
Together's reported cost when known, else the catalog estimate. Usage is always computed from
`jobs`, never kept in counters, so it cannot drift from the jobs themselves.

The functions that take a connection run inside the caller's transaction (or, for one
statement, its exclusive access); UsageRepository opens its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

import aiosqlite

from storage.db import Database, fetch_all, fetch_one
from storage.models import (
    DAY_SECONDS,
    MONEY_EPSILON,
    MONTH_SECONDS,
    DailyUsage,
    EffectiveLimits,
    Job,
    MemberUsage,
    NewJob,
    UsageReport,
    UsageRow,
)
from storage.rows import JOB_COLUMNS, NEW_JOB_COLUMNS, UNFINISHED, job_from_row, new_job_values

# The rule above as SQL, shared by every usage query so they cannot disagree.
_NOT_JOIN = "derivation IS NOT 'join'"
_COUNTS = f"""state NOT IN ('cancelled', 'timed_out')
    AND NOT (state = 'failed' AND together_id IS NULL) AND {_NOT_JOIN}"""
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
     WHERE guild_id = :guild_id AND user_id = :user_id AND {UNFINISHED} AND {_NOT_JOIN})
        AS user_active
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
# Counting jobs per UTC day (created_at is Unix time, so whole days since the epoch are UTC
# days); days without a counting job have no row.
SELECT_DAILY_USAGE = f"""
SELECT CAST(created_at / {DAY_SECONDS} AS INTEGER) AS day, COUNT(*), COALESCE(SUM({_SPEND}), 0.0)
FROM jobs
WHERE guild_id = :guild_id AND created_at >= :first_day AND created_at < :end AND {_COUNTS}
    AND (:user_id IS NULL OR user_id = :user_id)
GROUP BY day
"""
DAILY_USAGE_DAYS = 30


def _window_starts(now: float) -> dict[str, float]:
    """The :day_start and :month_start parameters of the usage queries."""
    return {"day_start": now - DAY_SECONDS, "month_start": now - MONTH_SECONDS}


async def read_member_usage(
    conn: aiosqlite.Connection, guild_id: int, user_id: int, now: float
) -> MemberUsage:
    """The member's usage at `now`; run it inside the caller's transaction.

    One statement: its figures are consistent with each other. Under the caller's BEGIN
    IMMEDIATE they stay true until that transaction ends.
    """
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
    """Store the job if the member's usage leaves room under `limits`; None if it does not.

    One statement (INSERT ... SELECT ... RETURNING), atomic on its own in autocommit mode: no
    other writer can land between the usage it reads and the job it inserts. Run it with the
    connection from Database.access(). None does not say which limit refused, and nothing is
    stored then; Reservations.create_within_quota reads the usage again to find out.
    """
    params = {**new_job_values(new_job), **asdict(limits), **_window_starts(new_job.created_at)}
    row = await fetch_one(conn, INSERT_WITHIN_LIMITS, params)
    return job_from_row(row) if row else None


class UsageRepository:
    """Usage figures for members and moderators, each read in one transaction of its own."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def member_usage(self, guild_id: int, user_id: int, now: float) -> MemberUsage:
        """A member's usage at `now` (for their /videos summary and the quick precheck).

        Read in one transaction of its own; a video accepted right after may change it, so a
        decision to store a job must use storage.reservations instead.
        """
        async with self._db.transaction() as conn:
            return await read_member_usage(conn, guild_id, user_id, now)

    async def usage_report(
        self, guild_id: int, now: float, *, user_id: int | None = None, top: int = 5
    ) -> UsageReport:
        """Counting jobs and spend over 24 hours and 30 days; top members by 30-day spend.

        With user_id, every figure is that member's, and top_members is just them (with zeros
        when they have no counting job). The totals and the members are read in one
        transaction, so they agree.
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

    async def daily_usage(
        self, guild_id: int, now: float, *, user_id: int | None = None, days: int = DAILY_USAGE_DAYS
    ) -> list[DailyUsage]:
        """Counting jobs and spend per UTC day: `days` buckets, oldest first, ending with the
        UTC day that holds `now` (so far). Days without a counting job are zeros.

        Counted like every other usage figure here (the rule at the top of this module). A day
        runs from 00:00:00 UTC included to the next 00:00:00 excluded. With user_id, only that
        member's jobs. One statement, so the buckets agree with each other; it uses the
        jobs_by_guild index.
        """
        today = int(now // DAY_SECONDS)
        first = today - days + 1
        params = {
            "guild_id": guild_id,
            "user_id": user_id,
            "first_day": first * DAY_SECONDS,
            "end": (today + 1) * DAY_SECONDS,
        }
        rows = await self._db.fetch_all(SELECT_DAILY_USAGE, params)
        found = {int(day): (int(jobs), float(spend)) for day, jobs, spend in rows}
        epoch = dt.date(1970, 1, 1)
        return [
            DailyUsage(epoch + dt.timedelta(days=day), *found.get(day, (0, 0.0)))
            for day in range(first, today + 1)
        ]
