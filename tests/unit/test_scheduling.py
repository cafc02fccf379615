"""Scheduling helpers: request budget, durations, poll plans, fair queue, edit pacing."""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.scheduling import (
    AdaptivePlanner,
    DurationModel,
    EditPacer,
    FairQueue,
    FixedPlanner,
    RateBudget,
)
from storage.models import Job
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


# -- FairQueue with bounded memory, against the unbounded queue it replaces ---------------------

Member = tuple[int, int]


def reference_order(queued: Iterable[Job], last_served: Mapping[Member, int]) -> list[int]:
    """The unbounded FairQueue's order, written out again: members by (last turn, 0 if never
    served; oldest job), then one job per member per round."""
    by_member: dict[Member, deque[Job]] = defaultdict(deque)
    for job in sorted(queued, key=lambda j: j.id):
        by_member[(job.guild_id, job.user_id)].append(job)
    members = sorted(by_member, key=lambda m: (last_served.get(m, 0), by_member[m][0].id))
    order: list[int] = []
    while members:
        order.extend(by_member[m].popleft().id for m in members)
        members = [m for m in members if by_member[m]]
    return order


@dataclass
class UnboundedTurns:
    """Every member's last turn, forever (what the old FairQueue kept)."""

    turn: int = 0
    last: dict[Member, int] = field(default_factory=dict)

    def served(self, member: Member) -> None:
        self.turn += 1
        self.last[member] = self.turn

    def most_recent(self, count: int) -> dict[Member, int]:
        newest = sorted(self.last.items(), key=lambda item: item[1])[-count:]
        return dict(newest)


@dataclass(frozen=True)
class Served:
    member: Member


@dataclass(frozen=True)
class Order:
    queued: list[Member]


Step = Served | Order

REMEMBERED = 3
MEMBERS = [(guild, user) for guild in (1, 2) for user in (1, 2, 3, 4)]  # more than REMEMBERED
members = st.sampled_from(MEMBERS)
scripts = st.lists(
    st.one_of(st.builds(Served, members), st.builds(Order, st.lists(members, max_size=12))),
    max_size=60,
)


def replay(
    queue: FairQueue, script: list[Step]
) -> Iterable[tuple[list[Job], list[int], UnboundedTurns]]:
    """Runs the script on `queue` and on unbounded turns; yields each order() call's queued
    jobs, the queue's answer, and the unbounded turns at that moment."""
    unbounded = UnboundedTurns()
    ids = itertools.count(1)
    for step in script:
        if isinstance(step, Served):
            guild, user = step.member
            queue.served(make_job(next(ids), 0.0, guild_id=guild, user_id=user))
            unbounded.served(step.member)
        else:
            queued = [make_job(next(ids), 0.0, guild_id=g, user_id=u) for g, u in step.queued]
            yield queued, [job.id for job in queue.order(queued)], unbounded


@settings(max_examples=300, deadline=None)
@given(scripts)
def test_bounded_fair_queue_differs_only_among_forgotten_members(script: list[Step]) -> None:
    queue = FairQueue(remembered=REMEMBERED)
    for queued, bounded, unbounded in replay(queue, script):
        remembered = unbounded.most_recent(REMEMBERED)
        # Exactly the unbounded order once turns older than the newest REMEMBERED are
        # forgotten (forgotten members then rank like never-served ones).
        assert bounded == reference_order(queued, remembered)
        # So nothing changes unless a queued member was served but is no longer remembered.
        forgotten = unbounded.last.keys() - remembered.keys()
        if not forgotten & {(job.guild_id, job.user_id) for job in queued}:
            assert bounded == reference_order(queued, unbounded.last)
        assert queue.members_remembered <= REMEMBERED
    assert queue.members_remembered <= REMEMBERED


@settings(max_examples=100, deadline=None)
@given(scripts)
def test_fair_queue_with_room_for_everyone_is_the_unbounded_queue(script: list[Step]) -> None:
    queue = FairQueue(remembered=len(MEMBERS))
    for queued, bounded, unbounded in replay(queue, script):
        assert bounded == reference_order(queued, unbounded.last)


def test_fair_queue_forgets_the_longest_unserved_member() -> None:
    queue = FairQueue(remembered=2)
    for user in (1, 2, 1, 3):  # user 2 is now the oldest of three: forgotten
        queue.served(make_job(user, 0.0, user_id=user))
    assert queue.members_remembered == 2
    newcomer, forgotten = make_job(10, 0.0, user_id=4), make_job(11, 0.0, user_id=2)
    recent = make_job(9, 0.0, user_id=3)
    # Both unremembered members go before the remembered one, by their oldest job.
    assert [j.id for j in queue.order([recent, forgotten, newcomer])] == [10, 11, 9]
    with pytest.raises(ValueError, match="at least 1"):
        FairQueue(remembered=0)


def test_edit_pacer_forgets_quiet_channels() -> None:
    pacer = EditPacer(per_channel=4, window=5.0, per_second=1000)
    for channel in range(500):
        pacer.record(channel, channel / 1000)
    pacer.record(9999, 4.0)
    assert pacer.channels_tracked == 501
    pacer.forget_idle(5.5)  # only channel 9999 edited in the last 5 s
    assert pacer.channels_tracked == 1
    assert pacer.allows(9999, 5.5) and pacer.allows(1, 5.5)
    pacer.forget_idle(9.0)
    assert pacer.channels_tracked == 0


def test_edit_pacer_asking_does_not_track_a_channel() -> None:
    pacer = EditPacer(per_channel=1, window=5.0)
    assert all(pacer.allows(channel, 0.0) for channel in range(1000))
    assert pacer.channels_tracked == 0
    pacer.record(1, 0.0)
    assert not pacer.allows(1, 1.0) and pacer.channels_tracked == 1
