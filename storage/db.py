"""Open the database the settings name: SQLite at DATABASE_PATH, or PostgreSQL at DATABASE_URL.

The drivers are storage.sqlite and storage.postgres; what they share is storage.driver. The
names below are kept here so that callers (and tests) open a database in one place.
"""

from __future__ import annotations

from pathlib import Path

from storage.driver import Database, DatabaseUnusable, Params, Row
from storage.driver import list_migrations as _list_migrations
from storage.sqlite import BUSY_TIMEOUT_MS, MIGRATIONS_DIR, SQLiteDatabase, open_sqlite

__all__ = [
    "BUSY_TIMEOUT_MS",
    "MIGRATIONS_DIR",
    "Database",
    "DatabaseUnusable",
    "Params",
    "Row",
    "SQLiteDatabase",
    "list_migrations",
    "open_configured",
    "open_database",
]


def list_migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """The SQLite migrations (or those in `directory`) as (version, path), in order."""
    return _list_migrations(directory)


async def open_database(path: Path, migrations_dir: Path = MIGRATIONS_DIR) -> SQLiteDatabase:
    """The SQLite database at `path`, checked and migrated (storage.sqlite.open_sqlite)."""
    return await open_sqlite(path, migrations_dir)


async def open_configured(database_path: Path, database_url: str | None) -> Database:
    """PostgreSQL when `database_url` is set (shared by processes, by lease), else SQLite at
    `database_path`. Raises DatabaseUnusable naming the one chosen, and why, in one line."""
    if database_url:
        # Imported here: asyncpg is only loaded by a bot that uses it.
        from storage.postgres import open_postgres

        return await open_postgres(database_url)
    return await open_sqlite(database_path)
