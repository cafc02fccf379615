"""One bot process per database: an exclusive lock on a file beside it.

Two bots on one database would both resume and poll every job, and the second one's start-up
recovery would fail the first one's in-flight submission as interrupted: a billed video that
nobody gets. So the bot takes this lock before it opens the database and holds it for its
whole life.

The lock is ``fcntl.flock`` on ``<database>.lock``:

- The operating system releases it when the process exits, however it exits: a bot killed
  with SIGKILL (or a crashed container) never blocks the next start, and no stale lock file
  needs cleaning up. The file itself stays; only the lock on it matters.
- It belongs to an open file description, not to a process: a second acquire in the same
  process opens the file again and fails too, so two bots assembled in one test process are
  refused just like two processes.
- The file is opened close-on-exec (Python's default), so child processes such as ffmpeg do
  not inherit it and cannot keep it held after the bot is gone.
- It does not work across hosts: on NFS and similar network filesystems flock is either
  local to one client or emulated. Two hosts must not share one DATABASE_PATH (SQLite's own
  locking is unreliable there too).

The holder's pid is written into the file, for humans and for the error message only.

`video-bot health` asks whether a bot holds the lock (find_lock_holder) with a shared,
non-blocking try that it drops at once. A bot starting in that instant would find the lock
busy, so acquire tries again for a few milliseconds before it calls the database in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from storage.db import DatabaseUnusable

LOCK_SUFFIX = ".lock"
_LOCK_MODE = 0o600
# A health check holds the lock for microseconds; a real holder holds it for its whole life.
_BUSY_TRIES = 5
_BUSY_WAIT = 0.01


class DatabaseInUse(Exception):
    """Another process (or another acquire in this one) holds the database's lock."""

    def __init__(self, database_path: Path, holder_pid: int | None) -> None:
        holder = f"pid {holder_pid}" if holder_pid is not None else "pid unknown"
        super().__init__(f"{database_path} is in use by another bot process ({holder})")
        self.database_path = database_path
        self.holder_pid = holder_pid


class DatabaseLock:
    """A held lock; release() it (or leave the `with` block) when the database is closed."""

    def __init__(self, database_path: Path, lock_path: Path, fd: int) -> None:
        self.database_path = database_path
        self.lock_path = lock_path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up; safe to call twice. Closing the descriptor releases the flock."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale pid for a human to chase
        os.close(fd)

    def __enter__(self) -> DatabaseLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def lock_path_for(database_path: Path) -> Path:
    return database_path.with_name(database_path.name + LOCK_SUFFIX)


def acquire_database_lock(database_path: Path) -> DatabaseLock:
    """Take the database's lock without waiting, or raise DatabaseInUse naming the path.

    Creates the database's folder if need be, as open_database would. A folder or lock file
    that cannot be created or opened raises DatabaseUnusable.
    """
    database_path = database_path.resolve()
    lock_path = lock_path_for(database_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _LOCK_MODE)
    except OSError as exc:
        reason = f"cannot open its lock file {lock_path}: {exc.strerror or exc}"
        raise DatabaseUnusable(database_path, reason) from exc
    try:
        _flock_exclusive(fd)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        raise DatabaseInUse(database_path, holder) from None
    except BaseException:
        os.close(fd)
        raise
    _write_pid(fd)
    return DatabaseLock(database_path, lock_path, fd)


def _flock_exclusive(fd: int) -> None:
    """LOCK_EX without waiting for a holder, but past a health check's momentary probe."""
    for _ in range(_BUSY_TRIES - 1):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(_BUSY_WAIT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


@dataclass(frozen=True)
class LockHolder:
    """A process holds the database's lock; its pid when the lock file names one."""

    pid: int | None


def find_lock_holder(database_path: Path) -> LockHolder | None:
    """Who holds the database's lock now, without taking it for more than an instant.

    None when nobody does: the shared, non-blocking try succeeded (it is released at once;
    shared, so two health checks at the same moment do not see each other as a bot). Creates
    nothing. Raises OSError when the lock file exists but cannot be opened.
    """
    lock_path = lock_path_for(database_path.resolve())
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return LockHolder(_read_pid(fd))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _read_pid(fd: int) -> int | None:
    """The holder's pid, or None if it is not written yet (or the file was edited)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
