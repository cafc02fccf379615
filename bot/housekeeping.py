"""Periodic upkeep of the database: deleting keyframe images past their retention."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from bot.background import BackgroundTask
from bot.clock import Clock
from bot.outages import FailureRun

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
PRUNE_EVERY = 3600.0  # seconds


class MediaStore(Protocol):
    async def prune_media(self, before: float, now: float) -> int: ...


class KeyframePruner:
    """Deletes the images of jobs that ended more than `retention_days` ago (0: never).

    They are kept that long only for the job's Retry button; a few hundred KB per job add up.
    """

    def __init__(
        self, store: MediaStore, clock: Clock, retention_days: int, every: float = PRUNE_EVERY
    ) -> None:
        self._store = store
        self._clock = clock
        self._retention = retention_days * DAY_SECONDS
        self._every = every
        self._task = BackgroundTask("keyframe-pruner", self._run)
        self._failures = FailureRun(log, "Deleting old keyframe images")

    async def prune_once(self) -> int:
        if self._retention <= 0:
            return 0
        now = self._clock.now()
        pruned = await self._store.prune_media(before=now - self._retention, now=now)
        if pruned:
            log.info("Deleted the keyframe images of %d finished job(s) past retention", pruned)
        return pruned

    def start(self) -> None:
        if self._retention > 0:
            self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            await self._failures.attempt(self.prune_once())
            await asyncio.sleep(self._every)
