"""`video-bot backup PATH`: the target checked, the copy made (storage.backup), one line said.

Safe while the bot runs: the copy is a snapshot taken through SQLite's online backup API
from a read-only connection, and the bot's process lock is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.backup import BackupFailed, backup_database

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2


@dataclass(frozen=True)
class BackupOutcome:
    code: int
    line: str


def refusal(database: Path, target: Path) -> str | None:
    """Why this backup must not start (one line), or None."""
    if target.resolve() == database.resolve():
        return f"backup PATH {target} is the database itself; choose a new file"
    if not database.is_file():
        return f"DATABASE_PATH {database} does not exist: there is nothing to back up"
    if target.exists() or target.is_symlink():
        return f"backup PATH {target} already exists; choose a new file (nothing is overwritten)"
    if not target.parent.is_dir():
        return f"backup PATH {target}: its folder {target.parent} does not exist"
    return None


def run_backup(database: Path, target: Path) -> BackupOutcome:
    database, target = database.absolute(), target.absolute()
    refused = refusal(database, target)
    if refused is not None:
        return BackupOutcome(EXIT_REFUSED, refused)
    try:
        report = backup_database(database, target)
    except BackupFailed as exc:
        return BackupOutcome(EXIT_FAILED, f"backup of {database} failed: {exc}")
    jobs = f"{report.jobs} job" + ("" if report.jobs == 1 else "s")
    return BackupOutcome(
        EXIT_OK,
        f"Backed up {database} to {report.path}: {_size(report.size)}, {jobs}, quick_check ok",
    )


def _size(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"
