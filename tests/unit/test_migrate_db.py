"""`video-bot migrate-db --to URL`: a real SQLite file, filled through the repositories, copied
into a new database on the test PostgreSQL (TEST_DATABASE_URL) and read back through the same
repositories on the PostgreSQL driver; and the refusals, which write nothing."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from bot.__main__ import main
from storage.db import Database, open_database
from storage.forms import PendingForms
from storage.jobs import JobRepository
from storage.leases import JobLeases
from storage.lock import acquire_database_lock
from storage.models import JobState, MediaLink, PendingFile
from storage.postgres import open_postgres
from storage.processes import Processes
from storage.server_settings import GuildSettingsRepository
from tests.databases import drop_database, run_aside, scratch_database, server_url
from tests.unit.fakes import new_job

# Times with every bit of a double in use: they must come back exactly.
NOW = 1_700_000_000.123456789
LATER = NOW + 0.1 + 0.2
GUILD, OTHER_GUILD, MOD = 10, 11, 99
# Every byte value, and a NUL in the middle: images must survive byte for byte.
IMAGE = bytes(range(256)) * 40 + b"\x00\xff\x00"
PASSWORD = "hunter2-secret"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATABASE_PATH set, and nothing else: no tokens, no .env in the working folder."""
    for name in ("DISCORD_TOKEN", "TOGETHER_API_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bot.sqlite3"
    monkeypatch.setenv("DATABASE_PATH", str(path))
    return path


@pytest.fixture
def target_url() -> Iterator[str]:
    """A new, empty database (no tables yet) on the test server, dropped afterwards."""
    server = server_url()
    name, url = scratch_database(server)
    yield url
    run_aside(drop_database(server, name))


@pytest.fixture
async def source(database: Path) -> AsyncIterator[None]:
    """The SQLite file at DATABASE_PATH, filled, and closed before the test runs migrate-db."""
    db = await open_database(database)
    try:
        await fill(db)
    finally:
        await db.close()
    yield


async def fill(db: Database) -> None:
    """Jobs in several states, with images, links and lineage; settings of every kind, their
    audit entries and versions; safety; a pending form; a process holding a lease."""
    jobs = JobRepository(db)
    await jobs.create(
        new_job(NOW), {"first_frame": IMAGE, "reference": IMAGE[::-1]}, [link("video")]
    )
    running = await jobs.create(new_job(NOW, seed=4294967295, guidance_scale=7.25))
    await jobs.transition(running.id, JobState.QUEUED, JobState.SUBMITTING, LATER)
    await jobs.transition(
        running.id,
        JobState.SUBMITTING,
        JobState.RUNNING,
        LATER,
        together_id="t-1",
        submitted_at=LATER,
    )
    done = await jobs.create(new_job(NOW - 86_400.5, user_id=31), {"last_frame": b"\x89PNG"})
    await jobs.transition(done.id, JobState.QUEUED, JobState.FAILED, NOW, failure_reason="x")
    child = await jobs.create(
        new_job(NOW, parent_id=done.id, derivation="retry"), links=[link("soundtrack")]
    )
    await jobs.transition(child.id, JobState.QUEUED, JobState.CANCELLED, LATER)
    await jobs.create(new_job(LATER, guild_id=OTHER_GUILD))

    settings = GuildSettingsRepository(db)
    await settings.set_limits(GUILD, MOD, NOW, user_daily=5, monthly_budget_usd=20.5)
    await settings.set_role_quota(GUILD, 777, 9, MOD, NOW)
    await settings.set_model_rule(GUILD, "minimax/hailuo-02", "deny", MOD, NOW)
    await settings.set_flow_model(GUILD, "animate", "Wan-AI/wan2.7-i2v", MOD, NOW)
    await settings.set_channels(GUILD, [20, 21], MOD, NOW)
    await settings.set_blocked(GUILD, 31, True, MOD, LATER)
    await settings.set_safety(OTHER_GUILD, MOD, NOW, screening=True, screen_unavailable="allow")
    await settings.change_blocked_word(OTHER_GUILD, "forbidden words", True, 50, MOD, NOW)
    await settings.record_refusal(OTHER_GUILD, 31, "blocked_word", "forbidden words", LATER)

    await PendingForms(db).put(
        PendingFile(0, GUILD, 30, 20, 123, 456, "https://cdn/x.png", "x.png", None, 2048, NOW)
    )
    await Processes(db, "proc-a").register(NOW)
    await JobLeases(db, "proc-a").claim_all(NOW + 30)


def link(kind: str) -> MediaLink:
    return MediaLink(kind, f"https://cdn.example/{kind}?ex=1", LATER, 20, 21, 22)


async def cli(*args: str) -> int:
    """`video-bot ARGS`, in a thread: the command runs its own event loop, as from a shell."""
    return await asyncio.to_thread(main, list(args))


async def tables(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
    finally:
        await connection.close()
    return sorted(str(row[0]) for row in rows)


async def every_row(db: Database, table: str, columns: list[str]) -> list[tuple[object, ...]]:
    listed = ", ".join(columns)
    return sorted(
        await db.fetch_all(f"SELECT {listed} FROM {table}"),
        key=lambda row: [repr(value) for value in row],
    )


async def sqlite_columns(db: Database) -> dict[str, list[str]]:
    names = await db.fetch_all(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return {
        str(name): [str(row[1]) for row in await db.fetch_all(f"PRAGMA table_info({name})")]
        for (name,) in names
    }


async def test_every_table_is_copied_exactly_and_reads_back_the_same(
    source: None, database: Path, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("migrate-db", "--to", target_url) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    # "video-bot: jobs   5 rows, next id 6", one line per table, then the total.
    reported = {
        line.split()[1]: int(line.split()[2])
        for line in lines[:-1]
        if line.startswith("video-bot: ")
    }
    assert any(
        line.startswith("video-bot: jobs ") and " 5 rows, next id 6" in line for line in lines
    )

    sqlite = await open_database(database)
    postgres = await open_postgres(target_url)
    try:
        # Table by table, row by row, value by value: bytes, floats and big integers exact.
        columns = await sqlite_columns(sqlite)
        assert set(columns) <= set(await tables(target_url))
        copied = 0
        for table, names in columns.items():
            rows = await every_row(sqlite, table, names)
            assert await every_row(postgres, table, names) == rows, table
            assert reported[table] == len(rows), table
            copied += len(rows)
        assert lines[-1].startswith(f"video-bot: Copied {copied} rows in {len(columns)} tables")
        assert PASSWORD not in out

        # And through the repositories, on each driver: the same objects.
        for_sqlite, for_postgres = JobRepository(sqlite), JobRepository(postgres)
        for job_id in range(1, 6):
            job = await for_sqlite.get(job_id)
            assert job is not None
            assert await for_postgres.get(job_id) == job
            assert await for_postgres.media(job_id) == await for_sqlite.media(job_id)
            assert await for_postgres.links(job_id) == await for_sqlite.links(job_id)
        assert (await for_postgres.media(1))["first_frame"] == IMAGE
        for guild in (GUILD, OTHER_GUILD):
            a, b = GuildSettingsRepository(sqlite), GuildSettingsRepository(postgres)
            assert await b.rules(guild) == await a.rules(guild)
            assert await b.audit(guild, 100) == await a.audit(guild, 100)
        assert await PendingForms(postgres).get(1) == await PendingForms(sqlite).get(1)
        assert await Processes(postgres, "x").live(NOW, 30) == await Processes(sqlite, "x").live(
            NOW, 30
        )
        assert await JobLeases(sqlite, "x").holder(1) == "proc-a"
        assert await JobLeases(postgres, "x").holder(1) == "proc-a"
    finally:
        await sqlite.close()
        await postgres.close()


async def test_new_rows_on_postgresql_get_ids_above_the_copied_ones(
    source: None, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("migrate-db", "--to", target_url) == 0
    postgres = await open_postgres(target_url)
    try:
        job = await JobRepository(postgres).create(new_job(LATER), {"first_frame": IMAGE})
        assert job.id == 6
        settings = GuildSettingsRepository(postgres)
        before = [entry.id for entry in await settings.audit(GUILD, 100)]
        await settings.set_limits(GUILD, MOD, LATER, guild_daily=3)
        # The counter goes on from the copied changes: another process sees this one.
        assert await settings.catch_up() >= 0
        newest = (await settings.audit(GUILD, 1))[0]
        assert newest.id > max(before) and newest.detail == "guild_daily=3"
        form = PendingFile(0, GUILD, 30, 20, 124, None, "https://cdn/y", "y", None, 1, LATER)
        assert await PendingForms(postgres).put(form) == 2
    finally:
        await postgres.close()


async def test_a_target_with_jobs_or_settings_is_refused_and_left_alone(
    source: None, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("migrate-db", "--to", target_url) == 0
    capsys.readouterr()
    before = await counts(target_url)

    assert await cli("migrate-db", "--to", target_url) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "is not empty: " in err and "jobs (5 rows)" in err
    assert await counts(target_url) == before


async def test_settings_alone_make_a_target_used(
    source: None, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres = await open_postgres(target_url)
    try:
        await GuildSettingsRepository(postgres).set_limits(GUILD, MOD, NOW, user_daily=1)
    finally:
        await postgres.close()
    assert await cli("migrate-db", "--to", target_url) == 2
    err = capsys.readouterr().err
    assert "guild_settings (1 row)" in err and "jobs" not in err
    assert (await counts(target_url))["jobs"] == 0


async def test_a_running_bot_on_the_file_is_refused_before_postgresql_is_touched(
    source: None, database: Path, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with acquire_database_lock(database):
        assert await cli("migrate-db", "--to", target_url) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"video-bot: DATABASE_PATH {database} is in use by a running bot (pid {os.getpid()}): "
        "stop the bot first, then run migrate-db\n"
    )
    assert await tables(target_url) == []


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://bot:{PASSWORD}@db/videobot",
        f"postgresql://bot:{PASSWORD}@db:port/videobot",
        PASSWORD,
    ],
)
async def test_a_bad_url_is_refused_in_one_line_without_its_password(
    source: None, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("migrate-db", "--to", url) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("video-bot: --to must be a PostgreSQL URL")
    assert PASSWORD not in err


async def test_an_unreachable_server_is_refused_in_one_line_without_its_password(
    source: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://bot:{PASSWORD}@/videobot?host={tmp_path}/no-server-here"
    assert await cli("migrate-db", "--to", url) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("video-bot: --to postgresql://bot@/videobot cannot be used: ")
    assert PASSWORD not in err


async def test_a_missing_sqlite_file_is_refused(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("migrate-db", "--to", "postgresql://bot@db/videobot") == 2
    err = capsys.readouterr().err
    assert err == (
        f"video-bot: DATABASE_PATH {database} does not exist: there is no SQLite database to copy\n"
    )
    assert not database.exists()


async def test_a_failed_copy_is_undone_whole(
    source: None, database: Path, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # SQLite keeps text in an INTEGER column; PostgreSQL's BIGINT refuses it. The tables copied
    # before jobs (the audit log, the settings) must be rolled back with it.
    db = await open_database(database)
    try:
        await db.fetch_one("UPDATE jobs SET width = 'wide' WHERE id = 5 RETURNING id")
    finally:
        await db.close()
    assert await cli("migrate-db", "--to", target_url) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "failed and was undone, nothing written" in err
    assert set((await counts(target_url)).values()) == {0}


async def counts(url: str) -> dict[str, int]:
    """Rows per table, but the migrations' own (the settings counter's one row)."""
    connection = await asyncpg.connect(url)
    try:
        names = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename NOT IN ('schema_version', 'settings_change_counter')"
        )
        return {
            str(name): int(await connection.fetchval(f"SELECT count(*) FROM {name}"))
            for (name,) in names
        }
    finally:
        await connection.close()


async def test_a_bot_running_on_the_postgresql_database_is_refused(
    source: None, target_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    running = await open_postgres(target_url)
    try:
        await Processes(running, "a-running-bot").register(time.time())  # as a bot does at start
        assert await cli("migrate-db", "--to", target_url) == 2
    finally:
        await running.close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "it is not empty: processes (1 row)" in err
    assert (await counts(target_url))["jobs"] == 0
