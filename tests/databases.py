"""The storage tests' databases: SQLite in a temporary folder, or PostgreSQL at TEST_DATABASE_URL.

PostgreSQL tests need a server: `export TEST_DATABASE_URL=$(scripts/postgres-test-server
start)`. Without TEST_DATABASE_URL they are skipped, saying so; with CI=true they fail instead,
so CI can never pass by skipping them. Each test session creates a database of its own on that
server (the URL's login needs CREATEDB) and drops it at the end; each test starts with empty
tables.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from storage.db import SQLiteDatabase, open_database
from storage.driver import Database
from storage.postgres import PostgresDatabase, open_postgres

NO_SERVER = (
    "PostgreSQL tests need TEST_DATABASE_URL "
    "(export TEST_DATABASE_URL=$(scripts/postgres-test-server start))"
)


def server_url() -> str:
    """TEST_DATABASE_URL; skips the test without it, or fails it when CI=true."""
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {NO_SERVER}; CI must run them, not skip them", pytrace=False)
    pytest.skip(NO_SERVER)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def create_database(url: str, name: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(url: str, name: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def run_aside(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run `coroutine` to the end on a loop of its own, in a thread: session fixtures are set up
    from inside a test's running loop, where asyncio.run cannot be called."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def new_name(kind: str = "test") -> str:
    return f"video_bot_{kind}_{uuid.uuid4().hex[:12]}"


def scratch_database(url: str) -> tuple[str, str]:
    """A new, empty database on the server: (its name, its URL)."""
    name = new_name()
    run_aside(create_database(url, name))
    return name, with_database(url, name)


@asynccontextmanager
async def own_database(kind: str = "test") -> AsyncIterator[str]:
    """The URL of a new, empty database on the TEST_DATABASE_URL server (skipped without one,
    failed under CI), dropped at the end."""
    server = server_url()
    name = new_name(kind)
    await create_database(server, name)
    try:
        yield with_database(server, name)
    finally:
        await drop_database(server, name)


async def empty_tables(db: Database) -> None:
    """Every table emptied and its ids restarted; the schema and its version stay (a test that
    changes the schema puts it back itself), and so does the settings change counter's one row
    (a migration made it; the repositories count on it), set back to 0."""
    rows = await db.fetch_all(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "AND tablename NOT IN ('schema_version', 'settings_change_counter')"
    )
    async with db.access() as conn:
        if rows:
            names = ", ".join(f'"{name}"' for (name,) in rows)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        if await conn.fetch_one("SELECT to_regclass('settings_change_counter')") != (None,):
            await conn.execute("UPDATE settings_change_counter SET value = 0")


async def reset_schema(url: str) -> None:
    """The database as a new one: no tables, no version."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


async def open_test_postgres(url: str) -> PostgresDatabase:
    """The test database with empty tables; several may be open at once, as processes do."""
    db = await open_postgres(url)
    await empty_tables(db)
    return db


async def reopen(db: Database) -> Database:
    """A second, independent handle on the same database: another connection or pool."""
    if isinstance(db, SQLiteDatabase):
        return await open_database(db.path)
    assert isinstance(db, PostgresDatabase)
    return await open_postgres(db.url)
