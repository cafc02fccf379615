"""The PostgreSQL driver (asyncpg): a pool and migrations; several bot processes share it.

Chosen by DATABASE_URL=postgresql://... (bot/settings.py). What differs from SQLite:

- Statements run side by side on the pool's connections, not one at a time; transactions are
  READ COMMITTED, so a read-decide-write serializes itself (`Connection.serialize`, an
  advisory lock) and reports read in a REPEATABLE READ snapshot (`Database.snapshot`).
- The placeholders of the shared SQL are translated to `$n` once per text (storage.placeholders);
  asyncpg prepares each translated text once per connection and keeps it.
- The schema version is the one row of `schema_version`; the migrations are
  storage/migrations/postgresql/NNN_name.sql, each in one transaction, under an advisory lock
  so two processes starting together do not both apply one.
- There is no file to quick_check and no flock: the server keeps its own data sound (WAL,
  checksums if the cluster has them). Several bot processes may use one database: each works
  only the jobs it holds by lease (storage.leases, bot/engine/leases.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from storage.driver import (
    Connection,
    Database,
    DatabaseUnavailable,
    DatabaseUnusable,
    Params,
    Row,
    list_migrations,
    newer_schema,
)
from storage.placeholders import arguments, translate

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations") / "postgresql"
URL_SCHEMES = ("postgresql", "postgres")

# Advisory lock keys are hashes of these names (hashtextextended), far from any small integer.
MIGRATION_LOCK = "video-bot:migrate"
# How long opening may wait for the server before the start fails with one line.
CONNECT_TIMEOUT = 10.0
POOL_MAX_SIZE = 10
CLOSE_TIMEOUT = 10.0

# What a server that is down, restarting or full, or a connection cut, raises: from connecting
# (OSError, TimeoutError) or from a statement (class 08 connection errors, a shutdown's 57P0x,
# too many connections). Statement errors (constraints, syntax) are not among them.
CONNECTION_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    one      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    version  INTEGER NOT NULL
)
"""
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


def redact(url: str) -> str:
    """The URL without its password (and without a query string that might carry one)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class PostgresConnection(Connection):
    """A pool connection lent by PostgresDatabase for one access() or transaction()."""

    dialect = "postgresql"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        text, values = arguments(sql, params)
        return [tuple(record) for record in await self._connection.fetch(text, *values)]

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        text, values = arguments(sql, params)
        record = await self._connection.fetchrow(text, *values)
        return tuple(record) if record is not None else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        text, values = arguments(sql, params)
        status = await self._connection.execute(text, *values)
        # The command tag: "INSERT 0 1", "UPDATE 3", "DELETE 0", "CREATE TABLE" ...
        last = str(status).rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        translated = translate(sql)
        batch = [translated.arguments(params) for params in rows]
        if batch:
            await self._connection.executemany(translated.sql, batch)

    async def serialize(self, scope: str, key: int) -> None:
        if not self._connection.is_in_transaction():
            raise RuntimeError("serialize() needs a transaction")
        await self._connection.execute(_LOCK, f"{scope}:{key}")


class PostgresDatabase(Database):
    """An asyncpg pool; each access() or transaction() borrows one of its connections."""

    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self.pool = pool
        self.target = redact(url)  # for messages
        self.url = url  # with its password: never log it

    @asynccontextmanager
    async def access(self) -> AsyncIterator[Connection]:
        async with self._reachable(), self.pool.acquire() as connection:
            yield PostgresConnection(connection)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with (
            self._reachable(),
            self.pool.acquire() as connection,
            connection.transaction(),
        ):
            yield PostgresConnection(connection)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Connection]:
        async with (
            self._reachable(),
            self.pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield PostgresConnection(connection)

    @asynccontextmanager
    async def _reachable(self) -> AsyncIterator[None]:
        """A server down or restarting, or a connection cut, as DatabaseUnavailable: callers
        retry those, and log one line rather than the driver's traceback."""
        try:
            yield
        except CONNECTION_FAILURES as exc:
            raise DatabaseUnavailable(self.target, _describe(exc)) from exc

    async def close(self) -> None:
        try:
            # Graceful (each connection's work finishes), but bounded: a connection stuck on a
            # dead server must not hold the bot's exit.
            await asyncio.wait_for(self.pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            self.pool.terminate()


async def open_postgres(
    url: str, migrations_dir: Path = MIGRATIONS_DIR, *, max_size: int = POOL_MAX_SIZE
) -> PostgresDatabase:
    """Connect a pool and apply pending migrations.

    Several bot processes may open the same database: each works the jobs it holds by lease
    (storage.leases). Raises DatabaseUnusable, naming the URL without its password and why,
    when the server cannot be reached or refuses the login, or its schema is newer than this
    release knows.
    """
    target = redact(url)
    refused = (TimeoutError, OSError, asyncpg.PostgresError, ValueError)  # URL, server, login
    try:
        # min_size=0: with a floor, the pool reconnects on its own during an outage and logs a
        # traceback per try; without one, connections are made when asked for, and the bot's
        # own retries say what happened in one line each (bot/outages.py). The bot asks every
        # few seconds, so its connections never sit idle long enough to be closed.
        pool = await asyncpg.create_pool(
            url, min_size=0, max_size=max_size, timeout=CONNECT_TIMEOUT
        )
    except refused as exc:
        raise DatabaseUnusable(target, _describe(exc)) from exc
    assert pool is not None
    try:
        try:
            # The first connection is made here (no floor): the server and the login are
            # checked now, at start, not at the first command.
            connection = await pool.acquire()
        except refused as exc:
            raise DatabaseUnusable(target, _describe(exc)) from exc
        try:
            await _migrate(connection, migrations_dir, target)
        finally:
            await pool.release(connection)
    except BaseException:
        await pool.close()
        raise
    return PostgresDatabase(pool, url)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer from the server within {CONNECT_TIMEOUT:.0f} s"
    if isinstance(exc, OSError):
        return f"cannot connect: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


async def _version(connection: asyncpg.Connection) -> int:
    value = await connection.fetchval("SELECT version FROM schema_version")
    return int(cast(Any, value)) if value is not None else 0


async def _migrate(connection: asyncpg.Connection, migrations_dir: Path, target: str) -> None:
    migrations = list_migrations(migrations_dir)
    async with connection.transaction():
        await connection.execute(_LOCK, MIGRATION_LOCK)
        await connection.execute(_VERSION_TABLE)
        current = await _version(connection)
    if current > len(migrations):
        raise newer_schema(target, current, len(migrations))
    for version, script_path in migrations[current:]:
        # One transaction per migration, under the migration lock; the version is read again
        # inside it, so a migration another process applied meanwhile is not applied twice.
        async with connection.transaction():
            await connection.execute(_LOCK, MIGRATION_LOCK)
            if await _version(connection) >= version:
                continue
            try:
                await connection.execute(script_path.read_text(encoding="utf-8"))
            except asyncpg.PostgresError as exc:
                reason = f"migration postgresql/{script_path.name} failed: {exc}"
                raise DatabaseUnusable(target, reason) from exc
            await connection.execute(
                "INSERT INTO schema_version (one, version) VALUES (TRUE, $1) "
                "ON CONFLICT (one) DO UPDATE SET version = excluded.version",
                version,
            )
        log.info("Applied database migration postgresql/%s", script_path.name)
