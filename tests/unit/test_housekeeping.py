"""KeyframePruner on virtual time with a recording store."""

from __future__ import annotations

import asyncio

from bot.clock import ManualClock
from bot.housekeeping import DAY_SECONDS, KeyframePruner


class RecordingStore:
    def __init__(self, wanted: int = 1) -> None:
        self.calls: list[tuple[float, float]] = []
        self.wanted = wanted
        self.enough = asyncio.Event()

    def record(self, before: float, now: float) -> None:
        self.calls.append((before, now))
        if len(self.calls) >= self.wanted:
            self.enough.set()

    async def prune_media(self, before: float, now: float) -> int:
        self.record(before, now)
        return 1


async def test_prunes_jobs_that_ended_more_than_the_retention_ago() -> None:
    store, clock = RecordingStore(), ManualClock()
    assert await KeyframePruner(store, clock, retention_days=14).prune_once() == 1
    assert store.calls == [(clock.now() - 14 * DAY_SECONDS, clock.now())]


async def test_zero_keeps_keyframes_forever() -> None:
    store = RecordingStore()
    pruner = KeyframePruner(store, ManualClock(), retention_days=0)
    assert await pruner.prune_once() == 0
    pruner.start()
    await asyncio.sleep(0)
    await pruner.stop()
    assert store.calls == []


async def test_runs_at_start_and_then_periodically_until_stopped() -> None:
    store = RecordingStore(wanted=3)
    pruner = KeyframePruner(store, ManualClock(), retention_days=1, every=0.01)
    pruner.start()
    await store.enough.wait()
    await pruner.stop()
    seen = len(store.calls)
    await asyncio.sleep(0.05)
    assert len(store.calls) == seen, "stopped"


async def test_a_failed_pass_is_logged_and_tried_again() -> None:
    class Flaky(RecordingStore):
        async def prune_media(self, before: float, now: float) -> int:
            self.record(before, now)
            if len(self.calls) == 1:
                raise OSError("database is locked")
            return 0

    store = Flaky(wanted=2)
    pruner = KeyframePruner(store, ManualClock(), retention_days=1, every=0.01)
    pruner.start()
    await store.enough.wait()  # the loop survived the first pass's error
    await pruner.stop()
