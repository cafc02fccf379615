"""Storage on a real SQLite file (migrations, damage, locks) and, for the jobs repository, on
both drivers (round trips, compare-and-set transitions): see the any_db fixture."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.db import (
    BUSY_TIMEOUT_MS,
    Database,
    DatabaseUnusable,
    list_migrations,
    open_database,
)
from storage.jobs import JobRepository
from storage.models import Derivation, JobState
from tests.unit.fakes import new_job

NOW = 1_700_000_000.0


async def test_migrations_from_empty(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "bot.sqlite3"
    db = await open_database(path)
    await db.close()
    assert path.exists(), "the database folder is created"
    with sqlite3.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert version == len(list_migrations())
    assert mode == "wal"
    assert "jobs" in tables
    # Opening again applies nothing and keeps the data.
    db = await open_database(path)
    await db.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(DatabaseUnusable, match="schema version 99 is newer") as info:
        await open_database(path)
    assert info.value.path == path.resolve()


def random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(8192))


def text_file(path: Path) -> None:
    path.write_text("DISCORD_TOKEN=abc\nTOGETHER_API_KEY=def\n")


def damaged_page(path: Path) -> None:
    """A sound database with one page overwritten: its header still reads fine."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO notes (body) VALUES (?)", [("x" * 200,)] * 200)
    conn.close()
    data = bytearray(path.read_bytes())
    page_size = 4096
    data[-page_size + 8 : -page_size + 200] = b"\xff" * 192  # the last page's cell pointers
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (random_bytes, "file is not a database"),
        (text_file, "file is not a database"),
        (damaged_page, "database disk image is malformed"),
    ],
)
async def test_corrupt_file_is_refused_naming_it_in_one_line(
    tmp_path: Path, spoil: Callable[[Path], None], reason: str
) -> None:
    path = tmp_path / "bot.sqlite3"
    spoil(path)
    with pytest.raises(DatabaseUnusable) as info:
        await open_database(path)
    assert info.value.path == path.resolve()
    assert reason in info.value.reason and "backup" in info.value.reason
    assert "\n" not in str(info.value)


async def test_a_folder_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.mkdir()
    with pytest.raises(DatabaseUnusable, match="unable to open database file"):
        await open_database(path)


def connection_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


async def test_a_refused_open_leaves_no_connection_thread_behind(tmp_path: Path) -> None:
    # A thread still finishing the refused connection after the bot's loop closed printed a
    # traceback under the one-line refusal (2 starts in 5 with a folder as DATABASE_PATH).
    path = tmp_path / "bot.sqlite3"
    path.mkdir()
    before = connection_threads()
    for _ in range(20):
        with pytest.raises(DatabaseUnusable):
            await open_database(path)
        assert connection_threads() == before, "the worker thread outlived the refusal"


async def test_write_blocked_by_another_connection_gives_up_after_the_busy_timeout(
    tmp_path: Path,
) -> None:
    # Far below Discord's 3 s for a first response (and the test's own timeout).
    assert BUSY_TIMEOUT_MS <= 1000
    path = tmp_path / "bot.sqlite3"
    db = await open_database(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        assert await db.fetch_one("PRAGMA busy_timeout") == (BUSY_TIMEOUT_MS,)
        other.execute("BEGIN IMMEDIATE")  # a human's sqlite3 shell, mid-write
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            async with db.transaction() as conn:
                await conn.execute("DELETE FROM jobs")
        assert other.in_transaction, "the other writer still held its lock throughout"
        other.execute("ROLLBACK")
        async with db.transaction() as conn:  # and once it lets go, writes go through
            await conn.execute("DELETE FROM jobs")
    finally:
        other.close()
        await db.close()


async def test_broken_migration_rolls_back(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_good.sql").write_text("CREATE TABLE a (x INTEGER);")
    (migrations / "002_bad.sql").write_text("CREATE TABLE b (y INTEGER); SELECT nonsense(;")
    path = tmp_path / "bot.sqlite3"
    with pytest.raises(DatabaseUnusable, match=r"migration 002_bad\.sql failed"):
        await open_database(path, migrations)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert names == {"a"}, "the failed migration left nothing behind"


@pytest.fixture
def repo(any_db: Database) -> JobRepository:
    return JobRepository(any_db)


async def test_create_and_read_back(repo: JobRepository) -> None:
    job = await repo.create(new_job(NOW, seed=42, guidance_scale=7.5, negative_prompt="blur"))
    assert job.state is JobState.QUEUED
    again = await repo.get(job.id)
    assert again == job
    assert (
        again.params.seed == 42
        and again.params.guidance_scale == 7.5
        and again.params.negative_prompt == "blur"
    )
    assert "secret-interaction-token" not in repr(job)


async def test_transition_is_compare_and_set(repo: JobRepository) -> None:
    job = await repo.create(new_job(NOW))
    moved = await repo.transition(job.id, JobState.QUEUED, JobState.SUBMITTING, NOW + 1)
    assert moved is not None and moved.state is JobState.SUBMITTING
    # A caller that still believes the job is queued loses, and changes nothing.
    lost = await repo.transition(
        job.id, JobState.QUEUED, JobState.CANCELLED, NOW + 2, failure_reason="late"
    )
    assert lost is None
    current = await repo.get(job.id)
    assert current is not None
    assert current.state is JobState.SUBMITTING and current.failure_reason is None


async def test_concurrent_transitions_have_one_winner(repo: JobRepository) -> None:
    job = await repo.create(new_job(NOW))
    results = await asyncio.gather(
        *(
            repo.transition(job.id, JobState.QUEUED, target, NOW + 1)
            for target in (JobState.SUBMITTING, JobState.CANCELLED) * 10
        )
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1


async def test_transition_sets_fields_together(repo: JobRepository) -> None:
    job = await repo.create(new_job(NOW))
    await repo.transition(job.id, JobState.QUEUED, JobState.SUBMITTING, NOW)
    running = await repo.transition(
        job.id,
        JobState.SUBMITTING,
        JobState.RUNNING,
        NOW + 3,
        together_id="vid_1",
        provider_status="queued",
        submitted_at=NOW + 3,
    )
    assert running is not None
    assert (running.together_id, running.provider_status, running.updated_at) == (
        "vid_1",
        "queued",
        NOW + 3,
    )


async def test_only_mutable_columns_can_be_set(repo: JobRepository) -> None:
    job = await repo.create(new_job(NOW))
    with pytest.raises(ValueError, match="prompt"):
        await repo.update(job.id, JobState.QUEUED, NOW, prompt="changed")


async def test_states_and_member_history(repo: JobRepository) -> None:
    first = await repo.create(new_job(NOW))
    second = await repo.create(new_job(NOW + 1, user_id=99))
    await repo.transition(first.id, JobState.QUEUED, JobState.CANCELLED, NOW)
    assert [j.id for j in await repo.in_states([JobState.QUEUED])] == [second.id]
    assert [j.id for j in await repo.recent_for_member(10, 30)] == [first.id]


async def test_keyframes_of_jobs_ended_before_the_cutoff_are_pruned(repo: JobRepository) -> None:
    image = {"first_frame": b"jpeg", "last_frame": b"jpeg2"}
    old = await repo.create(new_job(NOW), image)
    await repo.transition(old.id, JobState.QUEUED, JobState.FAILED, NOW + 10)
    recent = await repo.create(new_job(NOW), image)
    await repo.transition(recent.id, JobState.QUEUED, JobState.CANCELLED, NOW + 500)
    waiting = await repo.create(new_job(NOW), image)  # unfinished: still needs its images
    plain = await repo.create(new_job(NOW))  # no images: nothing to mark
    await repo.transition(plain.id, JobState.QUEUED, JobState.CANCELLED, NOW + 10)

    assert await repo.prune_media(before=NOW + 100, now=NOW + 1000, batch=1) == 1
    assert await repo.media(old.id) == {}
    assert await repo.media(recent.id) == image
    assert await repo.media(waiting.id) == image
    marked = {job.id: job.media_pruned_at for job in await repo.in_states(list(JobState))}
    assert marked == {old.id: NOW + 1000, recent.id: None, waiting.id: None, plain.id: None}
    assert await repo.prune_media(before=NOW + 100, now=NOW + 2000) == 0, "done once"


async def test_member_pages_are_anchored_on_ids(repo: JobRepository) -> None:
    mine = [(await repo.create(new_job(NOW + n))).id for n in range(5)]
    await repo.create(new_job(NOW, user_id=99))  # another member's
    await repo.create(new_job(NOW, guild_id=11))  # mine, on another server

    first = await repo.member_page(10, 30, None, 2)
    assert [j.id for j in first] == [mine[4], mine[3], mine[2]], "limit + 1, newest first"
    older = await repo.member_page(10, 30, mine[3], 2)
    assert [j.id for j in older] == [mine[2], mine[1], mine[0]]
    assert [j.id for j in await repo.member_page(10, 30, mine[1], 2)] == [mine[0]]
    assert await repo.member_page(10, 30, mine[0], 2) == []

    # A new job does not move a page anchored below it.
    await repo.create(new_job(NOW + 9))
    assert [j.id for j in await repo.member_page(10, 30, mine[3], 2)] == [mine[2], mine[1], mine[0]]

    newer = await repo.member_page_newer(10, 30, mine[0], 2)
    assert [j.id for j in newer] == [mine[1], mine[2], mine[3]], "limit + 1, nearest first"
    assert await repo.member_page_newer(10, 30, 10_000, 2) == []

    assert await repo.member_count(10, 30) == 6
    assert await repo.member_count(10, 30, after_id=mine[2]) == 3
    assert await repo.member_count(10, 99) == 1
    assert await repo.member_count(12, 30) == 0


async def test_chain_size_counts_parts_not_joins_or_repeats(repo: JobRepository) -> None:
    start = await repo.create(new_job(NOW))  # a plain /video: no chain_id of its own
    assert await repo.chain_size(start.id) == 1
    part2 = await repo.create(
        new_job(
            NOW, parent_id=start.id, derivation=Derivation.EXTEND, chain_id=start.id, chain_part=2
        )
    )
    await repo.create(
        new_job(
            NOW, parent_id=part2.id, derivation=Derivation.EXTEND, chain_id=start.id, chain_part=3
        )
    )
    assert await repo.chain_size(start.id) == 3
    # A second try at part 3 and the join of the chain are not parts of their own.
    await repo.create(
        new_job(
            NOW, parent_id=part2.id, derivation=Derivation.RETRY, chain_id=start.id, chain_part=3
        )
    )
    await repo.create(
        new_job(NOW, parent_id=start.id, derivation=Derivation.JOIN, chain_id=start.id)
    )
    assert await repo.chain_size(start.id) == 3
    assert await repo.chain_size(9_999) == 0


async def test_pending_forms_keep_a_pick_until_forgotten_and_drop_stale_ones(
    any_db: Database,
) -> None:
    from storage.forms import PendingForms
    from storage.models import PendingFile

    forms = PendingForms(any_db)
    pick = PendingFile(0, 1, 2, 3, 4, 5, "https://cdn/x.png", "x.png", "image/png", 10, 1000.0)
    first = await forms.put(pick)
    kept = await forms.get(first)
    assert kept is not None and kept.url == "https://cdn/x.png" and kept.id == first
    later = await forms.put(dataclasses.replace(pick, created_at=1000.0 + 86_401))
    assert await forms.get(first) is None, "a day-old form is dropped"
    await forms.forget(later)
    assert await forms.get(later) is None


async def test_recent_failures_are_the_servers_latest_failed_and_timed_out(
    repo: JobRepository,
) -> None:
    day = 86400.0

    async def ended(state: JobState, at: float, **overrides: object) -> int:
        job = await repo.create(new_job(at - 60, **overrides))
        await repo.transition(
            job.id, JobState.QUEUED, state, at, finished_at=at, failure_reason=f"{state} at {at}"
        )
        return job.id

    old = await ended(JobState.FAILED, NOW - 8 * day)  # before the window
    timed_out = await ended(JobState.TIMED_OUT, NOW - 2 * day)
    failed = [await ended(JobState.FAILED, NOW - day + i) for i in range(5)]
    await ended(JobState.FAILED, NOW, guild_id=77)  # another server
    await ended(JobState.CANCELLED, NOW)  # not a failure
    await ended(JobState.DELIVERED, NOW)

    since = NOW - 7 * day
    latest = await repo.recent_failures(10, since)
    assert [j.id for j in latest] == failed[::-1], "latest end first, five at most"
    assert [j.id for j in await repo.recent_failures(10, since, limit=10)] == [
        *failed[::-1],
        timed_out,
    ]
    assert old not in [j.id for j in await repo.recent_failures(10, since, limit=50)]
    assert latest[0].failure_reason == f"failed at {NOW - day + 4}"
    assert await repo.recent_failures(12345, since) == []


async def test_unfinished_counts_are_by_state_of_every_server_or_one(repo: JobRepository) -> None:
    empty = {
        JobState.QUEUED: 0,
        JobState.SUBMITTING: 0,
        JobState.RUNNING: 0,
        JobState.DELIVERING: 0,
    }
    assert await repo.unfinished_counts() == empty
    assert list(await repo.unfinished_counts()) == list(empty), "in life order"
    for guild_id, state in [(10, JobState.QUEUED), (10, JobState.QUEUED), (77, JobState.QUEUED)]:
        job = await repo.create(new_job(NOW, guild_id=guild_id))
        assert job.state is state
    running = await repo.create(new_job(NOW, guild_id=77))
    await repo.transition(running.id, JobState.QUEUED, JobState.RUNNING, NOW)
    done = await repo.create(new_job(NOW, guild_id=10))
    await repo.transition(done.id, JobState.QUEUED, JobState.FAILED, NOW)
    assert await repo.unfinished_counts() == {**empty, JobState.QUEUED: 3, JobState.RUNNING: 1}
    assert await repo.unfinished_counts(10) == {**empty, JobState.QUEUED: 2}
    assert await repo.unfinished_counts(77) == {**empty, JobState.QUEUED: 1, JobState.RUNNING: 1}
    assert await repo.unfinished_counts(12345) == empty
