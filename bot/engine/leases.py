"""LeaseKeeper: claims, renews and gives up this process's job leases.

Several bot processes may share one database; each works only the jobs whose lease it holds
(ARCHITECTURE.md, "Leases"). The engine's loop drives the keeper, on the engine's clock: a
heartbeat every third of LEASE_SECONDS (this process's row and all its leases, one statement
each) and a look for free jobs every `claim_interval`. Jobs gained are handed to the engine's
adopt, the restart path; jobs lost are dropped from the working set.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from bot.engine.ports import BudgetTable, LeaseStore, ProcessTable
from bot.engine.runtime import Runtime
from bot.engine.tracked import Tracked
from bot.outages import FailureRun
from storage.models import Job

log = logging.getLogger("bot.engine")


@dataclass(frozen=True)
class Leasing:
    """What the engine needs to share a database with other processes."""

    leases: LeaseStore
    processes: ProcessTable | None = None
    # True when the start itself proves that no other process is alive (SQLite's lock file):
    # every unfinished job is claimed at once, live-looking leases included, so a restart
    # resumes its jobs without waiting for the old leases to expire.
    sole: bool = False
    # The account's Together request budget, shared with the other processes (with
    # `processes`: each runs at its share; bot/engine/shared_budget.py).
    budget: BudgetTable | None = None


class LeaseKeeper:
    def __init__(
        self, runtime: Runtime, leasing: Leasing, adopt: Callable[[list[Job]], None]
    ) -> None:
        self._runtime = runtime
        self._leases = leasing.leases
        self._processes = leasing.processes
        self._sole = leasing.sole
        self._adopt = adopt
        self._next_beat = math.inf
        self._next_claim = math.inf
        self._beating = self._claiming = False
        self._beat_failures = FailureRun(log, "Lease heartbeat")
        self._claim_failures = FailureRun(log, "Claiming free jobs")

    def _until(self, now: float) -> float:
        return now + self._runtime.config.lease_seconds

    async def start(self) -> list[Job]:
        """Register this process and claim its first jobs (all of them, when it is sole)."""
        now = self._runtime.now()
        if self._processes is not None:
            if self._sole:
                await self._processes.forget_others()  # left by crashes: none is running
            await self._processes.register(now)
        if self._sole:
            jobs = await self._leases.claim_all(self._until(now))
        else:
            jobs = await self._claim_free(now)
        self._next_beat = now + self._runtime.config.lease_seconds / 3
        self._next_claim = now + self._runtime.config.claim_interval
        return jobs

    def tick(self, now: float, claiming: bool) -> None:
        """Start the heartbeat and the look for free jobs when due (one of each at a time)."""
        if now >= self._next_beat and not self._beating:
            self._beating = True
            self._next_beat = now + self._runtime.config.lease_seconds / 3
            self._runtime.spawn(self._beat(), "lease-heartbeat")
        if claiming and now >= self._next_claim and not self._claiming:
            self._claiming = True
            self._next_claim = now + self._runtime.config.claim_interval
            self._runtime.spawn(self._claim(), "lease-claim")

    def next_due(self) -> float:
        return min(self._next_beat, self._next_claim)

    async def _beat(self) -> None:
        try:
            await self._beat_failures.attempt(self.heartbeat())
        finally:
            self._beating = False

    async def heartbeat(self) -> None:
        """Renew this process's row and every lease it holds; drop the jobs it no longer holds."""
        now = self._runtime.now()
        held = [t.job.id for t in self._runtime.jobs.values() if t.leased]
        renewed = await self._leases.renew(self._until(now))
        if self._processes is not None:
            await self._processes.beat(now)
        for job_id in held:
            if job_id in renewed or job_id not in self._runtime.jobs:
                continue
            holder = await self._leases.holder(job_id)
            if holder != self._leases.owner:
                self._runtime.drop(job_id, holder)
            else:  # still ours but finished: a member's cancel written on another process
                self._runtime.jobs.pop(job_id, None)
                log.info("Ended by another process's write", extra={"job_id": job_id})

    async def _claim(self) -> None:
        try:
            await self._claim_failures.attempt(self.claim())
        finally:
            self._claiming = False

    async def claim(self) -> None:
        """Take free jobs (their lease expired: their process died or stalled) and adopt them."""
        jobs = await self._claim_free(self._runtime.now())
        fresh = [job for job in jobs if job.id not in self._runtime.jobs]
        if fresh:
            log.info("Took over %d job(s) whose lease had expired", len(fresh))
            self._adopt(fresh)

    async def _claim_free(self, now: float) -> list[Job]:
        config = self._runtime.config
        return await self._leases.claim_free(
            now, self._until(now), now - config.lease_seconds, config.claim_batch
        )

    async def claim_new(self, tracked: Tracked) -> None:
        """Claim a job this process has just been handed (enqueue); drop it if another holds it."""
        now = self._runtime.now()
        if await self._leases.claim_new(tracked.job.id, now, self._until(now)):
            tracked.leased = True
        else:
            self._runtime.drop(tracked.job.id, await self._leases.holder(tracked.job.id))

    async def stop(self) -> None:
        """Clean shutdown: give up every lease and the process's row, so others take over now."""
        await self._leases.release_all(self._runtime.now())
        if self._processes is not None:
            await self._processes.remove()
