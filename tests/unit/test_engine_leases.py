"""Two JobEngines on one SQLite file, each with its own connection and lease: every job is
worked by one of them; a silent one's jobs are taken over by the restart rules; one that wakes
after losing its lease cannot write. Fakes for Together and Discord, virtual time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.engine import EngineConfig, JobEngine, Leasing
from bot.engine.tracked import Submission
from storage.db import Database, open_database
from storage.jobs import JobRepository
from storage.leases import JobLeases
from storage.models import Job, JobState
from storage.processes import Processes
from storage.together_budget import TogetherBudgetTable
from tests.unit.fakes import FakeAPI, FakeFetcher, RecordingNotifier, new_job, status

LEASE = 30.0
POLL = 5.0


class OneMessagePerJob(RecordingNotifier):
    """Discord as both processes see it: a job's message holds its video once; delivering
    again finds it there and posts nothing (what DiscordNotifier checks before uploading)."""

    async def deliver(self, job: Job, video: Path | None) -> int | None:
        if any(done.id == job.id for done, _ in self.delivered):
            return None
        return await super().deliver(job, video)


class Process:
    """One bot process: its own database connection, lease id and engine."""

    def __init__(
        self,
        name: str,
        db: Database,
        clock: ManualClock,
        api: FakeAPI,
        notifier: RecordingNotifier,
        workdir: Path,
        sole: bool = False,
        **config: object,
    ) -> None:
        self.name = name
        self.db = db
        self.repo = JobRepository(db)
        self.leases = JobLeases(db, name)
        self.processes = Processes(db, name)
        options: dict[str, object] = dict(
            workdir=workdir / name,
            poll_interval=POLL,
            retry_delay=2.0,
            requests_per_second=0,
            lease_seconds=LEASE,
            claim_interval=5.0,
        )
        options.update(config)
        self.engine = JobEngine(
            self.repo,
            api,
            FakeFetcher(),
            clock,
            EngineConfig(**options),  # type: ignore[arg-type]
            # Unused while requests_per_second is 0 (no budget): only the budget test sets it.
            leasing=Leasing(self.leases, self.processes, sole=sole, budget=TogetherBudgetTable(db)),
        )
        self.engine.attach(notifier)
        self.alive = True

    def tracked(self) -> set[int]:
        return set(self.engine._jobs)


class Cluster:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.path = tmp_path / "bot.sqlite3"
        self.clock = ManualClock()
        self.api = FakeAPI(self.clock)
        self.notifier = OneMessagePerJob()
        self.processes: list[Process] = []

    async def start(self, name: str, sole: bool = False, **config: object) -> Process:
        db = await open_database(self.path)
        process = Process(
            name, db, self.clock, self.api, self.notifier, self.tmp_path, sole, **config
        )
        self.processes.append(process)
        await process.engine.recover()
        return process

    async def create(self, prompt: str) -> Job:
        """A job stored by a member's command (on no process yet)."""
        return await self.processes[0].repo.create(new_job(self.clock.now(), prompt=prompt))

    async def step(self, seconds: float = 1.0) -> None:
        """Advance virtual time; each live process runs one pass and finishes its work."""
        self.clock.advance(seconds)
        # The newest first: when leases expire, another process's claim comes before the
        # holder's own (a holder that renews never lets them expire).
        for process in reversed(self.processes):
            if process.alive:
                await process.engine.tick()
        for process in self.processes:
            if process.alive:
                await process.engine.drain()
        owners = [p.tracked() for p in self.processes if p.alive]
        for i, mine in enumerate(owners):
            for theirs in owners[i + 1 :]:
                assert not mine & theirs, f"worked by two processes at once: {mine & theirs}"

    async def run_for(self, seconds: float) -> None:
        for _ in range(int(seconds)):
            await self.step()

    async def job(self, job_id: int) -> Job:
        job = await self.processes[0].repo.get(job_id)
        assert job is not None
        return job

    def posts(self, prompt: str) -> int:
        return sum(1 for post in self.api.posts if post.prompt == prompt)

    async def close(self) -> None:
        for process in self.processes:
            await process.db.close()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    group = Cluster(tmp_path)
    yield group
    await group.close()


def slow_then_done(polls: int) -> list[object]:
    return [
        *[status("in_progress")] * polls,
        status("completed", video_url="https://x/v.mp4", cost=0.2),
    ]


async def test_each_job_is_worked_by_one_process_only(cluster: Cluster) -> None:
    # About 50 s at Together: A must renew its leases to keep its jobs.
    cluster.api.default_script = slow_then_done(10)  # type: ignore[assignment]
    a = await cluster.start("A")
    b = await cluster.start("B")
    handed = [await cluster.create(f"handed {i}") for i in range(3)]
    for job in handed:
        a.engine.enqueue(job)  # the command ran on A
    # Stored by a process that died before handing them over: free after a lease.
    orphans = [await cluster.create(f"orphan {i}") for i in range(4)]
    await cluster.run_for(LEASE + 70)  # the pairwise check runs on every step
    for job in [*handed, *orphans]:
        assert (await cluster.job(job.id)).state is JobState.DELIVERED
        assert cluster.posts(job.params.prompt) == 1
    assert len(cluster.notifier.delivered) == 7
    owners = {await a.leases.holder(job.id) for job in handed}
    assert owners == {"A"}, "A's heartbeat kept its jobs past the lease's length"
    # Whichever claimed first worked them; both looked at the same time.
    assert {await b.leases.holder(job.id) for job in orphans} <= {"A", "B"}
    assert not a.tracked() and not b.tracked()


async def test_silent_process_jobs_are_taken_over_after_the_lease(cluster: Cluster) -> None:
    cluster.api.default_script = slow_then_done(12)  # type: ignore[assignment]
    a = await cluster.start("A")
    b = await cluster.start("B")
    jobs = [await cluster.create(f"job {i}") for i in range(3)]
    for job in jobs:
        a.engine.enqueue(job)
    await cluster.run_for(8)
    assert {(await cluster.job(j.id)).state for j in jobs} == {JobState.RUNNING}
    a.alive = False  # killed: no heartbeat, no clean-up
    await cluster.run_for(LEASE - 10)
    assert not b.tracked(), "A's leases have not expired yet"
    await cluster.run_for(20)
    assert b.tracked() == {j.id for j in jobs}, "taken over, still at Together"
    await cluster.run_for(90)
    for job in jobs:
        done = await cluster.job(job.id)
        assert done.state is JobState.DELIVERED
        assert await b.leases.holder(job.id) == "B"
        assert cluster.posts(job.params.prompt) == 1, "polled by B, never posted again"
    assert len(cluster.notifier.delivered) == 3


async def test_job_submitting_at_death_is_failed_not_sent_again(cluster: Cluster) -> None:
    a = await cluster.start("A")
    b = await cluster.start("B")
    job = await cluster.create("in flight")
    # A stored "submitting" and its POST may have left when it died.
    assert await a.leases.claim_new(job.id, cluster.clock.now(), cluster.clock.now() + LEASE)
    await a.repo.transition(job.id, JobState.QUEUED, JobState.SUBMITTING, cluster.clock.now())
    a.alive = False
    await cluster.run_for(LEASE + 6)
    failed = await cluster.job(job.id)
    assert failed.state is JobState.FAILED
    assert failed.failure_reason and "not charged twice" in failed.failure_reason
    assert cluster.api.posts == []
    assert await b.leases.holder(job.id) == "B"


async def test_process_waking_after_losing_its_lease_cannot_write(cluster: Cluster) -> None:
    cluster.api.default_script = slow_then_done(4)  # type: ignore[assignment]
    # One request per second: the second job waits, built and ready, for the next token.
    a = await cluster.start("A", requests_per_second=1)
    b = await cluster.start("B")
    first, second = await cluster.create("first"), await cluster.create("second")
    a.engine.enqueue(first)
    a.engine.enqueue(second)
    await cluster.step(0)  # the claims
    await cluster.step(0)  # "first" takes the only token of this second
    ready = a.engine._jobs[second.id]
    ready.submission = Submission.PREPARING  # its submission starts, finds no token
    await a.engine._submitter.submit(ready)
    assert (await cluster.job(first.id)).state is JobState.RUNNING
    assert (await cluster.job(second.id)).state is JobState.SUBMITTING
    assert ready.submission is Submission.READY
    a.alive = False  # paused (a frozen VM, a long GC) past its lease
    cluster.clock.advance(LEASE + 1)
    await b.engine._keeper.claim()  # B's look for free jobs, before any other step
    await b.engine.drain()
    assert b.tracked() == {first.id}
    # B cannot know whether A's POST of "second" left: failed, the restart rule.
    assert (await cluster.job(second.id)).state is JobState.FAILED
    cluster.api.scripts["vid_1"] = [status("completed", video_url="https://x/v.mp4")]

    # A resumes where it stopped: the token for its ready POST arrives ...
    await a.engine._submitter._send(ready)
    assert cluster.posts("second") == 0, "not sent: the lease is gone"
    assert second.id not in a.tracked()
    # ... and its poll of "first" finds it done: the move to delivering is refused.
    await a.engine.tick()
    await a.engine.drain()
    assert cluster.api.gets == ["vid_1"], "A's poll went out"
    assert not a.tracked(), "A dropped the job it lost"
    assert (await cluster.job(first.id)).state is JobState.RUNNING, "A wrote nothing"
    assert await a.leases.holder(first.id) == "B"
    assert cluster.notifier.delivered == []

    await cluster.run_for(10)  # B carries on
    assert (await cluster.job(first.id)).state is JobState.DELIVERED
    assert cluster.posts("first") == 1 and len(cluster.notifier.delivered) == 1


async def test_cancel_on_another_process_takes_effect(cluster: Cluster) -> None:
    a = await cluster.start("A")
    b = await cluster.start("B")
    job = await cluster.create("cancel me")
    a.engine.enqueue(job)
    await a.engine.drain()  # A's claim is stored; its loop has not picked the job yet
    assert await a.leases.holder(job.id) == "A"
    cancelled = await b.engine.cancel(job.id, "Cancelled before it was sent to Together.")
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    await cluster.step(0)
    assert not a.tracked(), "A's write for 'queued' found it cancelled and dropped it"
    assert cluster.api.posts == []
    assert (await cluster.job(job.id)).state is JobState.CANCELLED


async def test_cancel_while_its_claim_is_being_written_is_not_too_late(cluster: Cluster) -> None:
    # A member's click right after the reply came while the new job's claim was in flight
    # (the job busy with it), and was told "too late" for a job that had not moved.
    a = await cluster.start("A")
    job = await cluster.create("cancel me at once")
    a.engine.enqueue(job)  # its claim is spawned, not yet written
    cancelled = await a.engine.cancel(job.id, "Cancelled before it was sent to Together.")
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    await cluster.run_for(5)
    assert not a.tracked()
    assert cluster.api.posts == []
    assert (await cluster.job(job.id)).state is JobState.CANCELLED


async def test_cancel_racing_the_submission_has_one_winner(cluster: Cluster) -> None:
    a = await cluster.start("A")
    job = await cluster.create("cancel me while picked")
    a.engine.enqueue(job)
    await a.engine.drain()
    await a.engine.tick()  # picked: its submission task is spawned, not yet run
    cancelled = await a.engine.cancel(job.id, "Cancelled before it was sent to Together.")
    await cluster.run_for(5)
    stored = await cluster.job(job.id)
    if cancelled is not None:
        assert stored.state is JobState.CANCELLED and cluster.api.posts == []
    else:
        assert stored.state is JobState.RUNNING and cluster.posts("cancel me while picked") == 1


async def test_sole_process_takes_every_job_at_start(cluster: Cluster) -> None:
    cluster.api.default_script = slow_then_done(1)  # type: ignore[assignment]
    old = await cluster.start("old")
    job = await cluster.create("before the restart")
    old.engine.enqueue(job)
    await cluster.step(0)
    await cluster.step(0)
    assert (await cluster.job(job.id)).state is JobState.RUNNING
    old.alive = False  # crashed: its lease still looks live for 30 s
    restarted = await cluster.start("new", sole=True)  # the SQLite lock proves it alone
    assert restarted.tracked() == {job.id}, "no wait for the old lease"
    rows = await restarted.db.fetch_all("SELECT id FROM processes")
    assert [row[0] for row in rows] == ["new"]
    await cluster.run_for(12)
    assert (await cluster.job(job.id)).state is JobState.DELIVERED
    assert cluster.posts("before the restart") == 1


async def test_clean_shutdown_hands_jobs_over_at_once(cluster: Cluster) -> None:
    cluster.api.default_script = slow_then_done(20)  # type: ignore[assignment]
    a = await cluster.start("A")
    b = await cluster.start("B")
    job = await cluster.create("handed over")
    a.engine.enqueue(job)
    await cluster.step(0)
    await a.engine.stop(grace=1.0)
    a.alive = False
    assert await b.leases.holder(job.id) is None
    assert await b.db.fetch_all("SELECT id FROM processes WHERE id = 'A'") == []
    await cluster.run_for(6)  # one claim interval, no lease to wait out
    assert b.tracked() == {job.id}
    assert (await cluster.job(job.id)).state is JobState.RUNNING
    assert cluster.posts("handed over") == 1


async def test_engines_run_at_their_share_of_the_account_budget(cluster: Cluster) -> None:
    budget = {"requests_per_second": 10.0, "start_requests_per_second": 10.0}
    a = await cluster.start("A", sole=True, **budget)
    assert a.engine.snapshot().budget.rate == 10.0
    assert a.engine._budget.rates.share == 10.0  # alone: the whole account
    b = await cluster.start("B", **budget)
    await cluster.step()  # A's next sync sees B
    shares = [p.engine._budget.rates.share for p in (a, b)]
    assert shares == [5.0, 5.0]
    assert [p.engine.snapshot().budget.rate for p in (a, b)] == [10.0, 10.0]
