"""The one writer of a job's state: every move goes to the store first, then to the member."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from bot.engine.decisions import Finish, why
from bot.engine.ports import JobStore, LeaseStore
from bot.engine.runtime import Runtime
from bot.engine.tracked import Tracked
from bot.i18n import Text
from storage.models import Job, JobState

log = logging.getLogger("bot.engine")


class StateWriter:
    """Compare-and-set writes of jobs the engine tracks, and their bookkeeping.

    ``on_moved`` is told of every successful move but one to "delivered" (whose message the
    delivery itself has just shown), so the member sees it.
    """

    def __init__(self, store: JobStore, runtime: Runtime) -> None:
        self._store = store
        self._runtime = runtime
        self.on_moved: Callable[[Tracked], None] = lambda tracked: None

    async def move(self, tracked: Tracked, new_state: JobState, **changes: object) -> bool:
        """Compare-and-set the job's state; on success show it, on a lost race adopt the winner.

        With leases, the write also requires this process's lease. Returns False when another
        writer moved the job first: the working copy then holds what the store holds (or is
        dropped, if that is final or another process holds its lease now).
        """
        return await self._move(tracked, new_state, changes, leased=True)

    async def cancel(self, tracked: Tracked, reason: str | Text, *, alone: bool = True) -> bool:
        """A member's cancel of a queued job: it counts whatever process holds the lease (the
        holder's next write, made for "queued", then finds the job cancelled and drops it).

        `alone`: False while another task works the job (its claim, its submission); a lost
        race then leaves the working copy to that task, whose own write moved it on.
        """
        changes: dict[str, object] = {**why(reason), "finished_at": self._runtime.now()}
        return await self._move(tracked, JobState.CANCELLED, changes, leased=False, adopt=alone)

    async def _move(
        self,
        tracked: Tracked,
        new_state: JobState,
        changes: dict[str, object],
        leased: bool,
        adopt: bool = True,
    ) -> bool:
        job = tracked.job
        if new_state.is_final and new_state is not JobState.DELIVERED:
            changes["announced"] = False  # until the edit that shows it has landed
        store = self._leased() if leased else self._store
        updated = await store.transition(
            job.id, job.state, new_state, self._runtime.now(), **changes
        )
        if updated is None:
            if adopt and not await self._runtime.lease_lost(tracked):
                await self._adopt_winner(tracked, new_state)
            return False
        if updated.message_id is None and tracked.posted_message_id is not None:
            updated = dataclasses.replace(updated, message_id=tracked.posted_message_id)
        tracked.job = updated
        if updated.state is not JobState.DELIVERED:
            self.on_moved(tracked)
        if updated.state.is_final:
            self._runtime.jobs.pop(job.id, None)
        log.info("%s -> %s", job.state, new_state)
        self._count(updated, changes)
        return True

    def _leased(self) -> JobStore | LeaseStore:
        """Where the engine's writes go: through the lease when processes share the database."""
        return self._runtime.leases or self._store

    def _count(self, moved: Job, changes: dict[str, object]) -> None:
        """Tell the metrics: a final state, and Together's cost once it is stored (a job's
        cost is set by one move only, Together's end of it, so it is counted once)."""
        recorder = self._runtime.recorder
        if moved.state.is_final:
            recorder.job_finished(moved.state, moved.model)
        cost = changes.get("cost_usd")
        if isinstance(cost, int | float) and cost > 0:
            recorder.spent(moved.model, float(cost))

    async def finish(self, tracked: Tracked, decision: Finish) -> bool:
        return await self.move(tracked, decision.state, **decision.changes)

    async def _adopt_winner(self, tracked: Tracked, lost: JobState) -> None:
        job = tracked.job
        fresh = await self._store.get(job.id)
        log.info(
            "State moved elsewhere (now %s); %s not applied", fresh.state if fresh else "gone", lost
        )
        if fresh is None or fresh.state.is_final:
            self._runtime.jobs.pop(job.id, None)
        else:
            tracked.job = fresh

    async def record_status(self, tracked: Tracked, provider_status: str) -> bool:
        """Note Together's status of a running job; False if it is no longer running."""
        updated = await self._leased().update(
            tracked.job.id, JobState.RUNNING, self._runtime.now(), provider_status=provider_status
        )
        if updated is None:
            await self._runtime.lease_lost(tracked)
            return False
        tracked.job = updated
        return True

    async def requeue_unsent(self, tracked: Tracked) -> bool:
        """Put a job stored as "submitting" whose POST never left back in line (no edit)."""
        job = tracked.job
        back = await self._leased().transition(
            job.id, JobState.SUBMITTING, JobState.QUEUED, self._runtime.now()
        )
        if back is None:
            return False
        tracked.job = back
        return True

    async def cancel_untracked(self, job_id: int, reason: str | Text) -> Job | None:
        """Cancel a queued job this engine does not hold; None when it is no longer queued.

        Whatever process holds its lease: the member's act counts anywhere, and the holder's
        next write, made for "queued", finds the job cancelled and drops it.
        """
        now = self._runtime.now()
        cancelled = await self._store.transition(
            job_id,
            JobState.QUEUED,
            JobState.CANCELLED,
            now,
            **why(reason),
            finished_at=now,
            announced=False,
        )
        if cancelled is not None:
            self._runtime.recorder.job_finished(cancelled.state, cancelled.model)
        return cancelled

    async def announced(self, shown: Job) -> None:
        """The final state reached the member (or never can): stop showing it, drop the token."""
        # A final state never changes again, so this compare-and-set cannot lose a race.
        await self._store.update(
            shown.id, shown.state, self._runtime.now(), announced=True, interaction_token=""
        )

    async def remember_message(self, tracked: Tracked, message_id: int) -> None:
        """Without this, every later edit of a job that had no message would post another.

        A job whose message was deleted gets the new one in its place.
        """
        tracked.posted_message_id = message_id
        old = tracked.job.message_id
        if old != message_id:
            tracked.job = dataclasses.replace(tracked.job, message_id=message_id)
        if old is None:
            await self._store.set_message_id(tracked.job.id, message_id)
        elif old != message_id:
            await self._store.replace_message_id(tracked.job.id, old, message_id)
