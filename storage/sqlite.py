"""The SQLite driver (aiosqlite): open the file, check it, bring its schema up to date.

One connection in autocommit mode shared behind an asyncio lock; WAL, synchronous=FULL,
BEGIN IMMEDIATE transactions, PRAGMA quick_check at open, the schema version in
PRAGMA user_version. One bot process per file is held by storage.lock (a flock beside it).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import aiosqlite

from storage.driver import (
    Connection,
    Database,
    DatabaseUnusable,
    Params,
    Row,
    list_migrations,
    newer_schema,
)

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# How long a statement waits for another connection's lock before "database is locked".
# A first response to an interaction must reach Discord within 3 s, and the wait happens while
# holding Database's lock, so every other coroutine waits behind it. With one bot per database
# (storage.lock) no other bot writes; the only waits are for a human's sqlite3 shell or a
# backup, and failing one command beats missing every deadline behind it.
BUSY_TIMEOUT_MS = 1000
# A refused connection's worker thread stops at once; this only bounds a stuck one.
THREAD_STOP_TIMEOUT = 5.0


class SQLiteConnection(Connection):
    """The shared aiosqlite connection, as lent by SQLiteDatabase (its lock held)."""

    dialect = "sqlite"

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        # One trip to SQLite's thread (a cursor's execute, fetch and close are three): under
        # a burst of commands the trips, not the queries, are what everyone waits for.
        return [tuple(row) for row in await self._connection.execute_fetchall(sql, params)]

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._connection.execute_fetchall(sql, params)
        return next((tuple(row) for row in rows), None)

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = await self._connection.execute(sql, params)
        try:
            return max(cursor.rowcount, 0)
        finally:
            await cursor.close()

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        await self._connection.executemany(sql, rows)

    async def serialize(self, scope: str, key: int) -> None:
        # BEGIN IMMEDIATE already holds the database's write lock for the whole transaction.
        if not self._connection.in_transaction:
            raise RuntimeError("serialize() needs a transaction")


class SQLiteDatabase(Database):
    """One aiosqlite connection shared by the repositories.

    Every access takes the lock: the connection is shared between coroutines, and a statement
    from one must never land inside another's open transaction.
    """

    dialect = "sqlite"

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path
        self._wrapped = SQLiteConnection(connection)
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def access(self) -> AsyncIterator[Connection]:
        async with self._lock:
            yield self._wrapped

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._lock:
            await self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._wrapped
            except BaseException:
                await self.connection.rollback()
                raise
            await self.connection.commit()

    def snapshot(self) -> AbstractAsyncContextManager[Connection]:
        # BEGIN IMMEDIATE, as before the PostgreSQL driver: the same consistency, one path.
        return self.transaction()

    async def ping(self) -> None:
        # Reads the schema from the file: "SELECT 1" would not touch the database at all.
        await self.fetch_one("SELECT count(*) FROM sqlite_master")

    async def close(self) -> None:
        await self.connection.close()


async def open_sqlite(path: Path, migrations_dir: Path = MIGRATIONS_DIR) -> SQLiteDatabase:
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
    return SQLiteDatabase(connection, path)


async def _connect(path: Path) -> aiosqlite.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnusable(path, f"cannot create its folder: {exc.strerror or exc}") from exc
    # isolation_level=None: autocommit; transactions are explicit (Database.transaction).
    connection = aiosqlite.connect(path, isolation_level=None)
    try:
        return await connection
    except sqlite3.Error as exc:
        await _worker_ended(connection)
        raise DatabaseUnusable(path, _describe(exc)) from exc


async def _worker_ended(connection: aiosqlite.Connection) -> None:
    """Wait for a refused connection's worker thread to finish stopping.

    aiosqlite stops it without waiting; left running, it answered the bot's event loop after
    that had closed, printing a traceback under the one-line refusal. `_thread` is private
    (aiosqlite 0.20 and later, pinned in requirements/bot.lock): without it, nothing is waited.
    """
    thread = getattr(connection, "_thread", None)
    if isinstance(thread, threading.Thread) and thread.is_alive():
        await asyncio.to_thread(thread.join, THREAD_STOP_TIMEOUT)


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
        raise newer_schema(path, current, len(migrations))
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
