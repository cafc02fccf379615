"""Submission: take jobs from the fair queue and POST them, never twice.

A job is stored as "submitting" before its POST leaves, and only a budget's worth of jobs are
prepared ahead of their POSTs. A POST that may have reached Together is never sent again: an
unclear answer fails the job instead (see ``Submission`` for the sub-states).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from bot.domain.budget import Claim, Lane
from bot.domain.catalog import Catalog
from bot.domain.scheduling import FairQueue, PollPlanner
from bot.engine.budget import RequestBudget
from bot.engine.chains import ChainWork, PartGone, starts_from_parent_frame
from bot.engine.decisions import (
    RetrySubmission,
    after_submit_error,
    backoff,
    cannot_extend,
    input_gone,
    interrupted,
)
from bot.engine.polling import Poller
from bot.engine.ports import JobStore, Notifier, VideoAPI
from bot.engine.request import build_request
from bot.engine.runtime import Runtime
from bot.engine.tracked import Submission, Tracked
from bot.engine.transitions import StateWriter
from bot.log_context import about_job
from bot.together.errors import TogetherError
from bot.together.models import VideoJob
from storage.models import Derivation, Job, JobState, MediaLink

log = logging.getLogger("bot.engine")


class Submitter:
    def __init__(
        self,
        runtime: Runtime,
        writer: StateWriter,
        store: JobStore,
        api: VideoAPI,
        budget: RequestBudget,
        planner: PollPlanner,
        poller: Poller,
        catalog: Catalog | None,
        *,
        notifier: Callable[[], Notifier],
        chains: ChainWork | None = None,
    ) -> None:
        self._runtime = runtime
        self._config = runtime.config
        self._writer = writer
        self._store = store
        self._api = api
        self._budget = budget
        self._planner = planner
        self._poller = poller
        self._catalog = catalog
        self._notifier = notifier
        self._chains = chains
        self.queue = FairQueue()
        # Set by the engine: whether this ready job gets a token now, among every claim.
        self.token_now: Callable[[Tracked], bool] = lambda tracked: False

    # -- scheduling ----------------------------------------------------------------------

    def waiting(self, now: float) -> list[Job]:
        """Queued jobs that may be picked now."""
        return [
            t.job
            for t in self._runtime.jobs.values()
            if t.job.state is JobState.QUEUED and not t.busy and t.due_at <= now
        ]

    def start(self, now: float, queued: list[Job], active: int, by_guild: dict[int, int]) -> None:
        """Prepare the next submissions the slots and the budget have room for."""
        # Submissions are prepared (stored as "submitting", body built) only a budget's worth
        # ahead of the POSTs: a job prepared long before its POST would be failed, not sent,
        # if the bot died meanwhile.
        pending = sum(
            1
            for t in self._runtime.jobs.values()
            if t.submission in (Submission.PREPARING, Submission.READY)
        )
        ahead = self._budget.capacity if not self._budget.unlimited else math.inf
        while queued and active < self._config.max_active and pending < ahead:
            if self._budget.next_free(now) > now:
                return
            job = self.queue.pick(queued, by_guild, self._config.max_active_per_guild)
            if job is None:
                return
            queued.remove(job)
            self.queue.served(job)
            active += 1
            pending += 1
            by_guild[job.guild_id] = by_guild.get(job.guild_id, 0) + 1
            tracked = self._runtime.jobs[job.id]
            tracked.submission = Submission.PREPARING
            self._runtime.spawn_work(tracked, self.submit(tracked))

    def claims(self, now: float) -> list[Claim[Tracked]]:
        """The submissions built and waiting for a budget token (their POST)."""
        return [
            Claim(Lane.SUBMIT, t.due_at, t)
            for t in self._runtime.jobs.values()
            if t.submission is Submission.READY
            and t.job.state is JobState.SUBMITTING
            and not t.busy
            and t.due_at <= now
        ]

    def send(self, tracked: Tracked) -> None:
        """POST the job; its budget token is already taken."""
        self._runtime.spawn_work(tracked, self._send(tracked))

    def start_sends(self, now: float) -> None:
        """Settle the submissions whose task ended half-way (ready ones wait for a token)."""
        due = [
            t
            for t in self._runtime.jobs.values()
            if (t.submission is not None or t.job.state is JobState.SUBMITTING)
            and not t.busy
            and t.due_at <= now
        ]
        for tracked in sorted(due, key=lambda t: (t.due_at, t.job.id)):
            self._settle(tracked, now)

    def _settle(self, tracked: Tracked, now: float) -> None:
        job = tracked.job
        if job.state is JobState.QUEUED and tracked.submission is Submission.PREPARING:
            tracked.submission = None  # failed before it was stored: back in line
        if job.state is not JobState.SUBMITTING:
            return
        if tracked.submission is Submission.READY:
            return  # a claim for the next token: see claims
        if tracked.submission is Submission.PREPARING:
            self._runtime.spawn_work(tracked, self.submit(tracked))
        elif tracked.accepted is not None:
            self._runtime.spawn_work(tracked, self._record_accepted(tracked, tracked.accepted))
        else:
            # Not submitted by this process, or its POST may have gone out: never resend.
            restarted = tracked.submission is None
            self._runtime.spawn_work(tracked, self.fail_interrupted(tracked, restarted))

    # -- steps ---------------------------------------------------------------------------

    async def fail_interrupted(self, tracked: Tracked, restarted: bool = True) -> None:
        await self._writer.finish(tracked, interrupted(self._runtime.now(), restarted))

    async def submit(self, tracked: Tracked) -> None:
        """Store the job as "submitting" and build its body; POST it if the budget has room."""
        queued = tracked.job.state is JobState.QUEUED
        if queued and tracked.job.derivation is Derivation.JOIN:
            await self._start_join(tracked)
            return
        if queued and not await self._prepared(tracked):
            return
        if queued and not await self._writer.move(tracked, JobState.SUBMITTING):
            tracked.submission = None
            return
        job = tracked.job
        model = self._catalog.get(job.model) if self._catalog else None
        links = await self._fresh_links(tracked)
        if links is None:
            tracked.submission = None  # failed unsent
            return
        tracked.request = build_request(job, await self._store.media(job.id), model, links)
        tracked.submission = Submission.READY
        # The budget token is taken right before the request goes out, never before a write
        # (a token taken early would be spent late, bunched with the next window's requests),
        # and weighed against the polls waiting (see claims); without one the loop sends it.
        tracked.due_at = self._runtime.now()
        if self.token_now(tracked):
            await self._send(tracked)

    async def _start_join(self, tracked: Tracked) -> None:
        """A Join is made by the bot from videos already delivered: never sent to Together."""
        tracked.submission = None
        if await self._writer.move(tracked, JobState.DELIVERING, finished_at=self._runtime.now()):
            tracked.due_at = self._runtime.now()
            self._runtime.wake.set()

    async def _prepared(self, tracked: Tracked) -> bool:
        """Make what the job needs before it can be sent (Extend's first frame), while it is
        still queued: a restart meanwhile just does it again. False: not ready (it waits, or
        it failed)."""
        job = tracked.job
        # Only an Extend from a frame reads its images here: every other job goes straight on.
        if self._chains is None or not starts_from_parent_frame(job):
            return True
        try:
            await self._chains.ensure_first_frame(job)
        except PartGone as exc:
            tracked.submission = None
            await self._writer.finish(tracked, cannot_extend(exc.reason, self._runtime.now()))
            return False
        except Exception as exc:  # Discord unreachable, say: the job waits its turn again
            tracked.submission = None
            tracked.attempts += 1
            wait = backoff(tracked.attempts, self._config.retry_delay, self._config.max_retry_delay)
            log.warning("Could not take the last frame (%s); again in %.0f s", exc, wait)
            tracked.due_at = self._runtime.now() + wait
            return False
        return True

    async def _fresh_links(self, tracked: Tracked) -> list[MediaLink] | None:
        """The job's links, each valid for a while yet; None when one cannot be had (the job
        is then failed, before anything was sent, so nothing is charged).

        Links from a message are fetched again when they are about to expire. A slash
        command's attachment is on no message: its link is used while it lasts.
        """
        links = await self._store.links(tracked.job.id)
        now = self._runtime.now()
        fresh: list[MediaLink] = []
        for link in links:
            expires = link.expires_at
            if expires is None or expires - now > self._config.input_link_margin:
                fresh.append(link)
                continue
            renewed: MediaLink | None = None
            if link.refreshable:
                try:
                    renewed = await self._notifier().fresh_link(link)
                except Exception as exc:  # Discord is down: the old link may still do
                    log.warning("Could not renew its %s link (%s)", link.kind, exc)
                    renewed = link if expires > now else None
            elif expires > now:
                renewed = link
            if renewed is None:
                await self._writer.finish(tracked, input_gone(link.kind, now))
                return None
            fresh.append(renewed)
        return fresh

    async def _send(self, tracked: Tracked) -> None:
        job, request = tracked.job, tracked.request
        assert request is not None and job.state is JobState.SUBMITTING
        tracked.submission, tracked.request = Submission.SENDING, None
        sent_at = self._runtime.now()
        try:
            created = await self._api.create_video(request)
        except TogetherError as exc:
            self._budget.failed(self._runtime.now(), sent_at, exc)
            await self._failed(tracked, exc)
            return
        self._budget.answered(self._runtime.now(), sent_at, created)
        # Logged before it is stored: should the write fail for good, the id is still on record.
        log.info("Accepted by Together as %s", created.id)
        tracked.accepted = created
        await self._record_accepted(tracked, created)

    async def _record_accepted(self, tracked: Tracked, created: VideoJob) -> None:
        """Store Together's id; retried by the scheduler if the write fails, never re-POSTed."""
        job = tracked.job
        now = self._runtime.now()
        # The job's time limit (the model's, from the catalog) counts from submission:
        # time spent waiting in the bot's own queue is not Together's.
        time_limit = job.deadline_at - job.created_at
        moved = await self._writer.move(
            tracked,
            JobState.RUNNING,
            together_id=created.id,
            provider_status=created.status or "queued",
            submitted_at=now,
            deadline_at=now + time_limit,
        )
        tracked.submission, tracked.accepted = None, None
        if moved:
            tracked.attempts = tracked.rate_limited = 0
            if created.status is not None and created.is_finished:
                await self._poller.apply(tracked, created)
            else:
                tracked.due_at = self._planner.next_poll(tracked.job, now)

    async def _failed(self, tracked: Tracked, exc: TogetherError) -> None:
        tracked.submission = None
        # A 429 is the account's budget, not this job's fault: it never uses up an attempt,
        # but it does lengthen the wait.
        if exc.status == 429:
            tracked.rate_limited += 1
        else:
            tracked.attempts += 1
        tries = tracked.attempts + tracked.rate_limited
        delay = backoff(tries, self._config.retry_delay, self._config.max_retry_delay)
        now = self._runtime.now()
        decision = after_submit_error(
            exc, tracked.attempts, self._config.submit_attempts, delay, now
        )
        if isinstance(decision, RetrySubmission):
            log.warning(
                "Together did not take the job (%s); retrying in %.0f s", exc.message, decision.wait
            )
            tracked.due_at = now + decision.wait
            await self._writer.move(tracked, JobState.QUEUED)
            return
        log.warning("Submission failed: %s", exc.message)
        await self._writer.finish(tracked, decision)

    async def unprepare(self) -> None:
        """Put back in line the jobs stored as "submitting" whose POST never left.

        Certain they never reached Together, so the next start submits them instead of
        failing them as interrupted.
        """
        for tracked in list(self._runtime.jobs.values()):
            if tracked.submission is not Submission.READY:
                continue
            if tracked.job.state is not JobState.SUBMITTING:
                continue
            with about_job(tracked.job):  # called at shutdown, outside any job's task
                if await self._writer.requeue_unsent(tracked):
                    tracked.submission, tracked.request = None, None
                    log.info("Not sent before shutdown; back in the queue")
