"""The PostgreSQL driver against a real server (TEST_DATABASE_URL; see tests/databases.py):
migrations, the schema SQLite has, and reservations from two pools."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from bot.domain.quota import check
from storage.db import list_migrations, open_database
from storage.driver import Database, DatabaseUnavailable, DatabaseUnusable
from storage.jobs import JobRepository
from storage.models import EffectiveLimits, Job, JobState
from storage.postgres import MIGRATIONS_DIR, open_postgres, redact
from storage.reservations import Reservations
from tests.databases import (
    open_test_postgres,
    own_database,
)
from tests.unit.fakes import new_job

NOW = 1_700_000_000.0


@pytest.fixture
async def fresh_url() -> AsyncIterator[str]:
    """A new, empty database of this test's own (no schema, no version)."""
    async with own_database("test") as url:
        yield url


async def version_of(url: str) -> int | None:
    connection = await asyncpg.connect(url)
    try:
        exists = await connection.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
        return await connection.fetchval("SELECT version FROM schema_version") if exists else None
    finally:
        await connection.close()


# --- migrations -------------------------------------------------------------------------------


async def test_migrations_from_empty_then_nothing_to_apply(fresh_url: str) -> None:
    db = await open_postgres(fresh_url)
    await db.close()
    assert await version_of(fresh_url) == len(list_migrations(MIGRATIONS_DIR))
    db = await open_postgres(fresh_url)  # again: applies nothing, keeps the data
    try:
        assert await db.fetch_one("SELECT COUNT(*) FROM jobs") == (0,)
    finally:
        await db.close()


async def test_a_newer_schema_is_refused_naming_the_url_without_its_password(
    fresh_url: str,
) -> None:
    db = await open_postgres(fresh_url)
    await db.fetch_all("UPDATE schema_version SET version = 99 RETURNING version")
    await db.close()
    with pytest.raises(DatabaseUnusable, match="schema version 99 is newer") as info:
        await open_postgres(fresh_url)
    assert info.value.setting == "DATABASE_URL"
    assert info.value.target == redact(fresh_url)


async def test_a_broken_migration_rolls_back_alone(fresh_url: str, tmp_path: Path) -> None:
    (tmp_path / "001_good.sql").write_text("CREATE TABLE a (x INTEGER);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE b (y INTEGER); SELECT nonsense(;")
    with pytest.raises(DatabaseUnusable, match=r"migration postgresql/002_bad\.sql failed"):
        await open_postgres(fresh_url, tmp_path)
    assert await version_of(fresh_url) == 1
    connection = await asyncpg.connect(fresh_url)
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
    finally:
        await connection.close()
    assert {row[0] for row in tables} == {"a", "schema_version"}, "002 left nothing behind"


# --- the same schema as SQLite ----------------------------------------------------------------

# SQLite's declared type -> the PostgreSQL types that stand for it.
_TYPES = {
    "INTEGER": {"integer", "bigint"},
    "REAL": {"double precision"},
    "TEXT": {"text"},
    "BLOB": {"bytea"},
}


async def sqlite_schema(path: Path) -> tuple[dict[str, list[tuple[str, str, bool]]], set[str]]:
    db = await open_database(path)
    try:
        tables = await db.fetch_all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        columns: dict[str, list[tuple[str, str, bool]]] = {}
        for (table,) in tables:
            info = await db.fetch_all(f"PRAGMA table_info({table})")
            # (name, declared type, NOT NULL); a primary key column is NOT NULL in PostgreSQL.
            columns[table] = [(c[1], c[2], bool(c[3]) or bool(c[5])) for c in info]
        indexes = await db.fetch_all(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    finally:
        await db.close()
    return columns, {name for (name,) in indexes}


async def postgres_schema(db: Database) -> tuple[dict[str, list[tuple[str, str, bool]]], set[str]]:
    rows = await db.fetch_all(
        """
        SELECT table_name, column_name, data_type, is_nullable = 'NO'
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name <> 'schema_version'
        ORDER BY table_name, ordinal_position
        """
    )
    columns: dict[str, list[tuple[str, str, bool]]] = {}
    for table, column, data_type, not_null in rows:
        columns.setdefault(table, []).append((column, data_type, not_null))
    indexes = await db.fetch_all(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
        "AND indexdef NOT LIKE 'CREATE UNIQUE INDEX%'"
    )
    return columns, {name for (name,) in indexes}


async def test_the_schema_has_sqlites_tables_columns_types_and_indexes(
    pg_db: Database, tmp_path: Path
) -> None:
    sqlite_columns, sqlite_indexes = await sqlite_schema(tmp_path / "bot.sqlite3")
    postgres_columns, postgres_indexes = await postgres_schema(pg_db)
    assert sorted(postgres_columns) == sorted(sqlite_columns), "the same tables"
    for table, expected in sqlite_columns.items():
        found = postgres_columns[table]
        assert [c[0] for c in found] == [c[0] for c in expected], f"{table}: columns, in order"
        for (name, declared, not_null), (_, data_type, pg_not_null) in zip(
            expected, found, strict=True
        ):
            assert data_type in _TYPES[declared], f"{table}.{name}: {data_type} for {declared}"
            assert pg_not_null == not_null, f"{table}.{name}: NOT NULL differs"
    assert postgres_indexes == sqlite_indexes, "the same named indexes"


# --- concurrency across processes (two pools) -------------------------------------------------


@pytest.fixture
async def two_pools(postgres_url: str) -> AsyncIterator[tuple[Database, Database]]:
    first = await open_test_postgres(postgres_url)
    second = await open_postgres(postgres_url)
    yield first, second
    await second.close()
    await first.close()


async def test_reservations_from_two_pools_never_overshoot(
    two_pools: tuple[Database, Database],
) -> None:
    """240 reservations at once for 3 servers x 4 members, alternating between two pools (two
    bot processes): each server gets exactly its 8 a day, no member more than their 3."""
    limits = EffectiveLimits(
        user_daily=3, guild_daily=8, user_concurrent=100, monthly_budget_usd=1000, max_seconds=None
    )
    repos = [Reservations(db) for db in two_pools]

    async def reserve(n: int) -> Job | object:
        guild, member = 1000 + n % 3, 2000 + (n // 3) % 4
        return await repos[n % 2].create_within_quota(
            new_job(NOW + n / 1000, guild_id=guild, user_id=member, interaction_id=n),
            lambda usage: check(limits, usage, NOW + 1, estimated_cost_usd=0.5, seconds=6),
            limits=limits,
        )

    results = await asyncio.gather(*(reserve(n) for n in range(240)))
    accepted = [r for r in results if isinstance(r, Job)]
    assert Counter(job.guild_id for job in accepted) == {1000: 8, 1001: 8, 1002: 8}
    assert max(Counter((j.guild_id, j.user_id) for j in accepted).values()) <= 3
    stored = await two_pools[0].fetch_all("SELECT guild_id, COUNT(*) FROM jobs GROUP BY guild_id")
    assert sorted(stored) == [(1000, 8), (1001, 8), (1002, 8)]


async def test_a_transition_raced_from_two_pools_has_one_winner(
    two_pools: tuple[Database, Database],
) -> None:
    first, second = (JobRepository(db) for db in two_pools)
    job = await first.create(new_job(NOW))
    results = await asyncio.gather(
        *(
            repo.transition(job.id, JobState.QUEUED, target, NOW + 1)
            for repo in (first, second)
            for target in (JobState.SUBMITTING, JobState.CANCELLED) * 10
        )
    )
    assert len([r for r in results if r is not None]) == 1


async def test_a_snapshot_is_read_only(pg_db: Database) -> None:
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        async with pg_db.snapshot() as conn:
            await conn.execute("DELETE FROM jobs")


# --- a cut connection -------------------------------------------------------------------------


async def test_a_cut_connection_is_database_unavailable_and_the_next_call_reconnects(
    fresh_url: str,
) -> None:
    db = await open_postgres(fresh_url)
    killer = await asyncpg.connect(fresh_url)
    try:
        with pytest.raises(DatabaseUnavailable) as info:
            async with db.access() as conn:
                (pid,) = await conn.fetch_one("SELECT pg_backend_pid()") or (0,)
                # What a server restart does to every connection: this one, mid-statement.
                cut = asyncio.get_running_loop().call_later(
                    0.2, lambda: asyncio.ensure_future(terminate(killer, pid))
                )
                try:
                    await conn.fetch_one("SELECT pg_sleep(10)")
                finally:
                    cut.cancel()
        assert info.value.target == redact(fresh_url)
        assert "\n" not in str(info.value)
        async with db.access() as conn:  # the pool connects again by itself
            assert await conn.fetch_one("SELECT 1") == (1,)
    finally:
        await killer.close()
        await db.close()


async def terminate(connection: asyncpg.Connection, pid: int) -> None:
    assert await connection.fetchval("SELECT pg_terminate_backend($1)", pid)


async def test_a_refused_statement_is_not_database_unavailable(pg_db: Database) -> None:
    with pytest.raises(asyncpg.PostgresError) as info:
        async with pg_db.transaction() as conn:
            await conn.execute("SELECT nonsense(")
    assert not isinstance(info.value, DatabaseUnavailable)
