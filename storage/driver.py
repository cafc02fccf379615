"""The storage boundary: what a database driver offers the repositories, and nothing more.

Two drivers implement it: storage.sqlite (aiosqlite, one connection, the default) and
storage.postgres (asyncpg, a pool; DATABASE_URL=postgresql://...). The repositories (jobs,
usage, reservations, server_settings, forms) speak only to `Database` and `Connection`, and
never import a client library, so one SQL text serves both drivers wherever the dialects agree.

SQL is written with SQLite's placeholders: `?` (positional parameters, a sequence) or
`:name` (named parameters, a mapping), never both in one statement. The PostgreSQL driver
translates them to `$1, $2 ...`. Where PostgreSQL cannot infer a parameter's type from its
context (`:x IS NULL`, `:a <= :b`, a parameter alone in a select list) the SQL casts it
explicitly: `CAST(:x AS BIGINT)`, which SQLite reads the same way. Where the dialects cannot
agree on one text, the repository keeps a second text next to the first and picks it by
`Database.dialect`.

Rows are plain tuples in the order of the select list; integers, floats, text, bytes and None
come back as the same Python types from either driver.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal

Params = Sequence[Any] | Mapping[str, Any]
Row = tuple[Any, ...]
Dialect = Literal["sqlite", "postgresql"]

_MIGRATION_NAME = re.compile(r"^(\d{3})_[\w-]+\.sql$")


class DatabaseUnusable(Exception):
    """The database cannot be used: unreachable, unreadable, damaged, or from a newer release.

    ``target`` is the SQLite file (an absolute Path) or the PostgreSQL URL without its password
    (a str); ``setting`` names the setting that chose it; ``reason`` is one line, so main()
    can print all of it as one line.
    """

    def __init__(self, target: Path | str, reason: str) -> None:
        self.target: Path | str = target.resolve() if isinstance(target, Path) else target
        self.reason = " ".join(reason.split())  # the servers' reports can span lines
        super().__init__(f"{self.target}: {self.reason}")

    @property
    def setting(self) -> str:
        return "DATABASE_PATH" if isinstance(self.target, Path) else "DATABASE_URL"

    @property
    def path(self) -> Path:
        """The SQLite file; only for a SQLite database (tests and the lock use it)."""
        if not isinstance(self.target, Path):
            raise AttributeError("a PostgreSQL database has no path")
        return self.target


class DatabaseUnavailable(Exception):
    """The database cannot be reached just now: the server is down or restarting, or the
    connection was cut. Raised by `Database.access()`, `transaction()` and `snapshot()` (a
    transaction cut off is rolled back by the server). The same call may work later, so
    callers retry; nothing about the statement itself was refused.

    ``target`` is the URL without its password; ``reason`` one line.
    """

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = " ".join(reason.split())
        super().__init__(f"database {target} unreachable: {self.reason}")


class Connection(abc.ABC):
    """One connection, held by its caller for the length of `Database.access()` or
    `Database.transaction()`; never kept past it, never shared with another coroutine.

    Every method runs one statement and waits for its answer. An error from the database
    (constraint, syntax, lock timeout) is raised as the driver's own exception type; inside a
    transaction it ends the transaction, which `Database.transaction()` rolls back.
    """

    dialect: Dialect

    @abc.abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one statement and return every row it produced, in order (empty: none).

        Any statement that returns rows: SELECT, or INSERT/UPDATE/DELETE ... RETURNING.
        """

    @abc.abstractmethod
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """Run one statement and return its first row, or None when it produced none.

        The statement runs to the end whatever it returns (an UPDATE ... RETURNING changes
        every row it matches), so callers limit it themselves when they want one row.
        """

    @abc.abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement that returns no rows; return how many rows it changed.

        The count is the rows inserted, updated or deleted (ON CONFLICT DO NOTHING counts
        only the rows it inserted); 0 for other statements.
        """

    @abc.abstractmethod
    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per parameter set in `rows` (nothing when it is empty).

        Not atomic by itself: call it inside `Database.transaction()` when all or none must land.
        """

    @abc.abstractmethod
    async def serialize(self, scope: str, key: int) -> None:
        """Inside a transaction: wait until no other transaction holds (`scope`, `key`), then
        hold it until this transaction ends (commit or rollback).

        Transactions that read, decide and write on the same thing (a server's quota) call it
        first, so they run one after another even from different processes. SQLite: nothing
        to do, since every transaction already holds the database's write lock (BEGIN
        IMMEDIATE). PostgreSQL: a transaction-scoped advisory lock on a hash of the pair.
        Outside a transaction it raises RuntimeError.
        """


class Database(abc.ABC):
    """The database the repositories share; its drivers decide how connections are shared.

    SQLite: one connection behind an asyncio lock, so statements from this process run one at
    a time. PostgreSQL: a pool, so they run side by side, each on its own connection; what must
    be serialized says so with a transaction (and `Connection.serialize`). A server that cannot
    be reached, or a connection cut mid-statement, raises DatabaseUnavailable (PostgreSQL only:
    a SQLite file is always there once opened).
    """

    dialect: Dialect

    @abc.abstractmethod
    def access(self) -> AbstractAsyncContextManager[Connection]:
        """A connection for single statements in autocommit mode: each statement is its own
        transaction, and is atomic on its own (a compare-and-set UPDATE ... RETURNING has one
        winner). Statements under one access() are not atomic together.
        """

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """A connection inside one transaction: committed when the block ends normally, rolled
        back when it raises (the exception then propagates).

        SQLite: BEGIN IMMEDIATE, so no other writer (connection or process) runs until it
        ends, and its reads stay true until then. PostgreSQL: READ COMMITTED, so each statement
        sees what was committed before it started; a read-decide-write must call
        `Connection.serialize` first, and a consistent multi-statement read uses snapshot().
        """

    @abc.abstractmethod
    def snapshot(self) -> AbstractAsyncContextManager[Connection]:
        """A connection inside a read-only transaction whose statements all see one committed
        state (reports whose figures must agree). Writing in it is an error on PostgreSQL.

        SQLite: the same as transaction(). PostgreSQL: REPEATABLE READ, READ ONLY.
        """

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Connection.fetch_all under its own access()."""
        async with self.access() as conn:
            return await conn.fetch_all(sql, params)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """Connection.fetch_one under its own access()."""
        async with self.access() as conn:
            return await conn.fetch_one(sql, params)

    async def ping(self) -> None:
        """A cheap read through the driver's own path: proof that the database answers.

        Raises the driver's error when it does not (the heartbeat records it).
        """
        await self.fetch_one("SELECT 1")

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection; wait for none. Using the database afterwards is an error.

        Call it once everything that uses the database has stopped.
        """


def list_migrations(directory: Path) -> list[tuple[int, Path]]:
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


def newer_schema(target: Path | str, current: int, known: int) -> DatabaseUnusable:
    """The refusal for a database a newer release has migrated past what this one knows."""
    return DatabaseUnusable(
        target,
        f"its schema version {current} is newer than this bot knows ({known}): "
        "it was opened by a newer release; run that release, or restore a backup",
    )
