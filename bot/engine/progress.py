"""Progress edits: the job's message follows its state, paced, coalesced, never reordered."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable

from bot.domain.scheduling import EditPacer, FairQueue, PollPlanner, spread
from bot.engine.decisions import backoff
from bot.engine.ports import JobStore, MessageUnreachable, Notifier, Progress
from bot.engine.runtime import Runtime
from bot.engine.tracked import TICKING_STATES, Tracked
from bot.engine.transitions import StateWriter
from storage.models import Job, JobState

log = logging.getLogger("bot.engine")

# Periodic edits are cosmetic (one per job every edit_interval): looking for due ones at most
# this often keeps a long queue from waking the loop for each job's turn.
EDIT_PASS_INTERVAL = 0.5
# Places in line are shown in those edits; ordering thousands of queued jobs on every pass of
# the loop cost more than the rest of the pass.
PLACES_INTERVAL = 1.0


class ProgressEdits:
    def __init__(
        self,
        runtime: Runtime,
        writer: StateWriter,
        store: JobStore,
        planner: PollPlanner,
    ) -> None:
        self._runtime = runtime
        self._config = runtime.config
        self._writer = writer
        self._store = store
        self._planner = planner
        self._pacer = EditPacer(runtime.config.edits_per_channel)
        self.notifier: Notifier | None = None
        self._places: dict[int, int] = {}
        self._places_at = -math.inf
        self._last_pass = -math.inf
        self._next_edit_at = -math.inf
        self._next_reannounce = -math.inf
        # Final states whose edit is under way or scheduled here; the periodic pass skips them.
        self._announcing: set[int] = set()

    # -- scheduling ----------------------------------------------------------------------

    def next_due(self) -> float:
        """When the next periodic edit or re-announcement pass is due."""
        edits = max(self._next_edit_at, self._last_pass + EDIT_PASS_INTERVAL)
        return min(edits, self._next_reannounce)

    def tick(self, now: float) -> None:
        if now >= self._last_pass + EDIT_PASS_INTERVAL:
            self._last_pass = now
            self._periodic_pass(now)
        if now >= self._next_reannounce:
            self._next_reannounce = now + self._config.reannounce_interval
            self._runtime.spawn(self.show_unannounced(), "reannounce")

    def update_places(self, queue: FairQueue, queued: Iterable[Job], now: float) -> None:
        if now >= self._places_at + PLACES_INTERVAL:
            self._places_at = now
            order = queue.order(queued)
            self._places = {job.id: place for place, job in enumerate(order, 1)}

    def _edit_due(self, tracked: Tracked) -> float:
        spread_by = 1 + 0.25 * spread(tracked.job.id)
        return tracked.last_edit_at + self._config.edit_interval * spread_by

    def _periodic_pass(self, now: float) -> None:
        """Edit the ticking jobs whose turn has come; note when the next turn comes."""
        full: set[int] = set()  # channels the pacer turned down in this pass
        next_edit_at = math.inf
        for tracked in list(self._runtime.jobs.values()):
            job = tracked.job
            if job.state not in TICKING_STATES or tracked.edit_pending:
                continue
            due = self._edit_due(tracked)
            if due <= now and job.channel_id not in full:
                if self._pacer.allows(job.channel_id, now):
                    self.request(tracked)
                    due = self._edit_due(tracked)
                else:
                    full.add(job.channel_id)
            next_edit_at = min(next_edit_at, due)
        # Kept rather than recomputed over every job on every loop pass; a job added meanwhile
        # waits at most for the loop's 1-second cap, which a cosmetic edit can afford.
        self._next_edit_at = next_edit_at
        self._pacer.forget_idle(now)

    async def show_unannounced(self) -> None:
        """Show final states that never reached their message (a crash, an outage)."""
        for job in await self._store.unannounced():
            if job.id not in self._announcing:
                self.request(Tracked(job))

    # -- edits ---------------------------------------------------------------------------

    def request(self, tracked: Tracked) -> None:
        """Ask for the message to show the job's latest state; edits coalesce, never reorder."""
        tracked.last_edit_at = self._runtime.now()
        self._pacer.record(tracked.job.channel_id, tracked.last_edit_at)
        if tracked.job.state.is_final and not tracked.job.announced:
            self._announcing.add(tracked.job.id)
        if tracked.edit_pending:
            return
        tracked.edit_pending = True
        self._runtime.spawn(self._edit(tracked), f"edit-{tracked.job.id}", tracked.job)

    async def _edit(self, tracked: Tracked) -> None:
        async with tracked.edit_lock:
            tracked.edit_pending = False
            job = tracked.job  # the latest snapshot, taken once the previous edit is done
            try:
                posted = await self._notifier().show(job, self._progress(job))
            except MessageUnreachable as exc:
                log.warning("Its message cannot be reached: %s", exc.reason)
                if job.state.is_final:
                    await self._announced(job)  # nobody is left there to tell
            except Exception as exc:
                tracked.edit_failures += 1
                # Passing by definition (an outage, a timeout): one line, the trace for DEBUG.
                log.warning("Progress edit failed (%s: %s)", type(exc).__name__, exc)
                log.debug("Progress edit failure", exc_info=True)
                self._after_failure(tracked, job)
            else:
                tracked.edit_failures = 0
                if posted is not None:
                    await self._writer.remember_message(tracked, posted)
                if job.state.is_final and not job.announced:
                    await self._announced(job)

    def _progress(self, job: Job) -> Progress:
        if job.state is JobState.QUEUED:
            return Progress(place=self._places.get(job.id))
        if job.state is JobState.RUNNING:
            return Progress(eta_seconds=self._planner.eta(job, self._runtime.now()))
        return Progress()

    def _after_failure(self, tracked: Tracked, job: Job) -> None:
        # A job's last word (failed, timed out, cancelled) gets no later edit to fix a lost
        # one, so it is retried, and after that by the periodic pass; a progress edit is simply
        # superseded by the next.
        if job.state.is_final and tracked.edit_failures < self._config.final_edit_attempts:
            delay = backoff(
                tracked.edit_failures, self._config.retry_delay, self._config.max_retry_delay
            )
            self._runtime.spawn(self._edit_later(tracked, delay), f"edit-{job.id}-retry", job)
        else:
            self._announcing.discard(job.id)

    async def _announced(self, job: Job) -> None:
        await self._writer.announced(job)
        self._announcing.discard(job.id)

    async def _edit_later(self, tracked: Tracked, delay: float) -> None:
        await asyncio.sleep(delay)
        self.request(tracked)

    def _notifier(self) -> Notifier:
        if self.notifier is None:
            raise RuntimeError("no notifier attached")
        return self.notifier
