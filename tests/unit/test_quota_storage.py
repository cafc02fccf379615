"""Quota storage on both drivers (any_db): what counts, windows, settings, audit, and the race."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.domain.quota import check
from storage.db import Database, open_database
from storage.driver import Connection, Params
from storage.jobs import JobRepository
from storage.models import EffectiveLimits, GuildLimits, Job, JobState, MemberUsage, UsageRow
from storage.reservations import Reservations
from storage.server_settings import GuildSettingsRepository
from storage.usage import UsageRepository, insert_within_limits, read_member_usage
from tests.databases import reopen
from tests.unit.fakes import new_job

NOW = 1_700_000_000.0
DAY = 86_400
GUILD = 10
MEMBER = 30
MOD = 99


@pytest.fixture
def db(any_db: Database) -> Database:
    return any_db


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """For what only SQLite has: its query plans, the one-statement reservation."""
    database = await open_database(tmp_path / "bot.sqlite3")
    yield database
    await database.close()


@pytest.fixture
def jobs(db: Database) -> JobRepository:
    return JobRepository(db)


@pytest.fixture
def settings(db: Database) -> GuildSettingsRepository:
    return GuildSettingsRepository(db)


@pytest.fixture
def usage_repo(db: Database) -> UsageRepository:
    return UsageRepository(db)


@pytest.fixture
def reservations(db: Database) -> Reservations:
    return Reservations(db)


_together_ids = iter(range(1, 10_000))


async def add(
    jobs: JobRepository,
    state: JobState = JobState.QUEUED,
    *,
    age: float = 60,
    user_id: int = MEMBER,
    guild_id: int = GUILD,
    estimate: float = 0.5,
    cost: float | None = None,
    accepted: bool = False,
) -> Job:
    """A job created `age` s before NOW, moved to `state`; `accepted` gives it a together_id."""
    job = await jobs.create(
        new_job(NOW - age, user_id=user_id, guild_id=guild_id, estimated_cost_usd=estimate)
    )
    changes: dict[str, object] = {"cost_usd": cost}
    if accepted:
        changes["together_id"] = f"vid_{next(_together_ids)}"
    moved = await jobs.transition(job.id, JobState.QUEUED, state, NOW - age, **changes)
    assert moved is not None
    return moved


async def usage_of(db: Database, user_id: int = MEMBER, now: float = NOW) -> MemberUsage:
    async with db.transaction() as conn:
        return await read_member_usage(conn, GUILD, user_id, now)


# --- schema ---------------------------------------------------------------------------------


async def test_migrations_apply_from_empty(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    database = await open_database(path)
    await database.close()
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {
        "guild_settings",
        "role_quotas",
        "model_rules",
        "allowed_channels",
        "blocked_members",
        "audit_log",
        "jobs_by_guild",
        "jobs_unfinished",
        "audit_log_by_guild",
    } <= names


async def test_usage_queries_use_the_indexes(sqlite_db: Database) -> None:
    from storage import jobs, usage

    async def plan(sql: str, params: Params) -> str:
        rows = await sqlite_db.fetch_all(f"EXPLAIN QUERY PLAN {sql}", params)
        return " ".join(str(row[-1]) for row in rows)

    window = {"guild_id": 1, "user_id": 2, "day_start": 0, "month_start": 0}
    usage_plan = await plan(usage.SELECT_WINDOW_USAGE, window)
    assert "jobs_by_guild" in usage_plan and "jobs_unfinished" in usage_plan
    assert "jobs_unfinished" in await plan(jobs.SELECT_UNFINISHED, (1,))


# --- what counts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "accepted", "counts"),
    [
        (JobState.QUEUED, False, True),
        (JobState.SUBMITTING, False, True),
        (JobState.RUNNING, True, True),
        (JobState.DELIVERING, True, True),
        (JobState.DELIVERED, True, True),
        (JobState.FAILED, True, True),  # Together took it (and may bill it)
        (JobState.FAILED, False, False),  # failed before Together accepted it
        (JobState.CANCELLED, False, False),
        (JobState.TIMED_OUT, True, False),
    ],
)
async def test_what_counts(
    db: Database, jobs: JobRepository, state: JobState, accepted: bool, counts: bool
) -> None:
    await add(jobs, state, accepted=accepted, estimate=0.5)
    usage = await usage_of(db)
    assert (usage.user_day, usage.guild_day) == ((1, 1) if counts else (0, 0))
    assert usage.guild_month_usd == (0.5 if counts else 0.0)
    assert usage.user_active == (1 if not state.is_final else 0)


async def test_rolling_windows(db: Database, jobs: JobRepository) -> None:
    old = await add(jobs, JobState.DELIVERED, age=DAY + 1, estimate=1.0)
    await add(jobs, JobState.DELIVERED, age=30 * DAY + 1, estimate=100.0)  # out of both
    recent = await add(jobs, JobState.DELIVERED, age=600, estimate=2.0)
    await add(jobs, JobState.DELIVERED, age=300, user_id=77, estimate=4.0)
    usage = await usage_of(db)
    assert (usage.user_day, usage.guild_day, usage.user_active) == (1, 2, 0)
    assert usage.guild_month_usd == pytest.approx(7.0), "the 24h+1s job still counts this month"
    assert usage.user_day_oldest == recent.created_at
    assert usage.guild_day_oldest == recent.created_at
    assert usage.guild_month_oldest == old.created_at


async def test_a_job_exactly_a_day_old_has_left_the_window(
    db: Database, jobs: JobRepository
) -> None:
    await add(jobs, JobState.DELIVERED, age=DAY)
    usage = await usage_of(db)
    assert (usage.user_day, usage.user_day_oldest) == (0, None)


async def test_spend_prefers_the_reported_cost(db: Database, jobs: JobRepository) -> None:
    await add(jobs, JobState.DELIVERED, accepted=True, estimate=0.49, cost=0.31)
    await add(jobs, JobState.RUNNING, accepted=True, estimate=0.49)
    free = await add(jobs, JobState.DELIVERED, age=DAY * 2, estimate=0.0)
    usage = await usage_of(db)
    assert usage.guild_month_usd == pytest.approx(0.80)
    assert usage.guild_month_oldest != free.created_at, "a free job frees no budget"


async def test_unfinished_jobs_count_as_active_whatever_their_age(
    db: Database, jobs: JobRepository
) -> None:
    await add(jobs, JobState.RUNNING, age=40 * DAY, accepted=True)
    await add(jobs, JobState.QUEUED, user_id=77)
    usage = await usage_of(db)
    assert (usage.user_active, usage.user_day) == (1, 0)


async def test_other_servers_do_not_count(db: Database, jobs: JobRepository) -> None:
    await add(jobs, guild_id=GUILD + 1)
    assert await usage_of(db) == MemberUsage(0, 0, 0, 0.0, None, None, None)


# --- settings and audit ---------------------------------------------------------------------


async def test_limits_default_to_none(settings: GuildSettingsRepository) -> None:
    assert await settings.limits(GUILD) == GuildLimits()


async def test_set_limits_changes_only_the_given_fields(
    settings: GuildSettingsRepository,
) -> None:
    first = await settings.set_limits(GUILD, MOD, NOW, user_daily=5, monthly_budget_usd=20)
    assert first == GuildLimits(user_daily=5, monthly_budget_usd=20.0)
    second = await settings.set_limits(GUILD, MOD, NOW + 1, guild_daily=0, user_daily=None)
    assert second == GuildLimits(guild_daily=0, monthly_budget_usd=20.0)
    assert await settings.limits(GUILD) == second
    assert await settings.limits(GUILD + 1) == GuildLimits(), "other servers untouched"
    entries = await settings.audit(GUILD)
    assert [(e.action, e.detail, e.actor_id, e.created_at) for e in entries] == [
        ("quota", "guild_daily=0, user_daily=default", MOD, NOW + 1),
        ("quota", "user_daily=5, monthly_budget_usd=20.0", MOD, NOW),
    ]


async def test_set_limits_with_nothing_writes_nothing(settings: GuildSettingsRepository) -> None:
    assert await settings.set_limits(GUILD, MOD, NOW) == GuildLimits()
    assert await settings.audit(GUILD) == []


@pytest.mark.parametrize(
    "changes",
    [{"nonsense": 1}, {"user_daily": -1}, {"max_seconds": 2.5}, {"guild_daily": True}],
)
async def test_set_limits_validates(
    settings: GuildSettingsRepository, changes: dict[str, float]
) -> None:
    with pytest.raises(ValueError):
        await settings.set_limits(GUILD, MOD, NOW, **changes)
    assert await settings.limits(GUILD) == GuildLimits()
    assert await settings.audit(GUILD) == []


NO_AUDIT_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'x'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION no_audit() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RAISE EXCEPTION 'x'; END $$",
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION no_audit()",
    ],
}

DROP_NO_AUDIT = {
    "sqlite": ["DROP TRIGGER no_audit"],
    "postgresql": ["DROP TRIGGER no_audit ON audit_log", "DROP FUNCTION no_audit()"],
}


async def test_change_and_audit_share_one_transaction(db: Database) -> None:
    # If the audit insert fails, the change must not stay behind.
    settings = GuildSettingsRepository(db)
    async with db.access() as conn:
        for statement in NO_AUDIT_TRIGGER[db.dialect]:
            await conn.execute(statement)
    try:
        with pytest.raises((sqlite3.IntegrityError, asyncpg.RaiseError)):
            await settings.set_limits(GUILD, MOD, NOW, user_daily=5)
    finally:  # the PostgreSQL database outlives the test: put the schema back
        async with db.access() as conn:
            for statement in DROP_NO_AUDIT[db.dialect]:
                await conn.execute(statement)
    assert await settings.limits(GUILD) == GuildLimits()


async def test_role_quotas_round_trip(settings: GuildSettingsRepository) -> None:
    await settings.set_role_quota(GUILD, 500, 20, MOD, NOW)
    await settings.set_role_quota(GUILD, 501, 0, MOD, NOW + 1)
    await settings.set_role_quota(GUILD, 500, 25, MOD, NOW + 2)
    assert await settings.role_quotas(GUILD) == {500: 25, 501: 0}
    await settings.set_role_quota(GUILD, 501, None, MOD, NOW + 3)
    assert await settings.role_quotas(GUILD) == {500: 25}
    with pytest.raises(ValueError):
        await settings.set_role_quota(GUILD, 502, -3, MOD, NOW)
    details = [(e.action, e.detail) for e in await settings.audit(GUILD)]
    assert details == [
        ("role_quota", "<@&501> user_daily=default"),
        ("role_quota", "<@&500> user_daily=25"),
        ("role_quota", "<@&501> user_daily=0"),
        ("role_quota", "<@&500> user_daily=20"),
    ]


async def test_model_rules_round_trip(settings: GuildSettingsRepository) -> None:
    await settings.set_model_rule(GUILD, "a/model", "deny", MOD, NOW)
    await settings.set_model_rule(GUILD, "b/model", "allow", MOD, NOW)
    await settings.set_model_rule(GUILD, "a/model", "allow", MOD, NOW)
    assert (await settings.rules(GUILD)).model_rules == {"a/model": "allow", "b/model": "allow"}
    await settings.set_model_rule(GUILD, "b/model", None, MOD, NOW)
    assert (await settings.rules(GUILD)).model_rules == {"a/model": "allow"}
    with pytest.raises(ValueError):
        await settings.set_model_rule(GUILD, "a/model", "maybe", MOD, NOW)  # type: ignore[arg-type]
    assert [e.detail for e in await settings.audit(GUILD)] == [
        "b/model default",
        "a/model allow",
        "b/model allow",
        "a/model deny",
    ]


async def test_channels_replace_the_set(settings: GuildSettingsRepository) -> None:
    assert (await settings.rules(GUILD)).channels == set()
    await settings.set_channels(GUILD, [3, 1, 3], MOD, NOW)
    assert (await settings.rules(GUILD)).channels == {1, 3}
    await settings.set_channels(GUILD, [2], MOD, NOW)
    assert (await settings.rules(GUILD)).channels == {2}
    await settings.set_channels(GUILD, [], MOD, NOW)
    assert (await settings.rules(GUILD)).channels == set()
    assert [e.detail for e in await settings.audit(GUILD)] == ["all", "<#2>", "<#1>, <#3>"]


async def test_blocking_round_trip(settings: GuildSettingsRepository) -> None:
    assert MEMBER not in (await settings.rules(GUILD)).blocked
    assert await settings.set_blocked(GUILD, MEMBER, True, MOD, NOW)
    assert MEMBER in (await settings.rules(GUILD)).blocked
    assert MEMBER not in (await settings.rules(GUILD + 1)).blocked, "blocks are per server"
    assert not await settings.set_blocked(GUILD, MEMBER, True, MOD, NOW), "already blocked"
    assert await settings.set_blocked(GUILD, MEMBER, False, MOD, NOW + 1)
    assert MEMBER not in (await settings.rules(GUILD)).blocked
    assert not await settings.set_blocked(GUILD, MEMBER, False, MOD, NOW + 1)
    assert [(e.action, e.detail) for e in await settings.audit(GUILD)] == [
        ("unblock", f"<@{MEMBER}>"),
        ("block", f"<@{MEMBER}>"),
    ]


async def test_audit_is_newest_first_and_limited(settings: GuildSettingsRepository) -> None:
    for n in range(5):
        await settings.set_limits(GUILD, MOD, NOW + n, user_daily=n)
    await settings.set_limits(GUILD + 1, MOD, NOW, user_daily=1)
    entries = await settings.audit(GUILD, limit=3)
    assert [e.detail for e in entries] == ["user_daily=4", "user_daily=3", "user_daily=2"]
    assert all(e.guild_id == GUILD for e in entries)


# --- reports --------------------------------------------------------------------------------


async def test_usage_report(usage_repo: UsageRepository, jobs: JobRepository) -> None:
    await add(jobs, JobState.DELIVERED, user_id=1, accepted=True, estimate=0.5, cost=0.4)
    await add(jobs, JobState.QUEUED, user_id=1, estimate=0.5)
    await add(jobs, JobState.DELIVERED, user_id=2, age=2 * DAY, estimate=3.0)
    await add(jobs, JobState.DELIVERED, user_id=3, age=3 * DAY, estimate=0.45)
    await add(jobs, JobState.DELIVERED, user_id=3, age=4 * DAY, estimate=0.45)
    await add(jobs, JobState.CANCELLED, user_id=4, estimate=9.0)  # gave it back
    await add(jobs, JobState.DELIVERED, user_id=5, age=31 * DAY, estimate=9.0)  # too old
    await add(jobs, JobState.DELIVERED, user_id=6, guild_id=GUILD + 1, estimate=9.0)

    report = await usage_repo.usage_report(GUILD, NOW, top=3)
    assert (report.day_jobs, report.month_jobs) == (2, 5)
    assert report.day_usd == pytest.approx(0.9)
    assert report.month_usd == pytest.approx(4.8)
    assert report.top_members == [
        UsageRow(2, 1, 3.0),
        UsageRow(1, 2, pytest.approx(0.9)),  # type: ignore[arg-type]
        UsageRow(3, 2, 0.9),
    ]
    assert [r.user_id for r in (await usage_repo.usage_report(GUILD, NOW, top=1)).top_members] == [
        2
    ]

    mine = await usage_repo.usage_report(GUILD, NOW, user_id=3)
    assert (mine.day_jobs, mine.day_usd, mine.month_jobs) == (0, 0.0, 2)
    assert mine.month_usd == pytest.approx(0.9)
    assert mine.top_members == [UsageRow(3, 2, pytest.approx(0.9))]  # type: ignore[arg-type]
    nobody = await usage_repo.usage_report(GUILD, NOW, user_id=404)
    assert nobody.top_members == [UsageRow(404, 0, 0.0)]
    assert (nobody.day_jobs, nobody.month_jobs, nobody.month_usd) == (0, 0, 0.0)


async def test_member_usage(usage_repo: UsageRepository, jobs: JobRepository) -> None:
    await add(jobs, JobState.RUNNING, accepted=True, estimate=1.5)
    usage = await usage_repo.member_usage(GUILD, MEMBER, NOW)
    assert (usage.user_day, usage.user_active, usage.guild_month_usd) == (1, 1, 1.5)


async def test_unfinished_jobs(jobs: JobRepository) -> None:
    first = await add(jobs, JobState.RUNNING, age=500, accepted=True)
    await add(jobs, JobState.DELIVERED, age=400, accepted=True)
    second = await add(jobs, JobState.QUEUED, age=300, user_id=77)
    await add(jobs, JobState.QUEUED, guild_id=GUILD + 1)
    third = await add(jobs, JobState.DELIVERING, age=100, accepted=True)
    unfinished = await jobs.unfinished_in_guild(GUILD)
    assert [j.id for j in unfinished] == [first.id, second.id, third.id]
    assert unfinished[0] == first


# --- the quota reservation and its race -----------------------------------------------------


@dataclass(frozen=True)
class Full:
    seen: int


async def test_create_within_quota_accepts_and_refuses(
    db: Database, jobs: JobRepository, reservations: Reservations
) -> None:
    seen: list[MemberUsage] = []

    def decide(usage: MemberUsage) -> Full | None:
        seen.append(usage)
        return Full(usage.user_day) if usage.user_day >= 1 else None

    media = {"first_frame": b"png"}
    job = await reservations.create_within_quota(new_job(NOW), decide, media)
    assert isinstance(job, Job) and job.state is JobState.QUEUED
    assert await jobs.media(job.id) == media
    refused = await reservations.create_within_quota(new_job(NOW + 1), decide, media)
    assert refused == Full(1)
    assert seen[1].user_active == 1 and seen[1].user_day_oldest == NOW
    assert await db.fetch_one("SELECT COUNT(*) FROM job_media") == (1,), "a refusal stores nothing"


async def test_a_failing_decision_stores_nothing(
    jobs: JobRepository, reservations: Reservations
) -> None:
    def decide(usage: MemberUsage) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await reservations.create_within_quota(new_job(NOW), decide)
    assert await jobs.recent_for_member(GUILD, MEMBER) == []


async def _race(repos: list[Reservations], calls_each: int) -> list[Job | Full]:
    def decide(usage: MemberUsage) -> Full | None:
        return Full(usage.user_day) if usage.user_day >= 5 else None

    return await asyncio.gather(
        *(
            repo.create_within_quota(new_job(NOW + n / 1000, interaction_id=n), decide)
            for n in range(calls_each)
            for repo in repos
        )
    )


async def test_fifty_concurrent_requests_get_exactly_five(
    jobs: JobRepository, reservations: Reservations
) -> None:
    results = await _race([reservations], 50)
    accepted = [r for r in results if isinstance(r, Job)]
    assert len(accepted) == 5
    assert len([r for r in results if isinstance(r, Full)]) == 45
    assert len(await jobs.recent_for_member(GUILD, MEMBER, limit=100)) == 5


async def test_the_race_across_two_connections(db: Database) -> None:
    # SQLite: two connections; PostgreSQL: two pools, as two bot processes would have.
    other = await reopen(db)
    try:
        results = await _race([Reservations(db), Reservations(other)], 25)
    finally:
        await other.close()
    assert len([r for r in results if isinstance(r, Job)]) == 5
    assert len([r for r in results if isinstance(r, Full)]) == 45
    assert await db.fetch_one("SELECT COUNT(*) FROM jobs") == (5,)


# --- the in-memory copy of server settings ----------------------------------------------------


class CountingDatabase(Database):
    """Another database, counting the reads that reach it."""

    reads = 0

    def __init__(self, inner: Database) -> None:
        self.inner = inner
        self.dialect = inner.dialect

    @asynccontextmanager
    async def access(self) -> AsyncIterator[Connection]:
        self.reads += 1
        async with self.inner.access() as conn:
            yield conn

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        return self.inner.transaction()

    def snapshot(self) -> AbstractAsyncContextManager[Connection]:
        return self.inner.snapshot()

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
def counting_db(any_db: Database) -> CountingDatabase:
    return CountingDatabase(any_db)


async def test_server_rules_are_read_once_and_every_change_shows_at_once(
    counting_db: CountingDatabase,
) -> None:
    settings = GuildSettingsRepository(counting_db)
    assert 7 not in (await settings.rules(1)).blocked
    reads = counting_db.reads
    for _ in range(5):
        assert (await settings.rules(1)).channels == set()
        assert await settings.limits(1) == GuildLimits()
    assert counting_db.reads == reads, "served from memory"

    await settings.set_blocked(1, 7, True, actor_id=9, now=NOW)
    await settings.set_channels(1, [55], actor_id=9, now=NOW)
    await settings.set_model_rule(1, "m", "deny", actor_id=9, now=NOW)
    await settings.set_role_quota(1, 3, 8, actor_id=9, now=NOW)
    await settings.set_limits(1, actor_id=9, now=NOW, user_daily=2)
    assert 7 in (await settings.rules(1)).blocked
    assert (await settings.rules(1)).channels == {55}
    assert (await settings.rules(1)).model_rules == {"m": "deny"}
    assert await settings.role_quotas(1) == {3: 8}
    assert (await settings.limits(1)).user_daily == 2
    assert 7 not in (await settings.rules(2)).blocked, "other servers are their own"


async def test_commands_arriving_together_share_one_read_of_the_rules(
    counting_db: CountingDatabase,
) -> None:
    settings = GuildSettingsRepository(counting_db)
    results = await asyncio.gather(*(settings.rules(1) for _ in range(50)))
    assert counting_db.reads == 1
    assert all(rules is results[0] for rules in results)


# --- the one-statement fast path agrees with the policy --------------------------------------

_existing_job = st.tuples(
    st.sampled_from([MEMBER, MEMBER + 1]),
    st.sampled_from(list(JobState)),
    st.sampled_from([60.0, 2 * DAY, 40 * DAY]),  # today, this month, older
    st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.5]),
    st.booleans(),
)
_limits = st.builds(
    EffectiveLimits,
    user_daily=st.integers(0, 4),
    guild_daily=st.integers(0, 6),
    user_concurrent=st.integers(0, 3),
    monthly_budget_usd=st.sampled_from([0.0, 0.3, 0.6, 1.0, 1.5]),
    max_seconds=st.sampled_from([None, 0, 5, 6]),
)


@hypothesis_settings(max_examples=150, deadline=None)
@example(  # 0.1 + 0.2 is 0.30000000000000004: a video that lands exactly on a $0.30 budget
    existing=[(MEMBER + 1, JobState.DELIVERED, 60.0, 0.1, True)],
    limits=EffectiveLimits(4, 6, 3, 0.3, None),
    cost=0.2,
    seconds=6,
)
@given(
    existing=st.lists(_existing_job, max_size=6),
    limits=_limits,
    cost=st.sampled_from([0.0, 0.1, 0.2, 0.3]),
    seconds=st.sampled_from([5, 6, 8]),
)
def test_the_fast_reservation_accepts_exactly_what_the_policy_accepts(
    existing: list[tuple[int, JobState, float, float, bool]],
    limits: EffectiveLimits,
    cost: float,
    seconds: int,
) -> None:
    """Boundaries included: limits and sums are drawn to land exactly on each other."""

    async def scenario(path: Path) -> tuple[bool, bool]:
        db = await open_database(path)
        try:
            jobs = JobRepository(db)
            for user_id, state, age, spent, accepted in existing:
                await add(jobs, state, age=age, user_id=user_id, estimate=spent, accepted=accepted)
            usage = await usage_of(db)
            policy = check(limits, usage, NOW, estimated_cost_usd=cost, seconds=seconds) is None
            candidate = new_job(NOW, estimated_cost_usd=cost, seconds=seconds)
            async with db.access() as conn:
                stored = await insert_within_limits(conn, candidate, limits)
            return policy, stored is not None
        finally:
            await db.close()

    with tempfile.TemporaryDirectory() as directory:
        policy, fast = asyncio.run(scenario(Path(directory) / "bot.sqlite3"))
    assert fast == policy


async def test_fifty_concurrent_fast_reservations_get_exactly_five(
    reservations: Reservations,
) -> None:
    limits = EffectiveLimits(
        user_daily=5, guild_daily=50, user_concurrent=50, monthly_budget_usd=100, max_seconds=None
    )
    results = await asyncio.gather(
        *(
            reservations.create_within_quota(
                new_job(NOW + n / 1000, interaction_id=n),
                lambda usage: check(limits, usage, NOW + 1, estimated_cost_usd=0.5, seconds=6),
                limits=limits,
            )
            for n in range(50)
        )
    )
    assert sum(isinstance(result, Job) for result in results) == 5
    refusals = [r for r in results if not isinstance(r, Job)]
    assert refusals and all(r is not None and r.limit == "user_daily" for r in refusals)
