"""A consistent copy of the database while a bot uses it: SQLite's online backup API.

The source is opened read-only and copied in one step, inside one read transaction: with WAL
that is a snapshot of the last commit, and the bot's writers are never blocked by it (nor is
the bot's process lock touched: a backup is not a second bot). The copy is written to a
temporary file beside the target, switched to a single file (no -wal beside it), checked with
`PRAGMA quick_check`, made durable, and only then renamed into place, so the target is either
absent or a whole, checked copy.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


class BackupFailed(Exception):
    """The copy could not be made or did not pass its check; nothing was left at the target."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    jobs: int


def backup_database(source: Path, target: Path) -> BackupReport:
    """Copy `source` to `target` (which must not exist yet); raises BackupFailed with why."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _copy(source, temporary)
        jobs = _check(temporary)
        _fsync(temporary)
        os.replace(temporary, target)
        _fsync(target.parent)
    except (sqlite3.Error, OSError) as exc:
        raise BackupFailed(" ".join(str(exc).split()) or type(exc).__name__) from exc
    finally:
        for leftover in (temporary, *_sidecars(temporary)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return BackupReport(target, target.stat().st_size, jobs)


def _copy(source: Path, destination: Path) -> None:
    # mode=ro: never a write to the bot's file; a missing file is an error, not a new database.
    uri = f"file:{quote(str(source.resolve()))}?mode=ro"
    with (
        contextlib.closing(sqlite3.connect(uri, uri=True)) as src,
        contextlib.closing(sqlite3.connect(destination)) as dst,
    ):
        src.backup(dst)  # pages=-1: the whole file in one step, one snapshot
        # A single self-contained file; the bot switches it back to WAL when it opens it.
        dst.execute("PRAGMA journal_mode = DELETE")


def _check(path: Path) -> int:
    """quick_check on the copy; its number of jobs."""
    with contextlib.closing(sqlite3.connect(path)) as copy:
        verdict = copy.execute("PRAGMA quick_check(1)").fetchone()
        if verdict is None or verdict[0] != "ok":
            found = verdict[0] if verdict else "no answer"
            raise BackupFailed(f"the copy failed PRAGMA quick_check ({found})")
        has_jobs = copy.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'"
        ).fetchone()
        return int(copy.execute("SELECT count(*) FROM jobs").fetchone()[0]) if has_jobs else 0


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(path.with_name(path.name + suffix) for suffix in ("-journal", "-wal", "-shm"))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
