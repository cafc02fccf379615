"""`video-bot migrate-db --to postgresql://...`: move the SQLite database to PostgreSQL, once.

It holds the SQLite file's lock (storage.lock) for the whole copy, so a bot running on that
file stops it with one line, and no bot can start on the file meanwhile. PostgreSQL must be
empty: a bot already running there has registered itself (the processes table), so the copy
is refused as it would be for any other row. Both databases are
brought up to date by their migrations first; then storage.copy copies every table in one
PostgreSQL transaction and checks the counts. The outcome is lines for the operator and an exit
code: 0 copied, 2 refused (nothing written), 1 the copy failed (rolled back: nothing written).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from storage.copy import CopyFailed, CopyRefused, TableCopy, copy_database, count_rows
from storage.db import Database, DatabaseUnusable, open_database
from storage.lock import DatabaseInUse, acquire_database_lock

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2

URL_SCHEMES = ("postgresql", "postgres")
BAD_URL = (
    "--to must be a PostgreSQL URL such as postgresql://user:password@host:5432/database; "
    "this one is not ({shown})"
)
BOT_RUNNING = (
    "DATABASE_PATH {path} is in use by a running bot ({holder}): stop the bot first, then "
    "run migrate-db"
)
NO_SOURCE = "DATABASE_PATH {path} does not exist: there is no SQLite database to copy"


@dataclass(frozen=True)
class MigrateOutcome:
    code: int
    lines: tuple[str, ...]


def run_migrate_db(database_path: Path, url: str) -> MigrateOutcome:
    """Copy the SQLite database at `database_path` into the empty PostgreSQL one at `url`."""
    shown = _shown(url)
    if shown is None:
        return _refused(BAD_URL.format(shown=_scheme_only(url)))
    source_path = database_path.resolve()
    if not source_path.is_file():
        return _refused(NO_SOURCE.format(path=source_path))
    try:
        with acquire_database_lock(source_path):
            return asyncio.run(_migrate(source_path, url, shown))
    except DatabaseInUse as exc:
        holder = f"pid {exc.holder_pid}" if exc.holder_pid is not None else "pid unknown"
        return _refused(BOT_RUNNING.format(path=source_path, holder=holder))
    except DatabaseUnusable as exc:
        return _refused(f"{_setting(exc)} {exc.target} cannot be used: {exc.reason}")


async def _migrate(source_path: Path, url: str, shown: str) -> MigrateOutcome:
    # Imported here: only this command loads asyncpg when the bot itself uses SQLite.
    from storage.postgres import open_postgres

    source = await open_database(source_path)
    target: Database | None = None
    try:
        target = await open_postgres(url)
        try:
            tables = await copy_database(source, target)
        except CopyRefused as exc:
            return _refused(f"--to {shown}: {exc}")
        except CopyFailed as exc:
            return MigrateOutcome(
                EXIT_FAILED, (f"the copy to {shown} failed and was undone, nothing written: {exc}",)
            )
    finally:
        await source.close()
        if target is not None:
            await target.close()
    return MigrateOutcome(EXIT_OK, _report(tables, source_path, shown))


def _report(tables: list[TableCopy], source_path: Path, shown: str) -> tuple[str, ...]:
    lines = []
    width = max((len(table.name) for table in tables), default=0)
    for table in tables:
        line = f"{table.name:<{width}}  {count_rows(table.rows)}"
        for column, next_id in table.next_ids.items():
            line += f", next {column} {next_id}"
        if table.left_out:
            line += f" (not in PostgreSQL, left out: {', '.join(table.left_out)})"
        lines.append(line)
    total = sum(table.rows for table in tables)
    lines.append(
        f"Copied {count_rows(total)} in {len(tables)} tables from {source_path} to {shown}; every "
        "table's row count checked. Set DATABASE_URL to it and start the bot."
    )
    return tuple(lines)


def _refused(line: str) -> MigrateOutcome:
    return MigrateOutcome(EXIT_REFUSED, (line,))


def _setting(exc: DatabaseUnusable) -> str:
    return "DATABASE_PATH" if isinstance(exc.target, Path) else "--to"


def _shown(url: str) -> str | None:
    """The URL without its password, or None when it is not a usable PostgreSQL URL."""
    from storage.postgres import redact

    try:
        parts = urlsplit(url)
        if parts.scheme not in URL_SCHEMES or not (parts.hostname or "host=" in parts.query):
            return None
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        return redact(url)
    except ValueError:
        return None


def _scheme_only(url: str) -> str:
    """What may be shown of a URL that did not parse: never its password."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return f"{scheme}://..." if scheme and scheme.isalnum() else "something else"
