"""`video-bot backup PATH` on a real SQLite file with jobs: the copy, its check, the refusals."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.backup import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, run_backup
from storage.backup import backup_database
from storage.db import Database, open_database
from storage.jobs import JobRepository
from storage.lock import acquire_database_lock, find_lock_holder
from tests.unit.fakes import new_job

NOW = 1_800_000_000.0


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A bot's database, open (WAL) and locked as a running bot has it, with three jobs."""
    path = tmp_path / "data" / "bot.sqlite3"
    with acquire_database_lock(path):
        db = await open_database(path)
        jobs = JobRepository(db)
        for prompt in ("a fox", "an owl", "a heron"):
            await jobs.create(new_job(NOW, prompt=prompt))
        try:
            yield db
        finally:
            await db.close()


def rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT id, state, prompt FROM jobs ORDER BY id").fetchall()


async def test_the_copy_has_the_jobs_and_is_one_checked_file(
    database: Database, tmp_path: Path
) -> None:
    target = tmp_path / "backup.sqlite3"
    outcome = run_backup(database.path, target)

    assert outcome.code == EXIT_OK
    size = target.stat().st_size
    assert outcome.line == (
        f"Backed up {database.path} to {target}: {size // 1024} KiB, 3 jobs, quick_check ok"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.sqlite3", "data"], (
        "no temporary file, no -wal or -journal beside the copy"
    )
    assert rows(target) == rows(database.path)
    assert [prompt for _, _, prompt in rows(target)] == ["a fox", "an owl", "a heron"]
    assert find_lock_holder(database.path) is not None, "the bot's lock was left alone"

    # The copy is a database the bot opens as its own.
    copy = await open_database(target)
    try:
        job = await JobRepository(copy).get(3)
        assert job is not None and job.params.prompt == "a heron"
    finally:
        await copy.close()


async def test_an_uncommitted_write_is_not_in_the_copy(database: Database, tmp_path: Path) -> None:
    """The copy is one snapshot of the last commit, taken while another connection writes."""
    writer = sqlite3.connect(database.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE jobs SET prompt = 'half-written' WHERE id = 1")
        report = backup_database(database.path, tmp_path / "snapshot.sqlite3")
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert report.jobs == 3
    assert rows(tmp_path / "snapshot.sqlite3")[0][2] == "a fox"
    assert rows(database.path)[0][2] == "half-written"


async def test_refusals_change_nothing(database: Database, tmp_path: Path) -> None:
    existing = tmp_path / "existing.sqlite3"
    existing.write_bytes(b"keep me")
    before = sorted(p.name for p in tmp_path.iterdir())
    cases = [
        (
            existing,
            f"backup PATH {existing} already exists; choose a new file (nothing is overwritten)",
        ),
        (
            tmp_path / "missing" / "b.sqlite3",
            f"backup PATH {tmp_path / 'missing' / 'b.sqlite3'}: its folder "
            f"{tmp_path / 'missing'} does not exist",
        ),
        (database.path, f"backup PATH {database.path} is the database itself; choose a new file"),
        (
            database.path.parent / ".." / "data" / "bot.sqlite3",
            f"backup PATH {database.path.parent / '..' / 'data' / 'bot.sqlite3'} is the "
            "database itself; choose a new file",
        ),
    ]
    for target, line in cases:
        outcome = run_backup(database.path, target)
        assert (outcome.code, outcome.line) == (EXIT_REFUSED, line)
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_missing_database_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.sqlite3"
    outcome = run_backup(missing, tmp_path / "copy.sqlite3")
    assert (outcome.code, outcome.line) == (
        EXIT_REFUSED,
        f"DATABASE_PATH {missing} does not exist: there is nothing to back up",
    )
    assert not missing.exists()


def test_a_file_that_is_not_a_database_fails_and_leaves_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "bot.sqlite3"
    broken.write_bytes(b"this is not SQLite" * 100)
    target = tmp_path / "copy.sqlite3"
    outcome = run_backup(broken, target)
    assert outcome.code == EXIT_FAILED
    assert outcome.line.startswith(f"backup of {broken} failed: file is not a database")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.sqlite3"]
