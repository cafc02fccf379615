"""Copy a SQLite database into an empty PostgreSQL one: every table, ids kept, counts checked.

The tables are discovered from SQLite's schema (a table a later migration adds is copied
without a change here); each is copied with the columns both sides have, parents before the
tables whose foreign keys point at them, in id order (a job's parent has a smaller id). The
whole copy is one PostgreSQL transaction: any failure (a constraint, a type, a count that does
not match) rolls it back and leaves the target as empty as it was. Afterwards each identity
column's sequence is moved past the highest copied id, so new rows never collide.

Values go through the drivers unchanged: integers, floats (exact: binary doubles on both
sides), text and bytes (byte for byte). Only what a typed PostgreSQL column cannot take from
SQLite's loose storage is converted: a whole float into an integer column, an integer into a
double column.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.driver import Connection, Database, Row

# Rows read and written at a time: job_media rows hold JPEG keyframes of the video's size, up
# to about a megabyte each, so a batch stays near 100 MB in memory at worst.
BATCH_ROWS = 100
# Tables whose rows the migrations create on both sides (the settings change counter's one
# row): the copy replaces them, and they do not make a target count as used.
MIGRATION_ROWS = frozenset({"settings_change_counter"})
# Only the bot's own schema is copied, whose names need no quoting.
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

_SQLITE_TABLES = """
SELECT name, sql FROM sqlite_master
WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name
"""
_POSTGRES_COLUMNS = """
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position
"""
_INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})
_FLOAT_TYPES = frozenset({"double precision", "real", "numeric"})


class CopyRefused(Exception):
    """The copy cannot start (the target is not empty, the schemas do not match); nothing
    was written. The message is one line."""


class CopyFailed(Exception):
    """The copy started and failed; its transaction was rolled back, so the target holds
    nothing of it. The message is one line."""


@dataclass(frozen=True)
class TableCopy:
    """One table copied: its rows (counted on both sides, equal), the columns SQLite has and
    PostgreSQL does not (left behind), and the next id of each identity column."""

    name: str
    rows: int
    left_out: tuple[str, ...] = ()
    next_ids: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Plan:
    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # PostgreSQL's data_type of each column
    left_out: tuple[str, ...]
    keyed_by_rowid: bool


async def copy_database(source: Database, target: Database) -> list[TableCopy]:
    """Copy every table of `source` (SQLite) into `target` (PostgreSQL, empty).

    Both must be migrated to the same release, and nothing may write to either meanwhile (the
    caller holds their locks). Raises CopyRefused before writing anything, CopyFailed after
    rolling back.
    """
    if source.dialect != "sqlite" or target.dialect != "postgresql":
        raise CopyRefused("the copy goes from SQLite to PostgreSQL only")
    async with source.snapshot() as reader:
        plans = await _plan(reader, target)
        try:
            async with target.transaction() as writer:
                # Inside the transaction, so nothing can land between the check and the copy.
                used = await _used_tables(writer, [plan.name for plan in plans])
                if used:
                    listed = ", ".join(f"{name} ({count_rows(rows)})" for name, rows in used)
                    raise CopyRefused(f"it is not empty: {listed}; it must be a new database")
                return [await _copy_named(reader, writer, plan) for plan in plans]
        except (CopyRefused, CopyFailed):
            raise
        except Exception as exc:  # the commit itself, or a check before the first table
            raise CopyFailed(_one_line(exc)) from exc


async def _copy_named(reader: Connection, writer: Connection, plan: _Plan) -> TableCopy:
    """_copy_table, its failure (the driver's error, whatever its type) naming the table."""
    try:
        return await _copy_table(reader, writer, plan)
    except CopyFailed:
        raise
    except Exception as exc:
        raise CopyFailed(f"{plan.name}: {_one_line(exc)}") from exc


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def count_rows(rows: int) -> str:
    return f"{rows} row" if rows == 1 else f"{rows} rows"


async def _plan(reader: Connection, target: Database) -> list[_Plan]:
    """What to copy, table by table, parents first."""
    target_columns: dict[str, dict[str, str]] = {}
    for table, column, data_type in await target.fetch_all(_POSTGRES_COLUMNS):
        target_columns.setdefault(str(table), {})[str(column)] = str(data_type)
    plans: dict[str, _Plan] = {}
    parents: dict[str, set[str]] = {}
    for name, sql in await reader.fetch_all(_SQLITE_TABLES):
        name = str(name)
        if not _NAME.match(name):
            raise CopyRefused(f"SQLite has a table named {name!r}, which is not the bot's")
        if name not in target_columns:
            raise CopyRefused(
                f"PostgreSQL has no table {name}: is this release's PostgreSQL schema older "
                "than its SQLite schema?"
            )
        source_columns = [
            str(row[1]) for row in await reader.fetch_all(f"PRAGMA table_info({name})")
        ]
        shared = [column for column in source_columns if column in target_columns[name]]
        plans[name] = _Plan(
            name=name,
            columns=tuple(shared),
            types=tuple(target_columns[name][column] for column in shared),
            left_out=tuple(column for column in source_columns if column not in shared),
            keyed_by_rowid="WITHOUT ROWID" not in str(sql or "").upper(),
        )
        references = await reader.fetch_all(f"PRAGMA foreign_key_list({name})")
        parents[name] = {str(row[2]) for row in references} - {name}
    return [plans[name] for name in _parents_first(parents)]


def _parents_first(parents: dict[str, set[str]]) -> list[str]:
    """Table names ordered so that each comes after the tables its foreign keys point at."""
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(parents):
        ready = sorted(
            name
            for name, needs in parents.items()
            if name not in placed and (needs & parents.keys()) <= placed
        )
        if not ready:
            raise CopyRefused("the tables' foreign keys form a cycle; cannot order the copy")
        ordered.extend(ready)
        placed.update(ready)
    return ordered


async def _used_tables(writer: Connection, names: Sequence[str]) -> list[tuple[str, int]]:
    used = []
    for name in names:
        if name in MIGRATION_ROWS:
            continue
        row = await writer.fetch_one(f"SELECT count(*) FROM {name}")
        if row is not None and int(row[0]) > 0:
            used.append((name, int(row[0])))
    return used


async def _copy_table(reader: Connection, writer: Connection, plan: _Plan) -> TableCopy:
    if plan.name in MIGRATION_ROWS:
        await writer.execute(f"DELETE FROM {plan.name}")
    names = ", ".join(plan.columns)
    insert = f"INSERT INTO {plan.name} ({names}) VALUES ({', '.join('?' * len(plan.columns))})"
    copied = 0
    async for batch in _batches(reader, plan):
        await writer.execute_many(insert, [_convert(row, plan.types) for row in batch])
        copied += len(batch)
    expected = await reader.fetch_one(f"SELECT count(*) FROM {plan.name}")
    landed = await writer.fetch_one(f"SELECT count(*) FROM {plan.name}")
    counts = (int(expected[0]) if expected else -1, int(landed[0]) if landed else -1)
    if not counts[0] == counts[1] == copied:
        raise CopyFailed(
            f"{plan.name}: SQLite has {counts[0]} rows, {copied} were copied and PostgreSQL "
            f"has {counts[1]}"
        )
    return TableCopy(plan.name, copied, plan.left_out, await _move_identities(writer, plan))


async def _batches(reader: Connection, plan: _Plan) -> AsyncIterator[list[Row]]:
    """The table's rows in batches: by rowid (in id order), or all at once for the small
    WITHOUT ROWID tables (server settings), which have no rowid to page by."""
    names = ", ".join(plan.columns)
    if not plan.keyed_by_rowid:
        rows = await reader.fetch_all(f"SELECT {names} FROM {plan.name}")
        if rows:
            yield rows
        return
    last = None
    while True:
        after = "" if last is None else "WHERE rowid > ?"
        rows = await reader.fetch_all(
            f"SELECT rowid, {names} FROM {plan.name} {after} ORDER BY rowid LIMIT {BATCH_ROWS}",
            () if last is None else (last,),
        )
        if not rows:
            return
        last = rows[-1][0]
        yield [row[1:] for row in rows]


def _convert(row: Row, types: Sequence[str]) -> tuple[Any, ...]:
    return tuple(_value(value, data_type) for value, data_type in zip(row, types, strict=True))


def _value(value: Any, data_type: str) -> Any:
    """What a typed PostgreSQL column takes for a value SQLite stored loosely."""
    if data_type in _INTEGER_TYPES and isinstance(value, float) and value.is_integer():
        return int(value)
    if data_type in _FLOAT_TYPES and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


async def _move_identities(writer: Connection, plan: _Plan) -> dict[str, int]:
    """Each identity (or serial) column's sequence set to give the highest id + 1 next."""
    next_ids = {}
    for column in plan.columns:
        sequence = await writer.fetch_one(
            "SELECT pg_get_serial_sequence(?, ?)", (plan.name, column)
        )
        if sequence is None or sequence[0] is None:
            continue
        row = await writer.fetch_one(
            f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX({column}), 0) + 1, "
            f"false) FROM {plan.name}",
            (plan.name, column),
        )
        next_ids[column] = int(row[0]) if row else 1
    return next_ids
