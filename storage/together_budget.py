"""The Together request budget every bot process of one account shares: one row.

Together's limit is the account's, so the rate learned from its answers is kept here and each
process runs at its share of it (bot/engine/shared_budget.py). The writes are single
statements, atomic on either driver:

- a cut only ever lowers the rate and only ever lengthens the pause (CASE WHEN rather than
  LEAST/MIN, which SQLite and PostgreSQL spell differently), so two processes cutting from
  the same value land on one rate, never below it twice;
- a rise is a compare-and-set on `version`, which every write raises: of two processes
  raising the same value, one wins and the other adopts the winner's rate.

Portable SQL only (`:name` placeholders, ON CONFLICT, UPDATE ... RETURNING).
"""

from __future__ import annotations

from storage.db import Database
from storage.driver import Row
from storage.models import SharedRate

_COLUMNS = "rate, paused_until, version"
SEED = """
INSERT INTO together_budget (id, rate, paused_until, version, updated_at)
VALUES (1, :rate, 0, 0, :now) ON CONFLICT (id) DO NOTHING
"""
RESET = f"""
INSERT INTO together_budget (id, rate, paused_until, version, updated_at)
VALUES (1, :rate, 0, 0, :now)
ON CONFLICT (id) DO UPDATE SET rate = excluded.rate, version = together_budget.version + 1,
    updated_at = excluded.updated_at
RETURNING {_COLUMNS}
"""
READ = f"SELECT {_COLUMNS} FROM together_budget WHERE id = 1"
LOWER = f"""
UPDATE together_budget SET
    rate = CASE WHEN rate > :rate THEN :rate ELSE rate END,
    paused_until = CASE WHEN paused_until < :until THEN :until ELSE paused_until END,
    version = version + 1, updated_at = :now
WHERE id = 1
RETURNING {_COLUMNS}
"""
RAISE = f"""
UPDATE together_budget SET rate = :rate, version = version + 1, updated_at = :now
WHERE id = 1 AND version = :version
RETURNING {_COLUMNS}
"""


def _shared(row: Row | None) -> SharedRate | None:
    if row is None:
        return None
    rate, paused_until, version = row
    return SharedRate(float(rate), float(paused_until), int(version))


class TogetherBudgetTable:
    """The `together_budget` row."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(self, rate: float, now: float, alone: bool) -> SharedRate:
        """The row at a process's start. `alone` (no other live process): the rate starts
        again at `rate`, as a single bot's restart always has (the account's limit may have
        moved while it was down); a pause still running is kept. Otherwise the others' rate."""
        if alone:
            row = await self._db.fetch_one(RESET, {"rate": rate, "now": now})
        else:
            await self._db.fetch_one(SEED, {"rate": rate, "now": now})
            row = await self._db.fetch_one(READ)
        shared = _shared(row)
        assert shared is not None  # written just above
        return shared

    async def read(self) -> SharedRate | None:
        return _shared(await self._db.fetch_one(READ))

    async def lower(self, rate: float, paused_until: float, now: float) -> SharedRate | None:
        """Cut the rate to `rate` unless it is lower already; pause until `paused_until` unless
        the pause lasts longer already. None: the row is missing (never started)."""
        values = {"rate": rate, "until": paused_until, "now": now}
        return _shared(await self._db.fetch_one(LOWER, values))

    async def raise_from(self, version: int, rate: float, now: float) -> SharedRate | None:
        """Set the rate to `rate` if nobody wrote since `version`; None if somebody did."""
        values = {"rate": rate, "version": version, "now": now}
        return _shared(await self._db.fetch_one(RAISE, values))
