"""RulesRefresher: this process's cached server settings kept in step with other processes.

Each process caches moderators' settings per server (storage.server_settings). With several
processes on one database (gateway shards split over them), a change made through one must
reach the others: every REFRESH_EVERY seconds the refresher asks the database which servers
changed since its last look and drops their copies, so a change is seen everywhere within
about that long. The cost is one indexed query per interval per process, whatever the traffic
(checking a version before each use would add a database trip to every command instead).
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Protocol

from bot.background import BackgroundTask

log = logging.getLogger(__name__)

REFRESH_EVERY = 2.0  # seconds; how stale another process's change may look here


class SettingsCache(Protocol):
    async def catch_up(self) -> int: ...


class RulesRefresher:
    """A background task calling `catch_up` every `every` seconds while entered."""

    def __init__(self, cache: SettingsCache, every: float = REFRESH_EVERY) -> None:
        self._cache = cache
        self._every = every
        self._task = BackgroundTask("rules-refresh", self._run)
        self._failing = False

    async def __aenter__(self) -> RulesRefresher:
        self._task.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._task.stop()

    async def refresh_once(self) -> int:
        """One look; a failure is logged once per run of failures, never raised."""
        try:
            dropped = await self._cache.catch_up()
        except Exception as exc:
            if not self._failing:
                log.warning("Cannot check for settings changed elsewhere (%s); retrying", exc)
            self._failing = True
            return 0
        if self._failing:
            log.info("Checking for settings changed elsewhere works again")
            self._failing = False
        if dropped:
            log.debug("Settings of %d server(s) changed elsewhere; read again on next use", dropped)
        return dropped

    async def _run(self) -> None:
        while True:
            await self.refresh_once()
            await asyncio.sleep(self._every)
