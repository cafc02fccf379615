"""The request budget for Together: a rate learned from its answers, and who gets each token.

- AdaptiveBudget: a RateBudget whose rate starts low and follows Together's answers (AIMD:
  down by a factor on a 429, up by a small step after a run of successes), never above the
  operator's ceiling, with pauses for Retry-After and an exhausted ``x-ratelimit-remaining``.
- share_of: one process's part of the account's rate, when several bot processes share it.
- Priorities: which waiting request gets the next token (late polls, then new submissions,
  then early polls), with a share for whoever has waited longest so none starves.

No I/O and no clock of their own: every method takes `now`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Generic, TypeVar

from bot.domain.scheduling import RateBudget


def share_of(rate: float, processes: int, rank: int) -> float:
    """Process number `rank` (0-based) of `processes`: its requests per second out of `rate`.

    Whole requests per second are dealt out (15/s over 4 processes: 4, 4, 4, 3), so together
    the processes never pass the account's rate in any one second: fractional shares would
    each round up within a second (1.67/s is one request every 0.6 s, two in some seconds).
    Below one request per second each, every process gets an equal fraction.
    """
    if processes <= 1:
        return rate
    whole = math.floor(rate)
    if whole >= processes:
        return float(whole // processes + (1 if rank < whole % processes else 0))
    return rate / processes


@dataclass(frozen=True)
class RateChange:
    """The budget's rate moved (or a pause began): worth one log line."""

    rate: float  # requests per second now
    reason: str
    paused_for: float = 0.0  # seconds with no request at all, from now


class AdaptiveBudget:
    """Requests per second learned from Together's answers, within `ceiling`.

    Together's limits are per account and dynamic: a new account starts at 60 requests per
    minute, later about twice the past hour's successful rate. So the budget starts at
    `start` (1/s: that documented base, which also never trips the limit of an account that
    has not built up any history) and then:

    - a 429 cuts the rate to `DECREASE` times itself, or to the limit Together stated if
      that is lower; one cut per rate (429s for requests sent before the last change are
      answers to the old rate and cut nothing more);
    - ``x-ratelimit-limit`` below the rate (on any answer) lowers it to that limit;
    - Retry-After, or ``x-ratelimit-remaining: 0`` with ``x-ratelimit-reset``, pauses every
      request until it has passed (at most `MAX_PAUSE`);
    - after `RAISE_AFTER` successes in a row sent at close to the full rate, the rate rises
      by `step` (a tenth of the start rate); above the last rate Together refused, it takes
      `CAUTION` times as many, since every probe there may cost a 429. A budget that is not
      used up learns nothing: an idle bot does not talk itself into a rate never tried.

    The counts (not seconds) make the learning independent of the time scale: it behaves the
    same in a time-compressed benchmark as in real time. The window and pacing guarantees are
    RateBudget's: the requests already sent are carried over when the rate changes, so no
    window ever holds more than the current rate allows.

    Several bot processes share one account (`adopt`): `rate`, `ceiling` and `start` stay the
    account's, and this process takes only its `share` of the rate; the run of successes a
    rise needs is split between them too, so the account climbs as fast as one process would.

    `ceiling` 0 or None: no budget at all (unlimited, nothing learned). `start` 0 or None:
    a fixed budget of `ceiling` that ignores every signal (the behaviour before learning).
    """

    DECREASE = 0.7
    STEP = 0.1  # of the start rate
    FLOOR = 0.1  # of the start rate: the lowest the rate is ever cut to
    RAISE_AFTER = 60  # successes in a row (a minute at Together's base rate)
    CAUTION = 5
    FULL_USE = 1.5  # a run counts as "at the full rate" if it took at most 1.5 times its due
    MAX_PAUSE = 300.0

    def __init__(
        self, ceiling: float | None, start: float | None = None, margin: float = 0.0
    ) -> None:
        self.unlimited = not ceiling or ceiling <= 0
        self.ceiling = math.inf if self.unlimited else float(ceiling or 0)
        self.learning = not self.unlimited and bool(start) and (start or 0) > 0
        self.start = min(float(start or 0), self.ceiling) if self.learning else self.ceiling
        self.step = self.STEP * self.start
        self.floor = self.FLOOR * self.start
        self._margin = margin
        self.rate = self.start
        self.processes, self.rank = 1, 0  # this process's place among those sharing the account
        # No request before this, Together or not: a process joining others waits until they
        # have made room for its share (bot/engine/shared_budget.py).
        self.held_until = -math.inf
        self._inner = RateBudget(None if self.unlimited else self.rate, margin)
        # Takes, kept for the longest window of any rate (the floor's, or 1 s above 1/s), so
        # a rate change carries every one still inside the new window.
        self._sent: deque[float] = deque()
        self._paused_until = -math.inf
        self._changed_at = -math.inf  # when the rate last changed
        self._known_limit = math.inf  # the last rate Together refused (or stated)
        self._run = 0  # successes in a row at close to the full rate
        self._run_started = 0.0
        # When a 429 last cut the rate, and the rate it cut: until the rate is back there,
        # the budget is backing off (shown by /videoadmin status and /metrics).
        self.throttled_at: float | None = None
        self._cut_from = 0.0

    # -- the RateBudget interface ------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._inner.capacity

    @property
    def share(self) -> float:
        """This process's requests per second: the whole rate unless processes share it."""
        return share_of(self.rate, self.processes, self.rank)

    def try_take(self, now: float) -> bool:
        if now < self.held_until or now < self._paused_until or not self._inner.try_take(now):
            return False
        self._remember(now)
        return True

    def record(self, now: float) -> None:
        self._inner.record(now)
        self._remember(now)

    def _remember(self, now: float) -> None:
        """Keep the takes as long as the longest window any rate may have."""
        if self.unlimited:
            return
        self._sent.append(now)
        lowest = share_of(self.floor, self.processes, self.rank)
        longest_window = max(1.0, 1.0 / lowest if lowest > 0 else 1.0) * (1 + self._margin)
        while self._sent and self._sent[0] <= now - longest_window:
            self._sent.popleft()

    def next_free(self, now: float) -> float:
        return max(self._inner.next_free(now), self._paused_until, self.held_until)

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def backing_off(self, now: float) -> bool:
        """Paused (Retry-After), or below the rate the last 429 cut, not yet climbed back."""
        return now < self._paused_until or (
            self.throttled_at is not None and self.rate < self._cut_from * (1 - 1e-9)
        )

    # -- learning ------------------------------------------------------------------------

    def succeeded(
        self,
        now: float,
        sent_at: float,
        *,
        limit: float | None = None,
        remaining: float | None = None,
        reset: float | None = None,
    ) -> RateChange | None:
        """A request sent at `sent_at` was answered (not with a 429); the headers if any."""
        if not self.learning:
            return None
        change = self.stated(now, limit=limit, remaining=remaining, reset=reset)
        if change is not None or sent_at < self._changed_at:
            return change
        if self._run == 0 or sent_at - self._run_started > self.FULL_USE * self._run / self.share:
            # The first of a run, or the budget was not used up meanwhile: start counting again.
            self._run, self._run_started = 0, sent_at
        self._run += 1
        cautious = self.rate + self.step > self._known_limit * (1 + 1e-9)
        needed = self.RAISE_AFTER * (self.CAUTION if cautious else 1)
        needed = math.ceil(needed / self.processes)  # the others count their own runs
        if self._run < needed or self.rate >= self.ceiling:
            return None
        return self._set_rate(
            now, min(self.ceiling, self.rate + self.step), f"{needed} requests in a row answered"
        )

    def throttled(
        self,
        now: float,
        sent_at: float,
        *,
        reason: str = "429",
        retry_after: float | None = None,
        limit: float | None = None,
        remaining: float | None = None,
        reset: float | None = None,
    ) -> RateChange | None:
        """A request sent at `sent_at` was answered 429."""
        if not self.learning:
            return None
        pause = self._pause(now, retry_after if retry_after is not None else reset)
        if sent_at < self._changed_at:
            # Sent at the old rate: the cut that answered it is already made.
            return RateChange(self.rate, reason, pause) if pause else None
        self._known_limit = min(self.rate, limit) if limit and limit > 0 else self.rate
        # A 429 while still backing off keeps the rate the episode started from.
        self._cut_from = max(self.rate, self._cut_from if self.backing_off(now) else 0.0)
        self.throttled_at = now
        lowered = limit if limit and 0 < limit < self.rate else self.rate * self.DECREASE
        change = self._set_rate(now, max(self.floor, lowered), reason)
        if change is None:  # already at the floor
            self._changed_at, self._run = now, 0
            return RateChange(self.rate, reason, pause) if pause else None
        return RateChange(change.rate, reason, pause)

    def stated(
        self,
        now: float,
        *,
        limit: float | None = None,
        remaining: float | None = None,
        reset: float | None = None,
    ) -> RateChange | None:
        """What ``x-ratelimit-*`` on an answer other than a 429 says."""
        if not self.learning:
            return None
        change = None
        if limit is not None and limit > 0:
            self._known_limit = limit
            if limit < self.rate:
                change = self._set_rate(
                    now, max(self.floor, limit), f"x-ratelimit-limit {limit:g}/s"
                )
        if remaining is not None and remaining <= 0 and reset:
            pause = self._pause(now, reset)
            if pause:
                return RateChange(self.rate, "x-ratelimit-remaining 0", pause)
        return change

    def _pause(self, now: float, seconds: float | None) -> float:
        """Pause every request for `seconds`; how long the pause is from now if it grew."""
        if seconds is None or not seconds > 0:
            return 0.0
        until = now + min(seconds, self.MAX_PAUSE)
        if until <= self._paused_until:
            return 0.0
        self._paused_until = until
        return until - now

    def _set_rate(self, now: float, rate: float, reason: str) -> RateChange | None:
        rate = min(self.ceiling, rate)
        if math.isclose(rate, self.rate, rel_tol=1e-9):
            return None
        self.rate = rate
        self._rebuild()
        self._changed_at, self._run = now, 0
        return RateChange(rate, reason)

    def _rebuild(self) -> None:
        """A window for the current share; whatever went out still counts in it: no burst."""
        inner = RateBudget(self.share, self._margin)
        for sent in self._sent:
            inner.record(sent)
        self._inner = inner

    # -- sharing the account with other processes --------------------------------------------

    def adopt(
        self, now: float, rate: float, paused_until: float, processes: int, rank: int
    ) -> RateChange | None:
        """What the account's shared row says (the rate and pause other processes learned)
        and this process's place among the `processes` live ones (`rank`, 0-based)."""
        if self.unlimited:
            return None
        processes = max(1, processes)
        pause = 0.0
        if self.learning:
            rate = min(self.ceiling, max(self.floor, rate))
            if paused_until > max(now, self._paused_until):
                self._paused_until, pause = paused_until, paused_until - now
        else:
            rate = self.rate  # a fixed budget: only the share moves
        moved = not math.isclose(rate, self.rate, rel_tol=1e-9)
        regrouped = (processes, rank) != (self.processes, self.rank)
        if not moved and not regrouped:
            return RateChange(self.rate, "another process's pause", pause) if pause else None
        if moved and rate < self.rate:
            # Another process's 429 (or stated limit): the rate it cut was refused.
            self._known_limit = self.rate
            self._cut_from = max(self.rate, self._cut_from if self.backing_off(now) else 0.0)
            self.throttled_at = now
        self.rate, self.processes, self.rank = rate, processes, rank
        self._rebuild()
        if moved:
            self._changed_at, self._run = now, 0
        reason = "another process's answer" if moved else f"{processes} process(es) share it"
        return RateChange(rate, reason, pause)


class Lane(IntEnum):
    """What a request is for, in the order the budget serves them (lowest first)."""

    LATE_POLL = 0  # a running job past its expected finish: the video may be waiting
    SUBMIT = 1  # a new job: nothing happens for it until it is sent
    EARLY_POLL = 2  # a job not expected to be done yet: rarely finds anything


T = TypeVar("T")


@dataclass(frozen=True)
class Claim(Generic[T]):
    """A request waiting for a token: its lane, since when it has been due, and what it is."""

    lane: Lane
    since: float
    item: T


class Priorities:
    """Who gets the next token: the lowest lane first, the longest-waiting within it.

    Strict lanes alone would let a steady stream of late polls hold back every submission, or
    polls and submissions together every early poll. So every `FAIR_EVERY`-th token goes to
    the claim that has been due longest, whatever its lane: a claim's `since` stays put while
    it waits and every served one comes back with a later one, so each waiting claim is
    reached within a bounded number of tokens.
    """

    FAIR_EVERY = 4

    def __init__(self) -> None:
        self._granted = 0

    def choose(self, claims: Sequence[Claim[T]]) -> Claim[T] | None:
        """The claim the next token goes to (call `granted` once it has it)."""
        if not claims:
            return None
        if self._granted % self.FAIR_EVERY == self.FAIR_EVERY - 1:
            return min(claims, key=lambda c: (c.since, c.lane))
        return min(claims, key=lambda c: (c.lane, c.since))

    def granted(self) -> None:
        self._granted += 1

    def serve(self, claims: Sequence[Claim[T]], tokens: int) -> list[Claim[T]]:
        """Grant `tokens` tokens to `claims`: the claims served, in order."""
        left, out = list(claims), list[Claim[T]]()
        while left and len(out) < tokens:
            claim = self.choose(left)
            assert claim is not None
            left.remove(claim)
            out.append(claim)
            self.granted()
        return out
