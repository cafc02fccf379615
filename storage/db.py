"""Open the SQLite database and bring its schema up to date."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_NAME = re.compile(r"^(\d{3})_[\w-]+\.sql$")


Params = Iterable[Any] | Mapping[str, Any]


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

    async def close(self) -> None:
        await self.connection.close()


async def open_database(path: Path, migrations_dir: Path = MIGRATIONS_DIR) -> Database:
    """Connect (WAL, foreign keys, busy timeout) and apply pending migrations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: autocommit; transactions are explicit (Database.transaction).
    connection = await aiosqlite.connect(path, isolation_level=None)
    try:
        await connection.execute("PRAGMA journal_mode = WAL")
        await connection.execute("PRAGMA synchronous = FULL")
        await connection.execute("PRAGMA foreign_keys = ON")
        await connection.execute("PRAGMA busy_timeout = 5000")
        await _migrate(connection, migrations_dir)
    except BaseException:
        await connection.close()
        raise
    return Database(connection, path)


async def _user_version(connection: aiosqlite.Connection) -> int:
    async with connection.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _migrate(connection: aiosqlite.Connection, migrations_dir: Path) -> None:
    current = await _user_version(connection)
    migrations = list_migrations(migrations_dir)
    if current > len(migrations):
        raise RuntimeError(
            f"database schema version {current} is newer than this bot knows "
            f"({len(migrations)}): was it opened by a newer release?"
        )
    for version, path in migrations[current:]:
        script = path.read_text(encoding="utf-8")
        # One transaction per migration: the schema change and the version bump land together.
        try:
            await connection.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;"
            )
        except BaseException:
            if connection.in_transaction:
                await connection.rollback()
            raise
        log.info("Applied database migration %s", path.name)
