"""Three bot processes sharing one account's Together budget through one database
(bot.engine.shared_budget, storage.together_budget), on a manual clock, on SQLite and on
PostgreSQL.

Each simulated process is what the engine wires up: its RequestBudget, its BudgetSync ticked
by the loop, its `processes` row beaten every third of LEASE_SECONDS. Every step, each live
process takes every token its budget allows; every token is counted.
"""

from __future__ import annotations

import asyncio
import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.engine.budget import RequestBudget
from bot.engine.config import EngineConfig
from bot.engine.runtime import Runtime
from bot.engine.shared_budget import INTERVAL, JOIN_WAIT, BudgetSync
from bot.together.errors import TogetherError, TogetherRateLimited
from bot.together.models import VideoJob
from storage.db import Database
from storage.models import SharedRate
from storage.processes import Processes
from storage.together_budget import TogetherBudgetTable

STEP = 0.01
LEASE = 30.0
OK = VideoJob(id="v", status="queued")


def too_many(retry_after: float) -> TogetherError:
    return TogetherRateLimited(
        "slow down", status=429, code="dynamic_request_limited", retry_after=retry_after
    )


@dataclass
class Process:
    name: str
    runtime: Runtime
    processes: Processes
    budget: RequestBudget
    sync: BudgetSync
    sent: list[float] = field(default_factory=list)
    alive: bool = True
    next_beat: float = 0.0


@dataclass
class Account:
    """The database, the clock and the processes of one Together account."""

    db: Database
    clock: ManualClock
    config: EngineConfig
    procs: list[Process] = field(default_factory=list)
    rates: list[tuple[float, float]] = field(default_factory=list)  # (time, the row's rate)
    # Called for every token: an answer (None: a success).
    answer: Callable[[Process, float], TogetherError | None] = lambda proc, now: None

    async def add(self, name: str) -> Process:
        runtime = Runtime(self.clock, self.config)
        processes = Processes(self.db, name)
        await processes.register(self.clock.now())
        budget = RequestBudget(self.config)
        sync = BudgetSync(runtime, TogetherBudgetTable(self.db), processes, budget)
        await sync.start()
        proc = Process(name, runtime, processes, budget, sync)
        proc.next_beat = self.clock.now() + LEASE / 3
        self.procs.append(proc)
        return proc

    async def run(self, seconds: float) -> None:
        table = TogetherBudgetTable(self.db)
        for _ in range(round(seconds / STEP)):
            now = self.clock.now()
            for proc in self.procs:
                if not proc.alive:
                    continue
                if now >= proc.next_beat:
                    await proc.processes.beat(now)
                    proc.next_beat = now + LEASE / 3
                proc.sync.tick(now)  # what the engine's loop does every pass
                await asyncio.gather(*proc.runtime.tasks)
                while proc.budget.rates.try_take(now):
                    proc.sent.append(now)
                    error = self.answer(proc, now)
                    if error is None:
                        proc.budget.answered(now, now, OK)
                    else:
                        proc.budget.failed(now, now, error)
            shared = await table.read()
            assert shared is not None
            if not self.rates or self.rates[-1][1] != shared.rate:
                self.rates.append((now, shared.rate))
            self.clock.advance(STEP)

    def rate_between(self, start: float, end: float) -> float:
        """The highest rate the row held from `start` to `end`."""
        held = [rate for t, rate in self.rates if t <= start]
        since = [rate for t, rate in self.rates if start <= t <= end]
        return max(held[-1:] + since)


def busiest_second(
    sent: list[float], allowed: Callable[[float], float] | None = None
) -> tuple[int, float]:
    """The most tokens in any 1-second window [t, t + 1), and where it starts; with `allowed`,
    asserts every window holds at most that many."""
    times = sorted(sent)
    most, where = 0, math.nan
    for i, start in enumerate(times):
        count = bisect.bisect_left(times, start + 1.0 - 1e-9) - i
        if allowed is not None:
            assert count <= allowed(start), (count, start, allowed(start))
        if count > most:
            most, where = count, start
    return most, where


def all_sent(procs: list[Process]) -> list[float]:
    return [t for proc in procs for t in proc.sent]


@pytest.fixture
def db(any_db: Database) -> Database:
    """One database for every process of the account: SQLite, then PostgreSQL."""
    return any_db


def account(db: Database, tmp_path: Path, ceiling: float, start: float) -> Account:
    config = EngineConfig(
        workdir=tmp_path,
        requests_per_second=ceiling,
        start_requests_per_second=start,
        lease_seconds=LEASE,
    )
    return Account(db, ManualClock(), config)


async def test_three_processes_never_pass_the_account_rate_in_any_second(
    db: Database, tmp_path: Path
) -> None:
    acct = account(db, tmp_path, ceiling=30.0, start=15.0)
    procs = [await acct.add(name) for name in "ABC"]
    t0 = acct.clock.now()
    await acct.run(40.0)
    assert acct.rates[0] == (t0, 15.0)

    def allowed(start: float) -> float:
        # The row's rate (the highest a sync may still be using: one interval back).
        return math.floor(acct.rate_between(start - INTERVAL, start + 1.0) + 1e-9)

    most, _ = busiest_second(all_sent(procs), allowed)
    # The start rate, used to the full, split 5/5/5 once B and C have waited for A to sync.
    first_rise = acct.rates[1][0]
    first, _ = busiest_second([t for t in all_sent(procs) if t < first_rise])
    assert first == 15 and min(all_sent(procs[1:])) >= t0 + JOIN_WAIT
    # Every success counts towards a rise, one process's run a third as long: it climbed,
    # one step (a tenth of the start rate) per write, to the ceiling and no further.
    steps = [b - a for (_, a), (_, b) in zip(acct.rates, acct.rates[1:], strict=False)]
    assert steps and all(math.isclose(s, 1.5) for s in steps)
    assert acct.rates[-1][1] == 30.0 and 28 <= most <= 30
    assert all(math.isclose(p.budget.rates.rate, 30.0) for p in procs)


async def test_a_429_in_one_process_slows_and_pauses_all_three_within_one_sync(
    db: Database, tmp_path: Path
) -> None:
    acct = account(db, tmp_path, ceiling=15.0, start=15.0)
    a, b, c = procs = [await acct.add(name) for name in "ABC"]
    t0 = acct.clock.now()
    hit = t0 + 5.0
    told: list[float] = []

    def answer(proc: Process, now: float) -> TogetherError | None:
        if proc is b and now >= hit and not told:
            told.append(now)
            return too_many(retry_after=3.0)
        return None

    acct.answer = answer
    while not told:
        await acct.run(STEP)
    [refused] = told
    # B writes the cut at its next step; A and C read it at their next sync.
    await acct.run(STEP + INTERVAL + STEP)
    for proc in procs:
        assert math.isclose(proc.budget.rates.rate, 10.5)
        assert proc.budget.rates.paused_until == pytest.approx(refused + 3.0)
        assert proc.budget.rates.backing_off(acct.clock.now())
    assert [p.budget.rates.share for p in procs] == [4.0, 3.0, 3.0]  # 10 whole: 4 + 3 + 3
    assert not [t for t in b.sent if refused < t]  # the process told stopped at once
    await acct.run(30.0)
    resumed = [t for t in all_sent(procs) if t > refused + INTERVAL + 2 * STEP]
    assert min(resumed) >= refused + 3.0  # nobody sent during the Retry-After
    # Climbed back one step per write, to the ceiling and never above it.
    after = [rate for t, rate in acct.rates if t >= refused]
    assert after == pytest.approx([10.5, 12.0, 13.5, 15.0])
    most, _ = busiest_second(
        all_sent(procs), lambda t: math.floor(acct.rate_between(t - INTERVAL, t + 1.0) + 1e-9)
    )
    assert most == 15
    assert not c.budget.rates.backing_off(acct.clock.now()) and a.budget.rates.rate == 15.0


async def test_a_dead_process_gives_its_share_back_once_it_is_no_longer_live(
    db: Database, tmp_path: Path
) -> None:
    acct = account(db, tmp_path, ceiling=15.0, start=15.0)
    a, b, c = [await acct.add(name) for name in "ABC"]
    await acct.run(2.0)
    c.alive = False  # killed: no heartbeat, no sync, no request
    last_beat = acct.clock.now() - 2.0
    await acct.run(LEASE - 2.0 - 1.0)  # C's heartbeat is still within LEASE_SECONDS
    assert (a.budget.rates.share, b.budget.rates.share) == (5.0, 5.0)
    await acct.run(2.0 + INTERVAL)
    assert acct.clock.now() > last_beat + LEASE + INTERVAL
    assert (a.budget.rates.share, b.budget.rates.share) == (8.0, 7.0)  # 15 whole: 8 + 7
    now = acct.clock.now()
    await acct.run(5.0)
    two = [t for t in a.sent + b.sent if t >= now]
    assert busiest_second(two)[0] == 15
    assert busiest_second(a.sent + b.sent + c.sent, lambda t: 15)[0] == 15


async def test_one_process_sends_exactly_as_an_unshared_budget(
    db: Database, tmp_path: Path
) -> None:
    acct = account(db, tmp_path, ceiling=5.0, start=1.0)
    [alone] = [await acct.add("A")]
    assert alone.budget.rates.share == alone.budget.rates.rate == 1.0
    lone = RequestBudget(acct.config)
    t0, lone_sent = acct.clock.now(), list[float]()
    await acct.run(120.0)
    now = t0
    for _ in range(round(120.0 / STEP)):
        while lone.rates.try_take(now):
            lone_sent.append(now)
            lone.answered(now, now, OK)
        now += STEP  # as ManualClock.advance adds it
    assert alone.sent == lone_sent and alone.budget.rates.rate == lone.rates.rate > 1.0


class FailingOnce(TogetherBudgetTable):
    """The row's table, whose first cut fails (the database was away)."""

    failed = False

    async def lower(self, rate: float, paused_until: float, now: float) -> SharedRate | None:
        if not self.failed:
            self.failed = True
            raise OSError("database unreachable")
        return await super().lower(rate, paused_until, now)


async def test_a_cut_that_could_not_be_written_is_written_at_the_next_sync(
    db: Database, tmp_path: Path
) -> None:
    acct = account(db, tmp_path, ceiling=15.0, start=15.0)
    await acct.add("A")
    b = await acct.add("B")
    table = FailingOnce(db)
    b.sync = BudgetSync(b.runtime, table, b.processes, b.budget)
    await b.sync.start()
    now = acct.clock.now()
    b.budget.failed(now, now, too_many(retry_after=5.0))
    b.sync.tick(now)  # the loop's next pass: the write fails (logged), the cut is kept
    await asyncio.gather(*b.runtime.tasks)
    shared = await table.read()
    assert table.failed and shared is not None and shared.rate == 15.0
    assert b.sync.next_due() == now + INTERVAL  # tried again a second later, not every pass
    acct.clock.advance(INTERVAL)
    b.sync.tick(acct.clock.now())
    await asyncio.gather(*b.runtime.tasks)
    assert await table.read() == SharedRate(10.5, now + 5.0, 1)
