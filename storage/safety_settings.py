"""The safety controls' rows: one settings row per server and its blocked words.

Statements on a connection the caller holds, so GuildSettingsRepository reads them with the
rest of a server's rules and writes them in the transaction that audits the change.
"""

from __future__ import annotations

from enum import Enum

import aiosqlite

from storage.db import fetch_all, fetch_one
from storage.models import SAFETY_NAMES, SafetyRules

SELECT_SAFETY = """
SELECT age_restricted_only, screening, screen_unavailable FROM safety_settings WHERE guild_id = ?
"""
UPSERT_SAFETY = """
INSERT INTO safety_settings
    (guild_id, age_restricted_only, screening, screen_unavailable, updated_at)
VALUES (:guild_id, :age_restricted_only, :screening, :screen_unavailable, :updated_at)
ON CONFLICT (guild_id) DO UPDATE SET
    age_restricted_only = excluded.age_restricted_only,
    screening = excluded.screening,
    screen_unavailable = excluded.screen_unavailable,
    updated_at = excluded.updated_at
"""
SELECT_WORDS = "SELECT entry FROM blocked_words WHERE guild_id = ? ORDER BY entry"
COUNT_WORDS = "SELECT COUNT(*) FROM blocked_words WHERE guild_id = ?"
INSERT_WORD = """
INSERT INTO blocked_words (guild_id, entry, added_by, added_at) VALUES (?, ?, ?, ?)
ON CONFLICT (guild_id, entry) DO NOTHING
"""
DELETE_WORD = "DELETE FROM blocked_words WHERE guild_id = ? AND entry = ?"


class WordChange(Enum):
    """What adding or removing a blocked entry did."""

    DONE = "done"
    UNCHANGED = "unchanged"  # already on the list, or not on it
    FULL = "full"  # the list holds as many entries as it may


def check_safety(changes: dict[str, object]) -> None:
    """ValueError for an unknown setting or a value of the wrong kind."""
    for name, value in changes.items():
        if name not in SAFETY_NAMES:
            raise ValueError(f"unknown safety setting {name!r}")
        if name == "screen_unavailable":
            if value not in ("refuse", "allow"):
                raise ValueError("screen_unavailable must be 'refuse' or 'allow'")
        elif not isinstance(value, bool):
            raise ValueError(f"{name} must be on or off")


async def read_safety(conn: aiosqlite.Connection, guild_id: int) -> SafetyRules:
    row = await fetch_one(conn, SELECT_SAFETY, (guild_id,))
    words = tuple(str(entry) for (entry,) in await fetch_all(conn, SELECT_WORDS, (guild_id,)))
    if row is None:
        return SafetyRules(blocked_words=words)
    age, screening, unavailable = row
    return SafetyRules(bool(age), bool(screening), unavailable, words)


async def write_safety(
    conn: aiosqlite.Connection, guild_id: int, rules: SafetyRules, now: float
) -> None:
    await conn.execute(
        UPSERT_SAFETY,
        {
            "guild_id": guild_id,
            "age_restricted_only": int(rules.age_restricted_only),
            "screening": int(rules.screening),
            "screen_unavailable": rules.screen_unavailable,
            "updated_at": now,
        },
    )


async def add_word(
    conn: aiosqlite.Connection, guild_id: int, entry: str, limit: int, actor_id: int, now: float
) -> WordChange:
    """Add `entry` unless it is there or the list is full; counted in the caller's transaction."""
    (count,) = await fetch_one(conn, COUNT_WORDS, (guild_id,))
    if count >= limit:
        exists = await fetch_one(
            conn, "SELECT 1 FROM blocked_words WHERE guild_id = ? AND entry = ?", (guild_id, entry)
        )
        return WordChange.UNCHANGED if exists else WordChange.FULL
    cursor = await conn.execute(INSERT_WORD, (guild_id, entry, actor_id, now))
    return WordChange.DONE if cursor.rowcount == 1 else WordChange.UNCHANGED


async def remove_word(conn: aiosqlite.Connection, guild_id: int, entry: str) -> WordChange:
    cursor = await conn.execute(DELETE_WORD, (guild_id, entry))
    return WordChange.DONE if cursor.rowcount == 1 else WordChange.UNCHANGED
