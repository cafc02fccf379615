"""What the engine's collaborators share: the tracked jobs, the clock, the tasks and the wake-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.clock import Clock
from bot.engine.config import EngineConfig
from bot.engine.ports import LeaseStore, NoRecorder, Recorder
from bot.engine.tracked import Tracked
from bot.log_context import task_context
from bot.outages import log_failure
from storage.models import Job

log = logging.getLogger("bot.engine")


class Runtime:
    def __init__(
        self, clock: Clock, config: EngineConfig, recorder: Recorder | None = None
    ) -> None:
        self.clock = clock
        self.config = config
        self.recorder = recorder or NoRecorder()  # the metrics, if METRICS_PORT is set
        self.jobs: dict[int, Tracked] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        # Set by anything that may make work due sooner: a new job, a finished task.
        self.wake = asyncio.Event()
        # This process's job leases, when processes share the database (bot/engine/leases.py).
        self.leases: LeaseStore | None = None

    async def lease_lost(self, tracked: Tracked) -> bool:
        """After a refused write: True (and the job dropped) if another process holds it now."""
        if self.leases is None:
            return False
        holder = await self.leases.holder(tracked.job.id)
        if holder == self.leases.owner:
            return False
        self.drop(tracked.job.id, holder)
        return True

    async def still_held(self, tracked: Tracked) -> bool:
        """Renew the job's lease right before an act that cannot be undone (the POST); False
        (and the job dropped) when this process no longer holds it."""
        if self.leases is None:
            return True
        until = self.now() + self.config.lease_seconds
        if await self.leases.renew_one(tracked.job.id, until):
            return True
        self.drop(tracked.job.id, await self.leases.holder(tracked.job.id))
        return False

    def drop(self, job_id: int, holder: str | None) -> None:
        """Forget a job whose lease this process lost: its new owner carries on."""
        tracked = self.jobs.pop(job_id, None)
        if tracked is not None:
            log.warning(
                "Lease lost (now held by %s); left to that process",
                holder or "nobody",
                extra={"job_id": job_id},
            )

    def now(self) -> float:
        return self.clock.now()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str, about: Job | None = None) -> None:
        """Run `coro` as a task whose log lines are about `about` (None: about no job).

        Set here rather than inherited: the loop starts every job's work, and one job's task
        often starts another's (a freed budget token, an edit), so the creator's ids are wrong.
        """
        task = asyncio.create_task(coro, name=name, context=task_context(about))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def spawn_work(self, tracked: Tracked, coro: Coroutine[Any, Any, None]) -> None:
        """Run one step of the job's life; the scheduler leaves the job alone until it ends."""
        tracked.busy = True

        async def run() -> None:
            try:
                await coro
            except Exception as exc:
                log_failure(log, "Its next step failed; will try again", exc)
                tracked.due_at = self.clock.now() + self.config.retry_delay
            finally:
                tracked.busy = False
                self.wake.set()

        self.spawn(run(), f"job-{tracked.job.id}", tracked.job)
