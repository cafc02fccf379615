"""The learned request budget and the order its tokens go in (bot.domain.budget): pure, with
time passed by hand."""

from __future__ import annotations

import itertools
import math

import pytest

from bot.domain.budget import AdaptiveBudget, Claim, Lane, Priorities, share_of
from bot.domain.scheduling import RateBudget


def saturate(budget: AdaptiveBudget, start: float, seconds: float, step: float = 0.01) -> float:
    """Send whenever the budget allows, every answer a success at once; the time reached."""
    t = start
    while t < start + seconds:
        if budget.try_take(t):
            budget.succeeded(t, t)
        t = round(t + step, 6)
    return t


def test_starts_at_the_start_rate_never_above_the_ceiling() -> None:
    assert AdaptiveBudget(5.0, 1.0).rate == 1.0
    assert AdaptiveBudget(0.5, 1.0).rate == 0.5
    assert AdaptiveBudget(0, 1.0).unlimited
    fixed = AdaptiveBudget(5.0, 0)
    assert fixed.rate == 5.0 and not fixed.learning


def test_a_fixed_budget_ignores_every_signal() -> None:
    fixed = AdaptiveBudget(5.0, 0)
    assert fixed.throttled(0.0, 0.0, retry_after=30, limit=0.1) is None
    assert fixed.rate == 5.0 and fixed.try_take(0.0)


def test_a_429_cuts_the_rate_once_per_rate() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    change = budget.throttled(10.0, 9.5, reason="429 dynamic_request_limited")
    assert change is not None and change.rate == pytest.approx(0.7)
    assert change.reason == "429 dynamic_request_limited"
    # Sent before the cut: an answer to the old rate, no second cut.
    assert budget.throttled(10.5, 9.8) is None
    assert budget.rate == pytest.approx(0.7)
    # Sent after it: the new rate is too much as well.
    budget.throttled(12.0, 11.0)
    assert budget.rate == pytest.approx(0.49)


def test_cuts_stop_at_the_floor() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    for t in range(100):
        budget.throttled(float(t), float(t))
    assert budget.rate == pytest.approx(0.1)


def test_a_stated_limit_below_the_rate_is_taken_at_once() -> None:
    budget = AdaptiveBudget(5.0, 2.0)
    change = budget.throttled(1.0, 1.0, limit=1.0)
    assert change is not None and change.rate == 1.0
    quiet = AdaptiveBudget(5.0, 2.0)
    told = quiet.succeeded(1.0, 1.0, limit=0.5)
    assert told is not None and told.rate == 0.5 and "x-ratelimit-limit" in told.reason


def test_retry_after_stops_every_request_until_it_passes() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    change = budget.throttled(100.0, 100.0, retry_after=10.0)
    assert change is not None and change.paused_for == 10.0
    assert not budget.try_take(109.99)
    assert budget.next_free(105.0) == 110.0
    assert budget.try_take(110.0)


def test_remaining_zero_until_the_reset_pauses_too() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    change = budget.succeeded(0.0, 0.0, remaining=0, reset=4.0)
    assert change is not None and change.paused_for == 4.0
    assert not budget.try_take(3.9) and budget.try_take(4.0)
    # Room left: nothing to wait for.
    assert AdaptiveBudget(5.0, 1.0).succeeded(0.0, 0.0, remaining=3, reset=4.0) is None


def test_an_absurd_pause_is_bounded() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    budget.throttled(0.0, 0.0, retry_after=1e9)
    assert budget.next_free(0.0) == AdaptiveBudget.MAX_PAUSE


def test_the_rate_rises_by_a_step_after_a_run_of_successes_at_the_full_rate() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    for i in range(AdaptiveBudget.RAISE_AFTER - 1):
        assert budget.succeeded(float(i), float(i)) is None
    change = budget.succeeded(59.0, 59.0)
    assert change is not None and change.rate == pytest.approx(1.1)


def test_an_unused_budget_learns_nothing() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    for i in range(1000):  # one request every 3 s at a budget of 1/s
        budget.succeeded(3.0 * i, 3.0 * i)
    assert budget.rate == 1.0


def test_above_the_last_refused_rate_it_rises_five_times_slower() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    budget.throttled(0.0, 0.0)  # 1.0 refused: 0.7 now
    t, raises = 1.0, []
    while budget.rate < 1.15 and t < 10_000:
        if budget.try_take(t):
            before = budget.rate
            if budget.succeeded(t, t):
                raises.append((before, t))
        t = round(t + 0.01, 6)
    gaps = [later[1] - earlier[1] for earlier, later in itertools.pairwise(raises)]
    # 0.7 -> 0.8 -> 0.9 -> 1.0 take 60 requests each; 1.0 -> 1.1 goes past the refused rate.
    assert [round(rate, 2) for rate, _ in raises] == [0.7, 0.8, 0.9, 1.0, 1.1]
    at_09, at_10 = gaps[1], gaps[2]  # the time spent at 0.9/s, then at 1.0/s
    assert at_10 > 4 * at_09


def test_never_above_the_ceiling() -> None:
    budget = AdaptiveBudget(1.3, 1.0)
    saturate(budget, 0.0, 2000.0)
    assert budget.rate == pytest.approx(1.3)


def test_never_more_than_the_current_rate_in_any_window() -> None:
    budget = AdaptiveBudget(5.0, 3.0)
    takes: list[tuple[float, float]] = []  # (time, rate at that time)
    t = 0.0
    while t < 600.0:
        if budget.try_take(t):
            takes.append((t, budget.rate))
            # Every 97th request is refused: rises and cuts follow each other.
            if len(takes) % 97 == 0:
                budget.throttled(t, t)
            else:
                budget.succeeded(t, t)
        t = round(t + 0.01, 6)
    rates = {round(rate, 3) for _, rate in takes}
    assert len(rates) > 3  # the rate did move both ways
    times = [time for time, _ in takes]
    for i, (at, rate) in enumerate(takes):
        capacity = max(1, math.floor(rate))
        window = capacity / rate
        in_window = [x for x in times[: i + 1] if x > at - window + 1e-9]
        assert len(in_window) <= capacity, (at, rate, in_window)


def test_a_lower_rate_counts_what_went_out_before_the_change() -> None:
    slow = RateBudget(0.5)  # one per 2 s
    for sent in (0.0, 0.1, 0.2):  # sent at a higher rate
        slow.record(sent)
    # The next once all three have left its window, not just the first.
    assert slow.next_free(0.3) == pytest.approx(2.2)


# -- priorities ----------------------------------------------------------------------------


def test_late_polls_then_submissions_then_early_polls() -> None:
    claims = [
        Claim(Lane.EARLY_POLL, 0.0, "early"),
        Claim(Lane.SUBMIT, 5.0, "submit"),
        Claim(Lane.LATE_POLL, 10.0, "late"),
        Claim(Lane.LATE_POLL, 8.0, "later-but-older"),
    ]
    served = Priorities().serve(claims, 3)
    assert [c.item for c in served] == ["later-but-older", "late", "submit"]


def test_a_steady_stream_of_late_polls_starves_nothing() -> None:
    priorities = Priorities()
    waiting = [Claim(Lane.SUBMIT, 0.0, "submit"), Claim(Lane.EARLY_POLL, 0.0, "early")]
    served_at: dict[str, int] = {}
    for token in range(4 * Priorities.FAIR_EVERY):
        # Two new late polls every token: more than the budget can ever serve.
        now = 1.0 + token
        waiting += [Claim(Lane.LATE_POLL, now, f"late-{token}-{k}") for k in range(2)]
        claim = priorities.choose(waiting)
        assert claim is not None
        waiting.remove(claim)
        priorities.granted()
        served_at[claim.item] = token
    assert served_at["submit"] < Priorities.FAIR_EVERY
    assert served_at["early"] < 2 * Priorities.FAIR_EVERY


def test_backing_off_after_a_429_until_the_rate_has_climbed_back() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    assert not budget.backing_off(0.0) and budget.throttled_at is None
    budget.throttled(10.0, 9.5, retry_after=2.0)
    assert budget.throttled_at == 10.0
    assert budget.backing_off(11.0)  # paused, and below the rate that was cut
    t = saturate(budget, 12.0, 3000.0)
    assert budget.rate >= 1.0 and not budget.backing_off(t)


def test_a_second_429_while_backing_off_keeps_the_rate_to_climb_back_to() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    budget.throttled(10.0, 9.5)
    budget.throttled(20.0, 19.0)  # 0.7 -> 0.49
    t = 21.0
    while budget.rate <= 0.75:  # climbed past the second cut's rate, not yet to the first's
        t = saturate(budget, t, 10.0)
    assert budget.rate < 1.0 and budget.backing_off(t)


def test_at_the_floor_a_429_still_counts_as_backing_off() -> None:
    budget = AdaptiveBudget(5.0, 1.0)
    for t in range(100):
        budget.throttled(float(t), float(t))
    assert budget.rate == pytest.approx(0.1) and budget.backing_off(200.0)


@pytest.mark.parametrize(
    ("rate", "processes", "shares"),
    [
        (10.5, 1, [10.5]),  # alone: the rate itself, as before sharing
        (15.0, 4, [4.0, 4.0, 4.0, 3.0]),
        (16.5, 3, [6.0, 5.0, 5.0]),
        (2.0, 3, [2 / 3] * 3),  # under 1/s each: equal fractions
    ],
)
def test_shares_deal_out_whole_requests_never_more_than_the_rate(
    rate: float, processes: int, shares: list[float]
) -> None:
    got = [share_of(rate, processes, rank) for rank in range(processes)]
    assert got == pytest.approx(shares)
    assert sum(got) <= rate


def test_adopting_another_process_cut_backs_off_and_counts_it_as_refused() -> None:
    budget = AdaptiveBudget(15.0, 15.0)
    change = budget.adopt(10.0, 10.5, 13.0, processes=3, rank=2)
    assert change is not None and change.rate == 10.5 and change.paused_for == pytest.approx(3.0)
    assert budget.share == 3.0 and budget.capacity == 3
    assert budget.backing_off(10.0) and not budget.try_take(12.9)
    # A 429 for a request sent before the cut was adopted cuts nothing more.
    assert budget.throttled(11.0, 9.9) is None and budget.rate == 10.5
    # Fewer processes, same rate: only the share moves.
    budget.adopt(20.0, 10.5, 13.0, processes=2, rank=0)
    assert (budget.rate, budget.share) == (10.5, 5.0)


def test_a_fixed_budget_is_only_split() -> None:
    fixed = AdaptiveBudget(10.0, 0)
    fixed.adopt(0.0, 3.0, 50.0, processes=2, rank=1)
    assert (fixed.rate, fixed.share, fixed.paused_until) == (10.0, 5.0, -math.inf)
