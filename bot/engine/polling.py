"""Polling: read each running job's status from Together within the request budget."""

from __future__ import annotations

import logging

from bot.domain.budget import Claim, Lane
from bot.domain.scheduling import PollPlanner
from bot.engine.budget import RequestBudget
from bot.engine.decisions import Finish, after_status, backoff, timed_out
from bot.engine.ports import VideoAPI
from bot.engine.runtime import Runtime
from bot.engine.tracked import Tracked
from bot.engine.transitions import StateWriter
from bot.together.errors import TogetherError
from bot.together.models import VideoJob
from storage.models import JobState

log = logging.getLogger("bot.engine")


class Poller:
    def __init__(
        self,
        runtime: Runtime,
        writer: StateWriter,
        api: VideoAPI,
        budget: RequestBudget,
        planner: PollPlanner,
    ) -> None:
        self._runtime = runtime
        self._config = runtime.config
        self._writer = writer
        self._api = api
        self._budget = budget
        self._planner = planner

    def claims(self, now: float) -> list[Claim[Tracked]]:
        """The polls due now, each in its lane: a job past its expected finish (or at its
        deadline, for the last check before it is timed out) is a late poll."""
        return [
            Claim(self._lane(t, now), t.due_at, t)
            for t in self._runtime.jobs.values()
            if t.job.state is JobState.RUNNING and not t.busy and t.due_at <= now
        ]

    def _lane(self, tracked: Tracked, now: float) -> Lane:
        late = now >= tracked.job.deadline_at or self._planner.eta(tracked.job, now) is None
        return Lane.LATE_POLL if late else Lane.EARLY_POLL

    def begin(self, tracked: Tracked) -> None:
        """Poll the job; its budget token is already taken."""
        self._runtime.spawn_work(tracked, self.poll(tracked))

    async def poll(self, tracked: Tracked) -> None:
        job = tracked.job
        assert job.together_id is not None
        sent_at = self._runtime.now()
        try:
            status = await self._api.get_video(job.together_id)
        except TogetherError as exc:
            now = self._runtime.now()
            self._budget.failed(now, sent_at, exc)
            if now >= job.deadline_at + self._config.final_check_grace:
                await self._writer.finish(tracked, timed_out(job, now))
            else:
                self._wait_after(tracked, exc)
            return
        tracked.poll_failures = 0
        self._budget.answered(self._runtime.now(), sent_at, status)
        await self.apply(tracked, status)
        # Checked after a fresh answer, so a video that finished meanwhile is still delivered.
        now = self._runtime.now()
        if tracked.job.state is JobState.RUNNING and now >= job.deadline_at:
            await self._writer.finish(tracked, timed_out(tracked.job, now))

    def _wait_after(self, tracked: Tracked, exc: TogetherError) -> None:
        """Outages mean waiting, never failing the job: the deadline (and, past it, the grace
        for one last answer) bounds how long."""
        tracked.poll_failures += 1
        delay = backoff(
            tracked.poll_failures, self._config.retry_delay, self._config.max_retry_delay
        )
        wait = max(exc.retry_after or 0.0, delay)
        log.warning("Could not read its status (%s); next try in %.0f s", exc.message, wait)
        tracked.due_at = self._runtime.now() + wait

    async def apply(self, tracked: Tracked, status: VideoJob) -> None:
        """Carry out what a status from Together means (also used for a POST's answer)."""
        now = self._runtime.now()
        decision = after_status(tracked.job, status, now)
        if isinstance(decision, Finish):
            if decision.state is JobState.DELIVERING:
                self._observe(tracked, status, now)
            if await self._writer.finish(tracked, decision) and not tracked.job.state.is_final:
                tracked.due_at = now  # delivering: download at once
                self._runtime.wake.set()
            return
        changed = decision.provider_status
        if changed is not None and await self._writer.record_status(tracked, changed):
            self._writer.on_moved(tracked)  # the member sees Together's new status
        next_poll = self._planner.next_poll(tracked.job, now)
        tracked.due_at = min(next_poll, max(now, tracked.job.deadline_at))

    def _observe(self, tracked: Tracked, status: VideoJob, now: float) -> None:
        started = tracked.job.submitted_at
        if started is not None:
            self._planner.observe(tracked.job.model, (status.completed_at or now) - started)
