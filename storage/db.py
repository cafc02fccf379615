"""Open the SQLite database and bring its schema up to date."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_NAME = re.compile(r"^(\d{3})_[\w-]+\.sql$")


Params = Iterable[Any] | Mapping[str, Any]

# How long a statement waits for another connection's lock before "database is locked".
# A first response to an interaction must reach Discord within 3 s, and the wait happens while
# holding Database's lock, so every other coroutine waits behind it. With one bot per database
# (storage.lock) no other bot writes; the only waits are for a human's sqlite3 shell or a
# backup, and failing one command beats missing every deadline behind it.
BUSY_TIMEOUT_MS = 1000


class DatabaseUnusable(Exception):
    """The database file cannot be used: unreadable, damaged, or from a newer release.

    ``path`` is absolute and ``reason`` is one line, so main() can print them as one line.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path.resolve()
        self.reason = " ".join(reason.split())  # SQLite's reports can span lines
        super().__init__(f"{self.path}: {self.reason}")


async def fetch_all(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> list[Any]:
    """Every row, in one trip to SQLite's thread (a cursor's execute, fetch and close are three).

    Under a burst of commands the trips, not the queries, are what everyone waits for.
    """
    return list(await conn.execute_fetchall(sql, params))


async def fetch_one(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> Any:
    """The first row, or None; one trip to SQLite's thread."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


def list_migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """Migration files as (version, path), in order; versions must run 1, 2, 3 ... with no gap."""
    found = []
    for path in directory.iterdir():
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    found.sort()
    for expected, (version, path) in enumerate(found, start=1):
        if version != expected:
            raise RuntimeError(
                f"migration {path.name} is out of sequence (expected {expected:03d})"
            )
    return found


class Database:
    """One aiosqlite connection shared by the repositories.

    Every access takes the lock: the connection is shared between coroutines, and a statement
    from one must never land inside another's open transaction.
    """

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def access(self) -> AsyncIterator[aiosqlite.Connection]:
        """Exclusive use of the connection for single statements in autocommit mode."""
        async with self._lock:
            yield self.connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        async with self._lock:
            await self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                await self.connection.rollback()
                raise
            await self.connection.commit()

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Any]:
        async with self.access() as conn:
            return await fetch_all(conn, sql, params)

    async def fetch_one(self, sql: str, params: Params = ()) -> Any:
        async with self.access() as conn:
            return await fetch_one(conn, sql, params)

    async def ping(self) -> None:
        """A cheap read through the shared connection: proof that the database answers."""
        await self.fetch_one("SELECT count(*) FROM sqlite_master")

    async def close(self) -> None:
        await self.connection.close()


async def open_database(path: Path, migrations_dir: Path = MIGRATIONS_DIR) -> Database:
    """Connect (WAL, foreign keys, busy timeout), check the file, apply pending migrations.

    Raises DatabaseUnusable, naming the file and why, if it cannot be opened, is not a sound
    SQLite database, or has a schema this bot cannot bring up to date.
    """
    connection = await _connect(path)
    try:
        try:
            await _configure(connection)
            await _check_integrity(connection)
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnusable(path, _describe(exc)) from exc
        await _migrate(connection, migrations_dir, path)
    except BaseException:
        await connection.close()
        raise
    return Database(connection, path)


async def _connect(path: Path) -> aiosqlite.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; transactions are explicit (Database.transaction).
        return await aiosqlite.connect(path, isolation_level=None)
    except OSError as exc:
        raise DatabaseUnusable(path, f"cannot create its folder: {exc.strerror or exc}") from exc
    except sqlite3.Error as exc:
        raise DatabaseUnusable(path, _describe(exc)) from exc


async def _configure(connection: aiosqlite.Connection) -> None:
    # The busy timeout first, so that the statements after it wait (briefly) for a lock too.
    await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await connection.execute("PRAGMA journal_mode = WAL")
    await connection.execute("PRAGMA synchronous = FULL")
    await connection.execute("PRAGMA foreign_keys = ON")


async def _check_integrity(connection: aiosqlite.Connection) -> None:
    """PRAGMA quick_check: a damaged file is refused at start, before resume touches its jobs.

    It reads every page once: about half a second for 130,000 jobs (50 MB) on a shared 2-core
    machine, once per start, before the gateway connects, so no interaction waits on it.
    """
    rows = await connection.execute_fetchall("PRAGMA quick_check(1)")
    verdict = str(next(iter(rows))[0]) if rows else "no answer"
    if verdict != "ok":
        raise sqlite3.DatabaseError(f"database disk image is malformed ({verdict})")


def _describe(exc: sqlite3.Error) -> str:
    """SQLite's reason, with what to do about a damaged file."""
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc)  # locked, unreadable, no space ...: the reason says it
    return f"{exc}; restore it from a backup, or move it away to start with an empty database"


async def _user_version(connection: aiosqlite.Connection) -> int:
    async with connection.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _migrate(connection: aiosqlite.Connection, migrations_dir: Path, path: Path) -> None:
    current = await _user_version(connection)
    migrations = list_migrations(migrations_dir)
    if current > len(migrations):
        raise DatabaseUnusable(
            path,
            f"its schema version {current} is newer than this bot knows ({len(migrations)}): "
            "it was opened by a newer release; run that release, or restore a backup",
        )
    for version, script_path in migrations[current:]:
        script = script_path.read_text(encoding="utf-8")
        # One transaction per migration: the schema change and the version bump land together.
        try:
            await connection.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;"
            )
        except BaseException as exc:
            if connection.in_transaction:
                await connection.rollback()
            if isinstance(exc, sqlite3.Error):
                reason = f"migration {script_path.name} failed: {exc}"
                raise DatabaseUnusable(path, reason) from exc
            raise
        log.info("Applied database migration %s", script_path.name)
