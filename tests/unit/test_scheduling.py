"""Scheduling helpers: request budget, durations, poll plans, fair queue, edit pacing."""

from __future__ import annotations

import itertools

import pytest

from bot.scheduling import (
    AdaptivePlanner,
    DurationModel,
    EditPacer,
    FairQueue,
    FixedPlanner,
    RateBudget,
)
from tests.unit.fakes import make_job


def test_budget_holds_in_every_one_second_window() -> None:
    budget = RateBudget(5)
    taken = [t / 100 for t in range(1000) if budget.try_take(t / 100)]  # 10 s, a try every 10 ms
    assert len(taken) == 50
    for start in taken:
        assert sum(1 for t in taken if start <= t < start + 1.0) <= 5


def test_a_margin_stretches_the_window() -> None:
    budget = RateBudget(5, margin=0.05)
    taken = [t / 100 for t in range(1000) if budget.try_take(t / 100)]
    assert taken[5] == pytest.approx(1.05)  # the sixth waits for the stretched window
    for start in taken:
        assert sum(1 for t in taken if start <= t < start + 1.05 - 1e-9) <= 5


def test_budget_is_paced_within_the_window() -> None:
    budget = RateBudget(50)
    granted = [t / 1000 for t in range(1000) if budget.try_take(t / 1000)]
    assert len(granted) == 50
    # Never more than 5 in any tenth of a second: no burst of 50 at the window's start.
    for start in granted:
        assert sum(1 for t in granted if start <= t < start + 0.1) <= 5
    assert budget.next_free(1.0) >= 1.0


def test_fractional_budget_and_unlimited() -> None:
    half = RateBudget(0.5)
    assert half.try_take(0.0) and not half.try_take(1.9) and half.try_take(2.0)
    assert half.next_free(2.5) == pytest.approx(4.0)
    unlimited = RateBudget(0)
    assert all(unlimited.try_take(0.0) for _ in range(1000))


def test_durations_default_then_learned() -> None:
    model = DurationModel({"m": 100.0})
    assert model.estimate("M").typical == 100.0
    for seconds in (40, 42, 44, 46, 48, 50):
        model.observe("m", seconds)
    learned = model.estimate("m")
    assert learned.typical == 45 and 40 <= learned.early < 45 < learned.late <= 50
    assert DurationModel({}).estimate("unknown").typical == 120.0


def poll_times(planner: AdaptivePlanner, finish: float) -> list[float]:
    job = make_job(1, 0.0, submitted_at=0.0, model="m")
    times, now = [], 0.0
    while now < finish:
        now = planner.next_poll(job, now)
        times.append(now)
    return times


def test_adaptive_polls_sparse_early_dense_near_the_finish() -> None:
    planner = AdaptivePlanner(DurationModel({"m": 180.0}), min_interval=2.0)
    times = poll_times(planner, 200.0)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] == pytest.approx(9.0)  # an early check for quick failures
    assert max(gaps[:3]) > 30  # sparse while the job is unlikely to be done
    dense = [g for a, g in zip(times, gaps, strict=False) if 144 <= a < 234]
    assert dense and max(dense) <= 7.5 + 1e-9  # (234 - 144) / 12
    # Far fewer requests than polling every 5 s, and never more than 7.5 s late at the finish.
    assert len(times) <= 0.4 * 200 / 5
    assert min(t for t in times if t >= 200.0) - 200.0 <= 7.5


def test_adaptive_backs_off_when_late_and_respects_bounds() -> None:
    planner = AdaptivePlanner(DurationModel({"m": 10.0}), min_interval=2.0, max_interval=30.0)
    job = make_job(1, 0.0, submitted_at=0.0, model="m")
    assert planner.next_poll(job, 0.0) == 2.0  # min_interval wins over 5% of 10 s
    assert planner.next_poll(job, 1000.0) == 1030.0  # late: capped at max_interval
    assert planner.eta(job, 4.0) == pytest.approx(6.0) and planner.eta(job, 11.0) is None
    assert FixedPlanner(5.0).next_poll(job, 3.0) == 8.0


def test_fair_queue_round_robin_across_members() -> None:
    queue = FairQueue()
    hog = [make_job(i, 0.0, user_id=1) for i in range(1, 21)]
    other = [make_job(21, 0.0, user_id=2), make_job(22, 0.0, user_id=2)]
    third = [make_job(23, 0.0, user_id=3)]
    order = [j.id for j in queue.order(hog + other + third)]
    assert order[:6] == [1, 21, 23, 2, 22, 3]
    queue.served(hog[0])
    assert [j.id for j in queue.order(hog[1:] + other + third)][:3] == [21, 23, 2]


def test_fair_queue_skips_servers_at_their_limit() -> None:
    queue = FairQueue()
    busy = make_job(1, 0.0, guild_id=100, user_id=1)
    free = make_job(2, 0.0, guild_id=200, user_id=2)
    assert queue.pick([busy, free], {100: 3}, per_guild_limit=3) is free
    assert queue.pick([busy], {100: 3}, per_guild_limit=3) is None


def test_edit_pacer_per_channel_window() -> None:
    pacer = EditPacer(per_channel=4, window=5.0)
    for t in (0.0, 0.1, 0.2, 0.3):
        assert pacer.allows(7, t)
        pacer.record(7, t)
    assert not pacer.allows(7, 4.9)
    assert pacer.allows(8, 4.9)
    assert pacer.allows(7, 5.05)


def test_edit_pacer_overall_limit() -> None:
    pacer = EditPacer(per_channel=4, window=5.0, per_second=3)
    for channel, at in ((1, 0.0), (2, 0.1), (3, 0.2)):
        assert pacer.allows(channel, at)
        pacer.record(channel, at)
    assert not pacer.allows(4, 0.5), "three edits in this second already"
    assert pacer.allows(4, 1.01)
    pacer.record(5, 1.01)  # a state change goes out whatever the pacer says, and counts
    assert not pacer.allows(6, 1.02), "and periodic edits are spread, not sent in a burst"
