"""The running bot's heartbeat: a small JSON file beside the database, read by `video-bot health`.

No port and no socket: the health check reads `<DATABASE_PATH>.health` and probes the
database's lock. The file is written by a task on the bot's own event loop, every
HEARTBEAT_INTERVAL seconds and at once when the gateway connects or drops, so a blocked loop
shows as a stale file. Each write replaces the file atomically (temporary file + os.replace):
a reader never sees half of one.

What it holds, all wall-clock seconds since the epoch:
- the gateway: connected, or since when it has been away (GatewayWatch, fed by bot.client);
- the engine: when the writer last saw its loop's tick counter move (JobEngine.ticks), so at
  most one interval late;
- the database: when a cheap query through the bot's own connection last answered, and the
  last error if it did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pydantic import TypeAdapter

from bot.background import BackgroundTask

log = logging.getLogger(__name__)

HEARTBEAT_SUFFIX = ".health"
HEARTBEAT_INTERVAL = 10.0
# A database query slower than this is reported as not answering.
PROBE_TIMEOUT = 5.0

Now = Callable[[], float]


@dataclass(frozen=True)
class Heartbeat:
    pid: int
    started_at: float
    written_at: float
    interval: float
    gateway_connected: bool
    gateway_ever_connected: bool
    # When the gateway went away (the start, if it never connected); None while connected.
    gateway_down_since: float | None
    engine_ticked_at: float | None
    database_answered_at: float | None
    database_error: str | None

    def to_json(self) -> str:
        return _ADAPTER.dump_json(self).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Heartbeat:
        """Raises ValueError (pydantic's ValidationError) for anything but a whole heartbeat."""
        return _ADAPTER.validate_json(text)


_ADAPTER = TypeAdapter(Heartbeat)


def heartbeat_path_for(database_path: Path) -> Path:
    database_path = database_path.resolve()
    return database_path.with_name(database_path.name + HEARTBEAT_SUFFIX)


def write_heartbeat(path: Path, heartbeat: Heartbeat) -> None:
    """Replace the file at once: temporary file beside it, then os.replace (atomic)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(heartbeat.to_json(), encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


class GatewayWatch:
    """Whether every gateway shard is connected, and since when one is away.

    bot.client calls connected() on a shard's READY or RESUMED and disconnected() when it
    drops; `on_change` (the heartbeat writer) hears of each change at once.
    """

    def __init__(self, now: Now = time.time) -> None:
        self._now = now
        self._started_at = now()
        self._up: set[int] = set()
        self._down: dict[int, float] = {}  # shard id -> when it dropped
        self.on_change: Callable[[], None] | None = None

    @property
    def is_connected(self) -> bool:
        return bool(self._up) and not self._down

    @property
    def ever_connected(self) -> bool:
        return bool(self._up or self._down)

    @property
    def down_since(self) -> float | None:
        if self.is_connected:
            return None
        return min(self._down.values(), default=self._started_at)

    def connected(self, shard_id: int) -> None:
        changed = shard_id not in self._up
        self._up.add(shard_id)
        changed = self._down.pop(shard_id, None) is not None or changed
        if changed:
            self._changed()

    def disconnected(self, shard_id: int) -> None:
        # discord.py reports every failed reconnect attempt too: the first drop counts.
        if shard_id in self._down:
            return
        self._up.discard(shard_id)
        self._down[shard_id] = self._now()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


class HeartbeatWriter:
    """The background task that keeps `<DATABASE_PATH>.health` fresh; `async with` runs it.

    Leaving the block stops the task and removes the file: a bot that stopped cleanly leaves
    no heartbeat behind (one that was killed does, and the health check sees the lock free).
    """

    def __init__(
        self,
        path: Path,
        *,
        gateway: GatewayWatch,
        engine_ticks: Callable[[], int],
        ping: Callable[[], Awaitable[None]],
        interval: float = HEARTBEAT_INTERVAL,
        probe_timeout: float = PROBE_TIMEOUT,
        now: Now = time.time,
    ) -> None:
        self.path = path
        self._gateway = gateway
        self._engine_ticks = engine_ticks
        self._ping = ping
        self._interval = interval
        self._probe_timeout = probe_timeout
        self._now = now
        self._pid = os.getpid()
        self._started_at = now()
        self._ticks_seen = 0
        self._ticked_at: float | None = None
        self._answered_at: float | None = None
        self._database_error: str | None = None
        self._write_failed = False
        self._wake = asyncio.Event()
        self._task = BackgroundTask("health-heartbeat", self._run)
        gateway.on_change = self.poke

    def poke(self) -> None:
        """Write now rather than at the next interval (the gateway changed)."""
        self._wake.set()

    async def beat(self) -> Heartbeat:
        """Probe the database, look at the engine, and write the file; the heartbeat written."""
        await self._probe_database()
        now = self._now()
        ticks = self._engine_ticks()
        if ticks != self._ticks_seen:
            self._ticks_seen, self._ticked_at = ticks, now
        heartbeat = Heartbeat(
            pid=self._pid,
            started_at=self._started_at,
            written_at=now,
            interval=self._interval,
            gateway_connected=self._gateway.is_connected,
            gateway_ever_connected=self._gateway.ever_connected,
            gateway_down_since=self._gateway.down_since,
            engine_ticked_at=self._ticked_at,
            database_answered_at=self._answered_at,
            database_error=self._database_error,
        )
        self._write(heartbeat)
        return heartbeat

    async def _probe_database(self) -> None:
        try:
            await asyncio.wait_for(self._ping(), self._probe_timeout)
        except TimeoutError:
            self._database_error = f"no answer within {self._probe_timeout:g} s"
        except Exception as exc:
            self._database_error = " ".join(str(exc).split()) or type(exc).__name__
        else:
            self._answered_at, self._database_error = self._now(), None

    def _write(self, heartbeat: Heartbeat) -> None:
        try:
            write_heartbeat(self.path, heartbeat)
        except OSError as exc:
            if not self._write_failed:  # once per failure, not every interval
                log.warning("Cannot write the health heartbeat %s: %s", self.path, exc)
            self._write_failed = True
        else:
            if self._write_failed:
                log.info("The health heartbeat %s is written again", self.path)
            self._write_failed = False

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.beat()
            except Exception:
                log.exception("Health heartbeat failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)

    async def __aenter__(self) -> HeartbeatWriter:
        self._task.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._task.stop()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
