"""The database lock: one holder at a time, released on release() or by the OS on exit."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from storage.db import DatabaseUnusable
from storage.lock import DatabaseInUse, acquire_database_lock, lock_path_for

ROOT = Path(__file__).resolve().parents[2]


def test_second_acquire_in_the_same_process_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "data" / "bot.sqlite3"
    with acquire_database_lock(database) as lock:
        assert lock.held
        with pytest.raises(DatabaseInUse) as info:
            acquire_database_lock(database)
    assert info.value.database_path == database.resolve()
    assert info.value.holder_pid == os.getpid()
    assert str(database.resolve()) in str(info.value)
    assert not lock.held


def test_released_lock_can_be_taken_again(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    lock = acquire_database_lock(database)
    lock.release()
    lock.release()  # twice is harmless
    with acquire_database_lock(database):
        pass


def test_lock_file_sits_beside_the_database_private_with_the_pid(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    with acquire_database_lock(database) as lock:
        assert lock.lock_path == tmp_path / "bot.sqlite3.lock" == lock_path_for(database)
        assert stat.S_IMODE(lock.lock_path.stat().st_mode) == 0o600
        assert lock.lock_path.read_text().strip() == str(os.getpid())
    assert lock.lock_path.read_text() == "", "no stale pid once released"


def test_another_path_to_the_same_file_is_the_same_lock(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    with (
        acquire_database_lock(tmp_path / "data" / "bot.sqlite3"),
        pytest.raises(DatabaseInUse),
    ):
        acquire_database_lock(tmp_path / "alias" / "bot.sqlite3")


def test_a_lock_held_by_another_process_is_refused_and_freed_when_it_dies(
    tmp_path: Path,
) -> None:
    database = tmp_path / "bot.sqlite3"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from storage.lock import acquire_database_lock;"
            f"lock = acquire_database_lock(Path({str(database)!r})); print('held', flush=True);"
            "sys.stdin.read()",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DatabaseInUse) as info:
            acquire_database_lock(database)
        assert info.value.holder_pid == holder.pid
        holder.kill()  # SIGKILL: no release(), no clean-up; the OS drops the lock
        holder.wait()
        with acquire_database_lock(database) as lock:
            assert lock.held
    finally:
        holder.kill()
        holder.wait()


def test_a_folder_that_cannot_hold_the_lock_file_is_unusable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DatabaseUnusable, match="lock file"):
        acquire_database_lock(blocker / "bot.sqlite3")
