"""The database lock: one holder at a time, released on release() or by the OS on exit."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from storage.db import DatabaseUnusable
from storage.lock import (
    DatabaseInUse,
    LockHolder,
    acquire_database_lock,
    find_lock_holder,
    lock_path_for,
)

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


# -- find_lock_holder: what `video-bot health` asks ------------------------------------------------


def test_find_lock_holder_names_the_holder_and_takes_nothing(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    assert find_lock_holder(database) is None
    assert not lock_path_for(database).exists(), "asking creates no file"
    with acquire_database_lock(database):
        assert find_lock_holder(database) == LockHolder(os.getpid())
        assert find_lock_holder(database) == LockHolder(os.getpid())
    assert find_lock_holder(database) is None
    with acquire_database_lock(database) as lock:  # the probe left the lock free
        assert lock.held


def test_a_health_probe_at_the_moment_a_bot_starts_does_not_refuse_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe's shared flock lasts an instant; acquire waits that out instead of failing."""
    database = tmp_path / "bot.sqlite3"
    acquire_database_lock(database).release()  # the lock file exists, as after a first run
    probe = os.open(lock_path_for(database), os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # what find_lock_holder does
    waits: list[float] = []

    def probe_ends(seconds: float) -> None:  # the probe is over by acquire's first wait
        waits.append(seconds)
        os.close(probe)

    monkeypatch.setattr("storage.lock.time.sleep", probe_ends)
    with acquire_database_lock(database) as lock:
        assert lock.held
    assert len(waits) == 1


def test_a_real_holder_is_still_refused_after_the_short_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "bot.sqlite3"
    waits: list[float] = []
    monkeypatch.setattr("storage.lock.time.sleep", waits.append)
    with acquire_database_lock(database), pytest.raises(DatabaseInUse):
        acquire_database_lock(database)
    assert 0 < sum(waits) <= 0.1, "a second bot is refused at once, not after a long wait"
