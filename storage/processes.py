"""The running bot processes: one row each, kept fresh by a heartbeat (see storage.leases).

Portable SQL only (`:name` placeholders, no SQLite-only functions): the same statements run on
PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from storage.db import Database

INSERT_PROCESS = """
INSERT INTO processes (id, host, pid, started_at, heartbeat_at)
VALUES (:id, :host, :pid, :now, :now)
"""
BEAT = "UPDATE processes SET heartbeat_at = :now WHERE id = :id RETURNING id"
DELETE_PROCESS = "DELETE FROM processes WHERE id = :id"
DELETE_OTHERS = "DELETE FROM processes WHERE id <> :id"
SELECT_LIVE = """
SELECT id, host, pid, started_at, heartbeat_at FROM processes
WHERE heartbeat_at >= :since ORDER BY started_at, id
"""


def new_process_id() -> str:
    """A fresh id for this run of the bot: random, so a restarted pid is a new owner."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class ProcessRow:
    id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float


class Processes:
    """The `processes` table, as seen by the process `me`."""

    def __init__(self, db: Database, me: str) -> None:
        self._db = db
        self.me = me

    async def register(self, now: float) -> None:
        """Write this process's row (host, pid, start time)."""
        values = {"id": self.me, "host": socket.gethostname(), "pid": os.getpid(), "now": now}
        await self._db.fetch_one(INSERT_PROCESS, values)

    async def beat(self, now: float) -> None:
        """Renew this process's heartbeat; writes the row again if someone removed it."""
        if await self._db.fetch_one(BEAT, {"id": self.me, "now": now}) is None:
            await self.register(now)

    async def remove(self) -> None:
        """The clean shutdown's last word: this process is gone."""
        await self._db.fetch_one(DELETE_PROCESS, {"id": self.me})

    async def forget_others(self) -> None:
        """Remove every other process's row: for a start that holds proof that no other
        process is running (SQLite's lock file), so their rows are left by crashes."""
        await self._db.fetch_one(DELETE_OTHERS, {"id": self.me})

    async def live(self, now: float, lease_seconds: float) -> list[ProcessRow]:
        """Processes whose heartbeat is at most `lease_seconds` old, oldest start first."""
        rows = await self._db.fetch_all(SELECT_LIVE, {"since": now - lease_seconds})
        return [ProcessRow(str(r[0]), str(r[1]), int(r[2]), float(r[3]), float(r[4])) for r in rows]
