"""UsageRepository.daily_usage on a real SQLite file: what counts, UTC day boundaries, gaps."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database, open_database
from storage.jobs import JobRepository
from storage.models import DAY_SECONDS, DailyUsage, Derivation, JobState
from storage.usage import SELECT_DAILY_USAGE, UsageRepository
from tests.unit.fakes import new_job

GUILD, MEMBER, OTHER = 10, 30, 31
# 2023-11-14 22:13:20 UTC: the last of the 30 buckets is 2023-11-14, the first 2023-10-16.
NOW = 1_700_000_000.0
TODAY = dt.date(2023, 11, 14)
MIDNIGHT = 1_699_920_000.0  # 2023-11-14 00:00:00 UTC
FIRST_DAY = MIDNIGHT - 29 * DAY_SECONDS  # 2023-10-16 00:00:00 UTC


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(tmp_path / "bot.sqlite3")
    yield database
    await database.close()


@pytest.fixture
def jobs(db: Database) -> JobRepository:
    return JobRepository(db)


@pytest.fixture
def usage(db: Database) -> UsageRepository:
    return UsageRepository(db)


_together_ids = iter(range(1, 10_000))


async def add(
    jobs: JobRepository,
    at: float,
    state: JobState = JobState.DELIVERED,
    *,
    accepted: bool = True,
    user_id: int = MEMBER,
    guild_id: int = GUILD,
    estimate: float = 0.5,
    cost: float | None = None,
    derivation: Derivation | None = None,
) -> None:
    """A job created at `at` and moved to `state`; `accepted` gives it a together_id."""
    job = await jobs.create(
        new_job(
            at,
            user_id=user_id,
            guild_id=guild_id,
            estimated_cost_usd=estimate,
            derivation=derivation,
        )
    )
    changes: dict[str, object] = {"cost_usd": cost}
    if accepted:
        changes["together_id"] = f"vid_{next(_together_ids)}"
    if state is not JobState.QUEUED:
        assert await jobs.transition(job.id, JobState.QUEUED, state, at, **changes) is not None


def by_day(days: list[DailyUsage]) -> dict[dt.date, tuple[int, float]]:
    return {d.day: (d.jobs, round(d.spend_usd, 6)) for d in days if d.jobs or d.spend_usd}


async def test_thirty_utc_days_oldest_first_ending_today_with_zeros(
    usage: UsageRepository,
) -> None:
    days = await usage.daily_usage(GUILD, NOW)
    assert len(days) == 30
    assert days[0].day == TODAY - dt.timedelta(days=29) == dt.date(2023, 10, 16)
    assert days[-1].day == TODAY
    assert [d.day for d in days] == sorted({d.day for d in days})
    assert all((d.jobs, d.spend_usd) == (0, 0.0) for d in days)


async def test_the_usage_rule_decides_what_counts(
    usage: UsageRepository, jobs: JobRepository
) -> None:
    at = MIDNIGHT + 60
    await add(jobs, at, JobState.DELIVERED, estimate=0.5, cost=0.25)  # Together's cost
    await add(jobs, at, JobState.DELIVERED, estimate=0.5)  # no cost reported: the estimate
    await add(jobs, at, JobState.QUEUED, accepted=False, estimate=1.0)  # holds quota
    await add(jobs, at, JobState.FAILED, accepted=True, estimate=2.0)  # Together took it
    await add(jobs, at, JobState.FAILED, accepted=False, estimate=100.0)  # before Together
    await add(jobs, at, JobState.CANCELLED, accepted=False, estimate=100.0)
    await add(jobs, at, JobState.TIMED_OUT, accepted=True, estimate=100.0)
    await add(jobs, at, JobState.DELIVERED, estimate=100.0, derivation=Derivation.JOIN)
    await add(jobs, at, guild_id=GUILD + 1, estimate=100.0)  # another server
    days = await usage.daily_usage(GUILD, NOW)
    assert by_day(days) == {TODAY: (4, 3.75)}


async def test_day_boundaries_are_utc_midnights(
    usage: UsageRepository, jobs: JobRepository
) -> None:
    await add(jobs, FIRST_DAY - 0.001, estimate=100.0)  # the day before the first bucket
    await add(jobs, FIRST_DAY, estimate=1.0)  # the first bucket's first instant
    await add(jobs, MIDNIGHT - 0.001, estimate=2.0)  # yesterday's last instant
    await add(jobs, MIDNIGHT, estimate=4.0)  # today's first instant
    await add(jobs, NOW, estimate=8.0)
    days = await usage.daily_usage(GUILD, NOW)
    assert by_day(days) == {
        dt.date(2023, 10, 16): (1, 1.0),
        dt.date(2023, 11, 13): (1, 2.0),
        TODAY: (2, 12.0),
    }


async def test_at_midnight_the_new_day_is_the_last_bucket(
    usage: UsageRepository, jobs: JobRepository
) -> None:
    await add(jobs, MIDNIGHT - 1, estimate=2.0)
    days = await usage.daily_usage(GUILD, MIDNIGHT)
    assert days[-1] == DailyUsage(TODAY, 0, 0.0)
    assert days[-2] == DailyUsage(TODAY - dt.timedelta(days=1), 1, 2.0)
    assert days[0].day == dt.date(2023, 10, 16)


async def test_one_member_only(usage: UsageRepository, jobs: JobRepository) -> None:
    await add(jobs, MIDNIGHT + 1, user_id=MEMBER, estimate=1.0)
    await add(jobs, MIDNIGHT + 2, user_id=OTHER, estimate=2.0)
    await add(jobs, MIDNIGHT - 5 * DAY_SECONDS, user_id=OTHER, estimate=4.0)
    assert by_day(await usage.daily_usage(GUILD, NOW, user_id=MEMBER)) == {TODAY: (1, 1.0)}
    assert by_day(await usage.daily_usage(GUILD, NOW, user_id=OTHER)) == {
        TODAY - dt.timedelta(days=5): (1, 4.0),
        TODAY: (1, 2.0),
    }
    assert by_day(await usage.daily_usage(GUILD, NOW)) == {
        TODAY - dt.timedelta(days=5): (1, 4.0),
        TODAY: (2, 3.0),
    }


async def test_the_daily_query_uses_the_guild_index(db: Database) -> None:
    params = {"guild_id": 1, "user_id": None, "first_day": 0.0, "end": 1.0}
    async with (
        db.access() as conn,
        conn.execute(f"EXPLAIN QUERY PLAN {SELECT_DAILY_USAGE}", params) as cursor,
    ):
        plan = " ".join(str(row[-1]) for row in await cursor.fetchall())
    assert "jobs_by_guild" in plan
