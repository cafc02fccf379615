"""JobEngine: the bot's queue, submission, one polling scheduler, state transitions, delivery.

SQLite is the source of truth; the engine keeps an in-memory copy of the unfinished jobs so one
scheduler loop can decide what is due without querying the database every tick. Every change
goes to the store first (a compare-and-set on the job's state) and only then to the member.

This module imports neither discord nor aiosqlite: it talks to a JobStore, a VideoAPI and a
Notifier, hands delivery to a Courier (bot.delivery), and reads time from a Clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from bot.catalog import Catalog, ModelSpec
from bot.clock import Clock
from bot.delivery import (
    Courier,
    Delivered,
    DeliveryConfig,
    GiveUp,
    MessageUnreachable,
    VideoFetcher,
    VideoFitter,
)
from bot.keyframes import to_base64
from bot.scheduling import EditPacer, FairQueue, FixedPlanner, PollPlanner, RateBudget, spread
from bot.together import CreateVideoRequest, FrameImage, TogetherError, VideoJob, VideoMedia
from storage.models import UNFINISHED_STATES, Job, JobState

log = logging.getLogger(__name__)

# States that hold one of the bot's active slots (a request to Together is or was in flight).
ACTIVE_STATES = frozenset({JobState.SUBMITTING, JobState.RUNNING, JobState.DELIVERING})
# States whose message shows a clock that should keep moving between state changes.
TICKING_STATES = frozenset({JobState.QUEUED, JobState.RUNNING})
# Periodic edits are cosmetic (one per job every EDIT_INTERVAL): looking for due ones at most
# this often keeps a long queue from waking the loop for each job's turn.
EDIT_PASS_INTERVAL = 0.5
# Places in line are shown in those edits; ordering thousands of queued jobs on every pass of
# the loop cost more than the rest of the pass.
PLACES_INTERVAL = 1.0


class JobStore(Protocol):
    async def get(self, job_id: int) -> Job | None: ...

    async def transition(
        self, job_id: int, expected: JobState, new_state: JobState, now: float, **changes: object
    ) -> Job | None: ...

    async def update(
        self, job_id: int, expected: JobState, now: float, **changes: object
    ) -> Job | None: ...

    async def in_states(self, states: Iterable[JobState]) -> list[Job]: ...

    async def unannounced(self) -> list[Job]: ...

    async def set_message_id(self, job_id: int, message_id: int) -> bool:
        """Record the message if none is recorded; False when one already was."""
        ...

    async def replace_message_id(self, job_id: int, old_id: int, new_id: int) -> bool:
        """Point the job at a new message where its old one was deleted; False when the job's
        message is no longer ``old_id`` (another writer moved it first)."""
        ...

    async def media(self, job_id: int) -> dict[str, bytes]: ...


class VideoAPI(Protocol):
    async def create_video(self, request: CreateVideoRequest) -> VideoJob: ...

    async def get_video(self, job_id: str) -> VideoJob: ...


@dataclass(frozen=True)
class Progress:
    """What the engine knows beyond the job itself: its place in line, the time it may take."""

    place: int | None = None  # 1 = next to get a slot
    eta_seconds: float | None = None


class Notifier(Protocol):
    """Both methods return the id of a message they had to post because the job had none
    (or because the one it had was deleted).

    Both raise ``MessageUnreachable`` when the channel is gone or the bot may not post there:
    that is final. Any other error is taken as passing (an outage, a timeout, a rate limit)
    and the call is made again later.
    """

    async def show(self, job: Job, progress: Progress) -> int | None:
        """Render the job's current state in its progress message."""
        ...

    async def deliver(self, job: Job, video: Path | None) -> int | None:
        """Put the result in the job's message: the file, or Together's link when video is None.

        Must be safe to call again after a crash: if the video is already there, do nothing.
        May raise ``FileRefused`` when Discord will not take the file: the link goes instead.
        """
        ...


@dataclass(frozen=True)
class EngineConfig:
    workdir: Path
    poll_interval: float = 5.0
    edit_interval: float = 10.0
    max_active: int = 20
    max_active_per_guild: int = 10
    # Requests to Together (submissions and polls) in any one-second window; 0: unlimited.
    requests_per_second: float = 5.0
    # Periodic edits per channel in any 5 seconds (state changes always go out).
    edits_per_channel: int = 4
    submit_attempts: int = 3
    final_edit_attempts: int = 5
    retry_delay: float = 5.0
    max_retry_delay: float = 120.0
    # Deliveries retry passing faults at least this often, for as long as the video is in hand.
    max_delivery_delay: float = 60.0
    # Videos over the upload limit are downloaded up to this size and re-encoded to fit.
    max_download_bytes: int = 512 * 1024 * 1024
    # How long after completion Together's video link is assumed to work (not published).
    link_lifetime: float = 3600.0
    # Final states whose edit failed (an outage) are shown again this often.
    reannounce_interval: float = 60.0
    # At its deadline a job gets one last status check; while Together cannot answer it, the
    # check is retried for this long before the job is timed out.
    final_check_grace: float = 900.0


@dataclass
class _Tracked:
    """The engine's working copy of one unfinished job."""

    job: Job
    due_at: float = 0.0
    last_edit_at: float = -math.inf
    busy: bool = False
    attempts: int = 0
    poll_failures: int = 0
    edit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    edit_pending: bool = False
    edit_failures: int = 0
    # A message posted because the job had none; kept across transitions that race its write.
    posted_message_id: int | None = None
    # Where this process's submission of the job stands: being stored and built, built and
    # waiting for room in the request budget, or the POST under way. None: not submitting here
    # (a job found in "submitting" after a restart may have reached Together already).
    submission: Literal["preparing", "ready", "sending"] | None = None
    request: CreateVideoRequest | None = None
    accepted: VideoJob | None = None  # Together's answer, until it is stored


def _media(images: dict[str, bytes]) -> VideoMedia | None:
    frames: list[FrameImage] = []
    if "first_frame" in images:
        frames.append(FrameImage(input_image=to_base64(images["first_frame"]), frame=0))
    if "last_frame" in images:
        frames.append(FrameImage(input_image=to_base64(images["last_frame"]), frame="last"))
    references = [to_base64(images["reference"])] if "reference" in images else []
    if not frames and not references:
        return None
    return VideoMedia(frame_images=frames or None, reference_images=references or None)


def _resolution_and_ratio(width: int, height: int) -> tuple[str, str]:
    """1280x720 -> ("720p", "16:9"), for models that take these instead of width and height."""
    divisor = math.gcd(width, height)
    return f"{min(width, height)}p", f"{width // divisor}:{height // divisor}"


def build_request(
    job: Job, images: dict[str, bytes] | None = None, model: ModelSpec | None = None
) -> CreateVideoRequest:
    """The POST body for a stored job: exactly what the member asked for."""
    dimensions: dict[str, object] = {"width": job.width, "height": job.height}
    if model is not None and model.dimensions == "resolution_ratio":
        resolution, ratio = _resolution_and_ratio(job.width, job.height)
        dimensions = {"resolution": resolution, "ratio": ratio}
    return CreateVideoRequest(
        model=job.model,
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        seconds=str(job.seconds),
        fps=job.fps,
        steps=job.steps,
        seed=job.seed,
        guidance_scale=job.guidance_scale,
        output_format="WEBM" if job.output_format == "WEBM" else "MP4",
        media=_media(images or {}),
        **dimensions,  # type: ignore[arg-type]
    )


class JobEngine:
    def __init__(
        self,
        store: JobStore,
        api: VideoAPI,
        fetch: VideoFetcher,
        clock: Clock,
        config: EngineConfig,
        catalog: Catalog | None = None,
        fit: VideoFitter | None = None,
        planner: PollPlanner | None = None,
    ) -> None:
        self._catalog = catalog
        self._courier = Courier(
            fetch,
            clock,
            DeliveryConfig(
                workdir=config.workdir,
                retry_delay=config.retry_delay,
                max_retry_delay=config.max_delivery_delay,
                max_download_bytes=config.max_download_bytes,
                link_lifetime=config.link_lifetime,
            ),
            fit,
        )
        self._planner = planner or FixedPlanner(config.poll_interval)
        # Together counts requests as they arrive, and requests that left a window apart can
        # arrive inside one (the bench saw 11 in a second from a budget of 10): 5 % of slack.
        self._budget = RateBudget(config.requests_per_second, margin=0.05)
        self._queue = FairQueue()
        self._pacer = EditPacer(config.edits_per_channel)
        self._places: dict[int, int] = {}
        self._store = store
        self._api = api
        self._clock = clock
        self._config = config
        self._notifier: Notifier | None = None
        self._jobs: dict[int, _Tracked] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._accepting = True
        # Final states whose edit is under way or scheduled here; the periodic pass skips them.
        self._announcing: set[int] = set()
        self._next_reannounce = -math.inf
        self._last_edit_pass = -math.inf
        self._next_edit_at = -math.inf
        self._places_at = -math.inf

    # -- lifecycle -----------------------------------------------------------------------

    def attach(self, notifier: Notifier) -> None:
        self._notifier = notifier

    @property
    def accepting(self) -> bool:
        return self._accepting

    async def recover(self) -> None:
        """Pick up every unfinished job from the store, by the restart rules of DESIGN.md."""
        self._courier.clean_leftovers()
        for job in await self._store.in_states(UNFINISHED_STATES):
            if job.state is JobState.SUBMITTING:
                # The POST may or may not have reached Together; a second one could bill twice.
                tracked = _Tracked(job)
                self._jobs[job.id] = tracked
                self._spawn_work(tracked, self._fail_interrupted(tracked))
            else:
                self._jobs[job.id] = _Tracked(job)
        if self._jobs:
            log.info("Resumed %d unfinished job(s) from the database", len(self._jobs))
        await self._show_unannounced()

    async def _show_unannounced(self) -> None:
        """Show final states that never reached their message (a crash, an outage)."""
        for job in await self._store.unannounced():
            if job.id not in self._announcing:
                self._request_edit(_Tracked(job))

    async def start(self) -> None:
        if self._notifier is None:
            raise RuntimeError("JobEngine.start() needs a notifier: call attach() first")
        await self.recover()
        self._loop_task = asyncio.create_task(self._run(), name="job-engine")

    async def stop(self, grace: float = 8.0) -> None:
        """Stop taking jobs, let in-flight work finish (bounded), then stop the loop."""
        self._accepting = False
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self._unprepare()

    async def _unprepare(self) -> None:
        """Put back in line the jobs stored as "submitting" whose POST never left.

        Certain they never reached Together, so the next start submits them instead of
        failing them as interrupted.
        """
        for tracked in list(self._jobs.values()):
            job = tracked.job
            if tracked.submission != "ready" or job.state is not JobState.SUBMITTING:
                continue
            back = await self._store.transition(
                job.id, JobState.SUBMITTING, JobState.QUEUED, self._clock.now()
            )
            if back is not None:
                tracked.job, tracked.submission, tracked.request = back, None, None
                log.info("Job %d: not sent before shutdown; back in the queue", job.id)

    def enqueue(self, job: Job) -> None:
        """Track a job the command has just stored and answered; the loop picks it up at once."""
        if job.state.is_final:
            return
        self._jobs.setdefault(job.id, _Tracked(job))
        self._wake.set()

    async def cancel(self, job_id: int, reason: str) -> Job | None:
        """Cancel a job still waiting in the bot's queue; None when it is too late.

        Goes through the engine so its working copy, its edits and the store agree: after
        submission Together cannot cancel, and the compare-and-set settles any race with it.
        """
        now = self._clock.now()
        tracked = self._jobs.get(job_id)
        if tracked is None:
            return await self._store.transition(
                job_id,
                JobState.QUEUED,
                JobState.CANCELLED,
                now,
                failure_reason=reason,
                finished_at=now,
                announced=False,
            )
        if tracked.job.state is not JobState.QUEUED or tracked.busy:
            return None
        tracked.busy = True  # keep the scheduler off it while the cancel is written
        try:
            moved = await self._move(
                tracked, JobState.CANCELLED, failure_reason=reason, finished_at=now
            )
        finally:
            tracked.busy = False
        return tracked.job if moved else None

    def tracked(self, job_id: int) -> Job | None:
        tracked = self._jobs.get(job_id)
        return tracked.job if tracked else None

    async def drain(self) -> None:
        """Wait until no submission, poll, delivery or edit is in flight (for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- the scheduler -------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("Job engine tick failed; continuing")
            self._wake.clear()
            delay = min(1.0, max(0.05, self._next_due() - self._clock.now()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _next_due(self) -> float:
        """When the loop next has something to start.

        Events wake it sooner: a new job, a slot or a budget token freed (every finished piece
        of work sets the wake event). A job waiting for a slot is therefore not "due": counting
        it made the loop spin every 50 ms while thousands waited.
        """
        now = self._clock.now()
        active, by_guild = self._active_counts()
        room = self._accepting and active < self._config.max_active
        per_guild = self._config.max_active_per_guild
        work = math.inf
        for tracked in self._jobs.values():
            job = tracked.job
            if tracked.busy:
                continue
            waiting = job.state is JobState.QUEUED and tracked.submission is None
            if not waiting or (room and by_guild.get(job.guild_id, 0) < per_guild):
                work = min(work, tracked.due_at)
        if work < math.inf:
            work = max(work, self._budget.next_free(now))
        edits = max(self._next_edit_at, self._last_edit_pass + EDIT_PASS_INTERVAL)
        return min(work, edits, self._next_reannounce, now + 1.0)

    async def tick(self) -> None:
        """One pass: start whatever is due. Work runs in tasks; this never waits for Together."""
        now = self._clock.now()
        self._start_sends(now)
        self._start_submissions(now)
        self._start_polls(now)
        for tracked in list(self._jobs.values()):
            delivering = tracked.job.state is JobState.DELIVERING
            if delivering and not tracked.busy and tracked.due_at <= now:
                self._spawn_work(tracked, self._deliver(tracked))
        if now >= self._last_edit_pass + EDIT_PASS_INTERVAL:
            self._last_edit_pass = now
            self._start_periodic_edits(now)
        if now >= self._next_reannounce:
            self._next_reannounce = now + self._config.reannounce_interval
            self._spawn(self._show_unannounced(), "reannounce")

    def _active_counts(self) -> tuple[int, dict[int, int]]:
        total, by_guild = 0, dict[int, int]()
        for tracked in self._jobs.values():
            # A queued job whose submission is under way holds a slot before its state says so.
            if tracked.job.state in ACTIVE_STATES or tracked.submission is not None:
                total += 1
                by_guild[tracked.job.guild_id] = by_guild.get(tracked.job.guild_id, 0) + 1
        return total, by_guild

    def _start_submissions(self, now: float) -> None:
        queued = [
            t.job
            for t in self._jobs.values()
            if t.job.state is JobState.QUEUED and not t.busy and t.due_at <= now
        ]
        if now >= self._places_at + PLACES_INTERVAL:
            self._places_at = now
            order = self._queue.order(queued)
            self._places = {job.id: place for place, job in enumerate(order, 1)}
        if not self._accepting:
            return
        active, by_guild = self._active_counts()
        # Submissions are prepared (stored as "submitting", body built) only a budget's worth
        # ahead of the POSTs: a job prepared long before its POST would be failed, not sent,
        # if the bot died meanwhile.
        pending = sum(1 for t in self._jobs.values() if t.submission in ("preparing", "ready"))
        ahead = self._budget.capacity if not self._budget.unlimited else math.inf
        while queued and active < self._config.max_active and pending < ahead:
            if self._budget.next_free(now) > now:
                return
            job = self._queue.pick(queued, by_guild, self._config.max_active_per_guild)
            if job is None:
                return
            queued.remove(job)
            self._queue.served(job)
            active += 1
            pending += 1
            by_guild[job.guild_id] = by_guild.get(job.guild_id, 0) + 1
            tracked = self._jobs[job.id]
            tracked.submission = "preparing"
            self._spawn_work(tracked, self._submit(tracked))

    def _start_sends(self, now: float) -> None:
        """POST the submissions that are ready, and settle any whose task ended half-way."""
        due = [
            t
            for t in self._jobs.values()
            if (t.submission is not None or t.job.state is JobState.SUBMITTING)
            and not t.busy
            and t.due_at <= now
        ]
        for tracked in sorted(due, key=lambda t: (t.due_at, t.job.id)):
            job = tracked.job
            if job.state is JobState.QUEUED and tracked.submission == "preparing":
                tracked.submission = None  # failed before it was stored: back in line
            if job.state is not JobState.SUBMITTING:
                continue
            if tracked.submission == "ready":
                if self._budget.try_take(now):
                    self._spawn_work(tracked, self._send(tracked))
            elif tracked.submission == "preparing":
                self._spawn_work(tracked, self._submit(tracked))
            elif tracked.accepted is not None:
                self._spawn_work(tracked, self._record_accepted(tracked, tracked.accepted))
            else:
                # Not submitted by this process, or its POST may have gone out: never resend.
                restarted = tracked.submission is None
                self._spawn_work(tracked, self._fail_interrupted(tracked, restarted))

    def _start_polls(self, now: float) -> None:
        running = [t for t in self._jobs.values() if t.job.state is JobState.RUNNING and not t.busy]
        # Most overdue first: under a tight budget the longest-waiting poll goes next. A job at
        # its deadline is polled once more before it is timed out (see _poll).
        for tracked in sorted(running, key=lambda t: t.due_at):
            if tracked.due_at <= now and self._budget.try_take(now):
                self._spawn_work(tracked, self._poll(tracked))

    def _edit_due(self, tracked: _Tracked) -> float:
        spread_by = 1 + 0.25 * spread(tracked.job.id)
        return tracked.last_edit_at + self._config.edit_interval * spread_by

    def _start_periodic_edits(self, now: float) -> None:
        """Edit the ticking jobs whose turn has come; note when the next turn comes."""
        full: set[int] = set()  # channels the pacer turned down in this pass
        next_edit_at = math.inf
        for tracked in list(self._jobs.values()):
            job = tracked.job
            if job.state not in TICKING_STATES or tracked.edit_pending:
                continue
            due = self._edit_due(tracked)
            if due <= now and job.channel_id not in full:
                if self._pacer.allows(job.channel_id, now):
                    self._request_edit(tracked)
                    due = self._edit_due(tracked)
                else:
                    full.add(job.channel_id)
            next_edit_at = min(next_edit_at, due)
        # Kept rather than recomputed by _next_due over every job; a job added meanwhile
        # waits at most for the loop's 1-second cap, which a cosmetic edit can afford.
        self._next_edit_at = next_edit_at
        self._pacer.forget_idle(now)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn_work(self, tracked: _Tracked, coro: Coroutine[Any, Any, None]) -> None:
        tracked.busy = True

        async def run() -> None:
            try:
                await coro
            except Exception:
                log.exception("Job %d: unexpected error; will try again", tracked.job.id)
                tracked.due_at = self._clock.now() + self._config.retry_delay
            finally:
                tracked.busy = False
                self._wake.set()

        self._spawn(run(), f"job-{tracked.job.id}")

    def _backoff(self, attempt: int) -> float:
        delay = self._config.retry_delay * (2 ** max(0, attempt - 1))
        return float(min(self._config.max_retry_delay, delay))

    # -- state changes -------------------------------------------------------------------

    async def _move(self, tracked: _Tracked, new_state: JobState, **changes: object) -> bool:
        """Compare-and-set the job's state; on success show it, on a lost race adopt the winner."""
        job = tracked.job
        if new_state.is_final and new_state is not JobState.DELIVERED:
            changes["announced"] = False  # until the edit that shows it has landed
        updated = await self._store.transition(
            job.id, job.state, new_state, self._clock.now(), **changes
        )
        if updated is None:
            fresh = await self._store.get(job.id)
            log.info(
                "Job %d: state moved elsewhere (now %s); %s not applied",
                job.id,
                fresh.state if fresh else "gone",
                new_state,
            )
            if fresh is None or fresh.state.is_final:
                self._jobs.pop(job.id, None)
            else:
                tracked.job = fresh
            return False
        if updated.message_id is None and tracked.posted_message_id is not None:
            updated = dataclasses.replace(updated, message_id=tracked.posted_message_id)
        tracked.job = updated
        if updated.state is not JobState.DELIVERED:
            self._request_edit(tracked)
        if updated.state.is_final:
            self._jobs.pop(job.id, None)
        log.info("Job %d: %s -> %s", job.id, job.state, new_state)
        return True

    async def _fail_interrupted(self, tracked: _Tracked, restarted: bool = True) -> None:
        when = "The bot restarted" if restarted else "Something went wrong in the bot"
        await self._move(
            tracked,
            JobState.FAILED,
            failure_reason=(
                f"{when} while this job was being sent to Together. It was stopped "
                "rather than sent again, so you are not charged twice. Please try again."
            ),
            finished_at=self._clock.now(),
        )

    async def _submit(self, tracked: _Tracked) -> None:
        """Store the job as "submitting" and build its body; POST it if the budget has room."""
        queued = tracked.job.state is JobState.QUEUED
        if queued and not await self._move(tracked, JobState.SUBMITTING):
            tracked.submission = None
            return
        job = tracked.job
        model = self._catalog.get(job.model) if self._catalog else None
        tracked.request = build_request(job, await self._store.media(job.id), model)
        tracked.submission = "ready"
        # The budget token is taken right before the request goes out, never before a write:
        # a token taken early would be spent late, bunched with the next window's requests.
        now = self._clock.now()
        if self._budget.try_take(now):
            await self._send(tracked)
        else:
            tracked.due_at = self._budget.next_free(now)

    async def _send(self, tracked: _Tracked) -> None:
        job, request = tracked.job, tracked.request
        assert request is not None and job.state is JobState.SUBMITTING
        tracked.submission, tracked.request = "sending", None
        try:
            created = await self._api.create_video(request)
        except TogetherError as exc:
            await self._submit_failed(tracked, exc)
            return
        # Logged before it is stored: should the write fail for good, the id is still on record.
        log.info("Job %d: accepted by Together as %s", job.id, created.id)
        tracked.accepted = created
        await self._record_accepted(tracked, created)

    async def _record_accepted(self, tracked: _Tracked, created: VideoJob) -> None:
        """Store Together's id; retried by the scheduler if the write fails, never re-POSTed."""
        job = tracked.job
        now = self._clock.now()
        # The job's time limit (the model's, from the catalog) counts from submission:
        # time spent waiting in the bot's own queue is not Together's.
        time_limit = job.deadline_at - job.created_at
        moved = await self._move(
            tracked,
            JobState.RUNNING,
            together_id=created.id,
            provider_status=created.status or "queued",
            submitted_at=now,
            deadline_at=now + time_limit,
        )
        tracked.submission, tracked.accepted = None, None
        if moved:
            tracked.attempts = 0
            if created.status is not None and created.is_finished:
                await self._apply_status(tracked, created)
            else:
                tracked.due_at = self._planner.next_poll(tracked.job, now)

    async def _submit_failed(self, tracked: _Tracked, exc: TogetherError) -> None:
        tracked.submission = None
        tracked.attempts += 1
        retryable = exc.request_not_created and exc.status in (None, 429)
        if retryable and tracked.attempts < self._config.submit_attempts:
            # Certain that no job was created (never connected, or rate-limited): safe to retry.
            wait = max(exc.retry_after or 0.0, self._backoff(tracked.attempts))
            log.warning(
                "Job %d: Together did not take the job (%s); retrying in %.0f s",
                tracked.job.id,
                exc.message,
                wait,
            )
            tracked.due_at = self._clock.now() + wait
            await self._move(tracked, JobState.QUEUED)
            return
        if exc.request_not_created:
            reason = f"Together refused the request: {exc.message}"
        else:
            reason = (
                f"Together did not confirm the job ({exc.message}). It was not sent again, "
                "so you are not charged twice."
            )
        log.warning("Job %d: submission failed: %s", tracked.job.id, exc.message)
        await self._move(
            tracked, JobState.FAILED, failure_reason=reason, finished_at=self._clock.now()
        )

    async def _poll(self, tracked: _Tracked) -> None:
        job = tracked.job
        assert job.together_id is not None
        try:
            status = await self._api.get_video(job.together_id)
        except TogetherError as exc:
            # Outages mean waiting, never failing the job: the deadline (and, past it, the
            # grace for one last answer) bounds how long.
            if self._clock.now() >= job.deadline_at + self._config.final_check_grace:
                await self._time_out(tracked)
                return
            tracked.poll_failures += 1
            wait = max(exc.retry_after or 0.0, self._backoff(tracked.poll_failures))
            log.warning(
                "Job %d: could not read its status (%s); next try in %.0f s",
                job.id,
                exc.message,
                wait,
            )
            tracked.due_at = self._clock.now() + wait
            return
        tracked.poll_failures = 0
        await self._apply_status(tracked, status)
        # Checked after a fresh answer, so a video that finished meanwhile is still delivered.
        if tracked.job.state is JobState.RUNNING and self._clock.now() >= job.deadline_at:
            await self._time_out(tracked)

    async def _apply_status(self, tracked: _Tracked, status: VideoJob) -> None:
        now = self._clock.now()
        if status.is_completed:
            if not status.video_url:
                await self._move(
                    tracked,
                    JobState.FAILED,
                    failure_reason="Together finished the job but sent no video link.",
                    provider_status=status.status,
                    cost_usd=status.cost,
                    finished_at=now,
                )
                return
            started = tracked.job.submitted_at
            if started is not None:
                self._planner.observe(tracked.job.model, (status.completed_at or now) - started)
            if await self._move(
                tracked,
                JobState.DELIVERING,
                provider_status=status.status,
                video_url=status.video_url,
                cost_usd=status.cost,
                seed=status.seed if status.seed is not None else tracked.job.seed,
                finished_at=status.completed_at or now,
            ):
                tracked.due_at = now
                self._wake.set()
        elif status.is_failed:
            reason = status.error_message or f"Together reported the job as {status.status}."
            await self._move(
                tracked,
                JobState.FAILED,
                failure_reason=reason,
                provider_status=status.status,
                cost_usd=status.cost,
                finished_at=now,
            )
        else:
            if status.status and status.status != tracked.job.provider_status:
                updated = await self._store.update(
                    tracked.job.id, JobState.RUNNING, now, provider_status=status.status
                )
                if updated is not None:
                    tracked.job = updated
                    self._request_edit(tracked)
            next_poll = self._planner.next_poll(tracked.job, now)
            tracked.due_at = min(next_poll, max(now, tracked.job.deadline_at))

    async def _time_out(self, tracked: _Tracked) -> None:
        job = tracked.job
        minutes = round((job.deadline_at - (job.submitted_at or job.created_at)) / 60)
        await self._move(
            tracked,
            JobState.TIMED_OUT,
            failure_reason=f"Together had not finished after {minutes} minutes, so the job "
            "was stopped.",
            finished_at=self._clock.now(),
        )

    async def _deliver(self, tracked: _Tracked) -> None:
        """One delivery attempt; the Courier keeps the file between attempts."""
        job = tracked.job

        async def upload(job: Job, video: Path | None) -> int | None:
            async with tracked.edit_lock:
                return await self._notifier_or_fail().deliver(job, video)

        outcome = await self._courier.attempt(job, upload)
        if isinstance(outcome, Delivered):
            if outcome.posted_message_id is not None:
                await self._remember_message(tracked, outcome.posted_message_id)
            await self._move(
                tracked,
                JobState.DELIVERED,
                delivered_at=self._clock.now(),
                delivery=outcome.mode,
                interaction_token="",  # the message shows its end: the token is not needed
            )
        elif isinstance(outcome, GiveUp):
            await self._move(
                tracked,
                JobState.FAILED,
                failure_reason=outcome.reason,
                delivery="failed",
            )
        else:
            tracked.due_at = self._clock.now() + outcome.after
            return
        self._courier.release(job.id)

    # -- progress edits ------------------------------------------------------------------

    def _notifier_or_fail(self) -> Notifier:
        if self._notifier is None:
            raise RuntimeError("no notifier attached")
        return self._notifier

    def _request_edit(self, tracked: _Tracked) -> None:
        """Ask for the message to show the job's latest state; edits coalesce, never reorder."""
        tracked.last_edit_at = self._clock.now()
        self._pacer.record(tracked.job.channel_id, tracked.last_edit_at)
        if tracked.job.state.is_final and not tracked.job.announced:
            self._announcing.add(tracked.job.id)
        if tracked.edit_pending:
            return
        tracked.edit_pending = True
        self._spawn(self._edit(tracked), f"edit-{tracked.job.id}")

    async def _edit(self, tracked: _Tracked) -> None:
        async with tracked.edit_lock:
            tracked.edit_pending = False
            job = tracked.job  # the latest snapshot, taken once the previous edit is done
            progress = Progress(
                place=self._places.get(job.id) if job.state is JobState.QUEUED else None,
                eta_seconds=self._planner.eta(job, self._clock.now())
                if job.state is JobState.RUNNING
                else None,
            )
            try:
                posted = await self._notifier_or_fail().show(job, progress)
            except MessageUnreachable as exc:
                log.warning("Job %d: its message cannot be reached: %s", job.id, exc.reason)
                if job.state.is_final:
                    await self._announced(job)  # nobody is left there to tell
            except Exception:
                tracked.edit_failures += 1
                log.warning("Job %d: progress edit failed", job.id, exc_info=True)
                # A job's last word (failed, timed out, cancelled) gets no later edit to fix a
                # lost one, so it is retried, and after that by the periodic pass; a progress
                # edit is simply superseded by the next.
                if job.state.is_final and tracked.edit_failures < self._config.final_edit_attempts:
                    delay = self._backoff(tracked.edit_failures)
                    self._spawn(self._edit_later(tracked, delay), f"edit-{job.id}-retry")
                else:
                    self._announcing.discard(job.id)
            else:
                tracked.edit_failures = 0
                if posted is not None:
                    await self._remember_message(tracked, posted)
                if job.state.is_final and not job.announced:
                    await self._announced(job)

    async def _announced(self, shown: Job) -> None:
        """The final state reached the member (or never can): stop showing it, drop the token."""
        # A final state never changes again, so this compare-and-set cannot lose a race.
        await self._store.update(
            shown.id, shown.state, self._clock.now(), announced=True, interaction_token=""
        )
        self._announcing.discard(shown.id)

    async def _remember_message(self, tracked: _Tracked, message_id: int) -> None:
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

    async def _edit_later(self, tracked: _Tracked, delay: float) -> None:
        await asyncio.sleep(delay)
        self._request_edit(tracked)
