"""JobEngine: the loop that starts each job's next step, and the engine's public face.

SQLite is the source of truth; the engine keeps an in-memory copy of the unfinished jobs so one
loop can decide what is due without querying the database every pass. The steps themselves
belong to collaborators: the Submitter (queue to Together), the Poller (status reads),
Deliveries (the video into Discord), ProgressEdits (the message follows the job), all writing
through the one StateWriter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

from bot.clock import Clock
from bot.domain.budget import Claim, Lane
from bot.domain.catalog import Catalog
from bot.domain.scheduling import FixedPlanner, PollPlanner
from bot.engine.budget import RequestBudget
from bot.engine.chains import ChainWork
from bot.engine.config import EngineConfig
from bot.engine.delivery import Courier, Deliveries, DeliveryConfig
from bot.engine.leases import LeaseKeeper, Leasing
from bot.engine.polling import Poller
from bot.engine.ports import (
    ClipJoiner,
    FrameMaker,
    JobStore,
    Notifier,
    Recorder,
    VideoAPI,
    VideoFetcher,
    VideoFitter,
)
from bot.engine.progress import ProgressEdits
from bot.engine.runtime import Runtime
from bot.engine.shared_budget import BudgetSync
from bot.engine.snapshot import EngineSnapshot, take_snapshot
from bot.engine.submission import Submitter
from bot.engine.tracked import Tracked
from bot.engine.transitions import StateWriter
from bot.i18n import Text
from bot.log_context import about_job, task_context
from bot.outages import log_failure
from storage.models import UNFINISHED_STATES, Job, JobState

log = logging.getLogger("bot.engine")

# The loop sleeps at most this long, and at least this short, between passes.
MAX_SLEEP = 1.0
MIN_SLEEP = 0.05


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
        frame: FrameMaker | None = None,
        join: ClipJoiner | None = None,
        recorder: Recorder | None = None,
        leasing: Leasing | None = None,
    ) -> None:
        self._config = config
        self._runtime = runtime = Runtime(clock, config, recorder)
        self._jobs = runtime.jobs
        self._store = store
        # Without leasing (one process, the unit tests) the engine works every unfinished job.
        self._keeper: LeaseKeeper | None = None
        if leasing is not None:
            runtime.leases = leasing.leases
            self._keeper = LeaseKeeper(runtime, leasing, self._adopt)
        planner = planner or FixedPlanner(config.poll_interval)
        # One budget for POSTs and GETs, learned from Together's answers (bot/engine/budget.py).
        self._budget = RequestBudget(config, runtime.recorder)
        # Several processes: the budget is this one's share of the account's.
        self._budget_sync: BudgetSync | None = None
        if leasing and leasing.budget and leasing.processes and not self._budget.unlimited:
            self._budget_sync = BudgetSync(runtime, leasing.budget, leasing.processes, self._budget)
        self._writer = StateWriter(store, runtime)
        self._edits = ProgressEdits(runtime, self._writer, store, planner)
        self._writer.on_moved = self._edits.request
        # Extend's first frame and Join's video, from the parts' Discord messages.
        self._chains = ChainWork(store, self._notifier, config.workdir, frame, join)
        self._poller = Poller(runtime, self._writer, api, self._budget, planner)
        self._submitter = Submitter(
            runtime,
            self._writer,
            store,
            api,
            self._budget,
            planner,
            self._poller,
            catalog,
            notifier=self._notifier,
            chains=self._chains,
        )
        self._submitter.token_now = self._token_now
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
            assemble=self._chains.joined,
        )
        self._deliveries = Deliveries(runtime, self._writer, self._courier, self._notifier)
        self._loop_task: asyncio.Task[None] | None = None
        self._enqueue_wake: asyncio.TimerHandle | None = None
        self._accepting = True
        self._ticks = 0

    # -- lifecycle -----------------------------------------------------------------------

    def attach(self, notifier: Notifier) -> None:
        self._edits.notifier = notifier

    def _notifier(self) -> Notifier:
        if self._edits.notifier is None:
            raise RuntimeError("no notifier attached")
        return self._edits.notifier

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def ticks(self) -> int:
        """Passes of the loop that finished; the health heartbeat watches it move."""
        return self._ticks

    async def recover(self) -> None:
        """Pick up the unfinished jobs from the store, by the restart rules (ARCHITECTURE.md):
        every one, or with leasing, those this process claims."""
        self._courier.clean_leftovers()
        if self._keeper is not None:
            jobs = await self._keeper.start()
        else:
            jobs = await self._store.in_states(UNFINISHED_STATES)
        if self._budget_sync is not None:
            await self._budget_sync.start()  # after the keeper: this process's row is written
        self._adopt(jobs)
        if self._jobs:
            log.info("Resumed %d unfinished job(s) from the database", len(self._jobs))
        await self._edits.show_unannounced()

    def _adopt(self, jobs: list[Job]) -> None:
        """Work jobs this process did not start: at a restart, or taken over from a process
        whose leases expired. Either way their last steps may have been half done."""
        for job in jobs:
            if job.id in self._jobs:
                continue
            tracked = Tracked(job)
            self._jobs[job.id] = tracked
            if job.state is JobState.SUBMITTING:
                # The POST may or may not have reached Together; a second one could bill twice.
                self._runtime.spawn_work(tracked, self._submitter.fail_interrupted(tracked))
        self._runtime.wake.set()

    async def start(self) -> None:
        if self._edits.notifier is None:
            raise RuntimeError("JobEngine.start() needs a notifier: call attach() first")
        await self.recover()
        # The loop is about no job, whoever starts the engine; each job's work gets its own ids.
        self._loop_task = asyncio.create_task(
            self._run(), name="job-engine", context=task_context(None)
        )

    async def stop(self, grace: float = 8.0) -> None:
        """Stop taking jobs, let in-flight work finish (bounded), then stop the loop."""
        self._accepting = False
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        tasks = self._runtime.tasks
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        # Neither may keep the bot from stopping (a SIGTERM while PostgreSQL is down did).
        try:
            await self._submitter.unprepare()
        except Exception as exc:
            log_failure(
                log,
                "Could not put the submissions not yet sent back in line; the next start "
                "fails them as interrupted",
                exc,
            )
        if self._keeper is not None:
            try:
                await self._keeper.stop()
            except Exception as exc:
                log_failure(
                    log, "Could not give the leases back; they run out within LEASE_SECONDS", exc
                )

    def enqueue(self, job: Job) -> None:
        """Track a job the command has just stored and answered; the loop picks it up at once."""
        if job.state.is_final or job.id in self._jobs:
            return
        tracked = self._jobs[job.id] = Tracked(job)
        if self._keeper is not None:
            # Claimed before anything else happens to it (busy until then): another process
            # holding it would be working it already.
            tracked.leased = False
            self._runtime.spawn_work(tracked, self._keeper.claim_new(tracked))
        # A burst of commands would wake the loop once per job, and each pass looks at every
        # tracked job: new jobs wake it together, MIN_SLEEP after the first. Other wake-ups
        # (a finished task: a slot or a budget token may be free) stay immediate.
        if self._enqueue_wake is None or self._enqueue_wake.cancelled():
            loop = asyncio.get_running_loop()
            self._enqueue_wake = loop.call_later(MIN_SLEEP, self._new_jobs_due)

    def _new_jobs_due(self) -> None:
        self._enqueue_wake = None
        self._runtime.wake.set()

    async def cancel(self, job_id: int, reason: str | Text) -> Job | None:
        """Cancel a job still waiting in the bot's queue; None when it is too late.

        Goes through the engine so its working copy, its edits and the store agree: after
        submission Together cannot cancel, and the compare-and-set settles any race with it.
        """
        tracked = self._jobs.get(job_id)
        if tracked is None:
            return await self._writer.cancel_untracked(job_id, reason)
        if tracked.job.state is not JobState.QUEUED:
            return None
        # Busy already (its claim being written, or just picked for submission): the
        # compare-and-set from "queued" decides, and a submission stored first wins. Refusing
        # outright told a member who clicked at once "too late" for a job that had not moved.
        keep_off = not tracked.busy
        if keep_off:
            tracked.busy = True  # keep the scheduler off it while the cancel is written
        try:
            with about_job(tracked.job):  # a member's button, not one of the engine's tasks
                moved = await self._writer.cancel(tracked, reason, alone=keep_off)
        finally:
            if keep_off:
                tracked.busy = False
        return tracked.job if moved else None

    def snapshot(self, guild_id: int | None = None) -> EngineSnapshot:
        """The unfinished jobs by state (of one server, or all) and the request budget, now."""
        return take_snapshot(self._jobs.values(), self._budget.rates, self._runtime.now(), guild_id)

    def tracked(self, job_id: int) -> Job | None:
        tracked = self._jobs.get(job_id)
        return tracked.job if tracked else None

    async def drain(self) -> None:
        """Wait until no submission, poll, delivery or edit is in flight (for tests)."""
        while self._runtime.tasks:
            await asyncio.gather(*list(self._runtime.tasks), return_exceptions=True)

    # -- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        wake = self._runtime.wake
        while True:
            try:
                await self.tick()
            except Exception as exc:
                log_failure(log, "Job engine tick failed; continuing", exc)
            else:
                self._ticks += 1
            wake.clear()
            delay = min(MAX_SLEEP, max(MIN_SLEEP, self._next_due() - self._runtime.now()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)

    async def tick(self) -> None:
        """One pass: start whatever is due. Work runs in tasks; this never waits for Together."""
        now = self._runtime.now()
        self._submitter.start_sends(now)
        queued = self._submitter.waiting(now)
        self._edits.update_places(self._submitter.queue, queued, now)
        if self._accepting:
            active, by_guild = self._active_counts()
            self._submitter.start(now, queued, active, by_guild)
        self._start_requests(now)
        self._deliveries.start(now)
        self._edits.tick(now)
        if self._keeper is not None:
            self._keeper.tick(now, claiming=self._accepting)
        if self._budget_sync is not None:
            self._budget_sync.tick(now)

    def _start_requests(self, now: float, also: Tracked | None = None) -> bool:
        """Give the budget's free tokens to the POSTs and polls due, by priority: late polls,
        then new jobs, then early polls (README, "Request budget"), none starved.

        `also`: a submission just made ready by its own task (busy, so not among the
        claims); True if it got a token, and its task sends it.
        """
        claims = self._poller.claims(now) + self._submitter.claims(now)
        if also is not None:
            claims.append(Claim(Lane.SUBMIT, now, also))
        own = False
        for claim in self._budget.grant(now, claims):
            if claim.item is also:
                own = True
            elif claim.lane is Lane.SUBMIT:
                self._submitter.send(claim.item)
            else:
                self._poller.begin(claim.item)
        return own

    def _token_now(self, tracked: Tracked) -> bool:
        return self._start_requests(self._runtime.now(), also=tracked)

    def _next_due(self) -> float:
        """When the loop next has something to start.

        Events wake it sooner: a new job, a slot or a budget token freed (every finished piece
        of work sets the wake event). A job waiting for a slot is therefore not "due": counting
        it made the loop spin every 50 ms while thousands waited.
        """
        now = self._runtime.now()
        active, by_guild = self._active_counts()
        room = self._accepting and active < self._config.max_active
        per_guild = self._config.max_active_per_guild
        work = math.inf
        for tracked in self._jobs.values():
            if tracked.busy:
                continue
            job = tracked.job
            waiting = job.state is JobState.QUEUED and tracked.submission is None
            if not waiting or (room and by_guild.get(job.guild_id, 0) < per_guild):
                work = min(work, tracked.due_at)
        if work < math.inf:
            work = max(work, self._budget.next_free(now))
        if self._keeper is not None:
            work = min(work, self._keeper.next_due())
        if self._budget_sync is not None:
            work = min(work, self._budget_sync.next_due())
        return min(work, self._edits.next_due(), now + MAX_SLEEP)

    def _active_counts(self) -> tuple[int, dict[int, int]]:
        total, by_guild = 0, dict[int, int]()
        for tracked in self._jobs.values():
            if tracked.holds_slot:
                total += 1
                by_guild[tracked.job.guild_id] = by_guild.get(tracked.job.guild_id, 0) + 1
        return total, by_guild
