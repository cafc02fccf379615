"""What the engine's collaborators share: the tracked jobs, the clock, the tasks and the wake-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.clock import Clock
from bot.engine.config import EngineConfig
from bot.engine.ports import NoRecorder, Recorder
from bot.engine.tracked import Tracked
from bot.log_context import task_context
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
            except Exception:
                log.exception("Unexpected error; will try again")
                tracked.due_at = self.clock.now() + self.config.retry_delay
            finally:
                tracked.busy = False
                self.wake.set()

        self.spawn(run(), f"job-{tracked.job.id}", tracked.job)
