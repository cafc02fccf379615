"""Scheduling decisions for the job engine, as pure functions and small stateful helpers.

- RateBudget: at most N requests to Together in any one-second window.
- DurationModel: how long each model's jobs take, learned from finished jobs.
- AdaptivePlanner / FixedPlanner: when to poll a running job next.
- FairQueue: which queued job gets the next free slot (round-robin across members), and each
  queued job's place in line.
- EditPacer: spreads periodic progress edits so one busy channel stays under Discord's limits.

No I/O and no clock of their own: every method takes `now`.
"""

from __future__ import annotations

import math
import statistics
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from storage.models import Job

MemberKey = tuple[int, int]  # (guild_id, user_id)


class RateBudget:
    """A sliding-window limit: never more than `capacity` takes in any `window` seconds.

    Takes are also paced within the window (a tenth of the capacity per tenth of the window):
    a full window's worth granted at once would reach Together in one burst, and the event
    loop's jitter could then put two such bursts into one second at the other end.
    """

    SLICES = 10

    def __init__(self, per_second: float | None, margin: float = 0.0) -> None:
        """`margin`: a fraction by which the window is made longer than the rate implies, for
        a limit that is counted where the requests arrive rather than where they leave."""
        self.unlimited = not per_second or per_second <= 0
        rate = per_second or 1.0
        self.capacity = max(1, math.floor(rate)) if not self.unlimited else 0
        # A fractional rate (0.5/s) becomes 1 request per 2 s; a whole one keeps a 1 s window.
        self.window = self.capacity / rate * (1 + margin) if not self.unlimited else 0.0
        self.slice = self.window / self.SLICES
        self.per_slice = max(1, math.ceil(self.capacity / self.SLICES))
        self._taken: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._taken and self._taken[0] <= now - self.window:
            self._taken.popleft()

    def _slice_full_until(self, now: float) -> float:
        """When the pacing rule next allows a take (now if it already does)."""
        if len(self._taken) < self.per_slice:
            return now
        oldest_in_slice = self._taken[-self.per_slice]
        return max(now, oldest_in_slice + self.slice) if oldest_in_slice > now - self.slice else now

    def try_take(self, now: float) -> bool:
        if self.unlimited:
            return True
        if self.next_free(now) > now:
            return False
        self._taken.append(now)
        return True

    def record(self, now: float) -> None:
        """Count something that went out regardless (it still uses up room)."""
        if not self.unlimited:
            self._expire(now)
            self._taken.append(now)

    def next_free(self, now: float) -> float:
        """When the next take can succeed."""
        if self.unlimited:
            return now
        self._expire(now)
        # Room comes back when the capacity-th latest take leaves the window (more than
        # `capacity` may be in it after `record`, e.g. takes made at a higher rate).
        full = len(self._taken) >= self.capacity
        window_free = self._taken[-self.capacity] + self.window if full else now
        return max(window_free, self._slice_full_until(now))


@dataclass(frozen=True)
class Estimate:
    """Quantiles of a model's job duration (seconds from submission to completion)."""

    early: float  # 10th percentile
    typical: float  # median
    late: float  # 90th percentile


class DurationModel:
    """Per-model durations: the catalog's guess until real jobs have been seen."""

    HISTORY = 50
    MIN_SAMPLES = 5

    def __init__(
        self, defaults: Mapping[str, float], history: Mapping[str, Sequence[float]] | None = None
    ) -> None:
        self._defaults = {k.lower(): v for k, v in defaults.items()}
        self._seen: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=self.HISTORY))
        for model, durations in (history or {}).items():
            for seconds in durations:
                self.observe(model, seconds)

    def observe(self, model: str, seconds: float) -> None:
        if seconds > 0 and math.isfinite(seconds):
            self._seen[model.lower()].append(seconds)

    def estimate(self, model: str) -> Estimate:
        seen = self._seen.get(model.lower())
        if seen and len(seen) >= self.MIN_SAMPLES:
            deciles = statistics.quantiles(seen, n=10, method="inclusive")
            return Estimate(early=deciles[0], typical=statistics.median(seen), late=deciles[-1])
        typical = self._defaults.get(model.lower(), 120.0)
        return Estimate(early=0.8 * typical, typical=typical, late=1.3 * typical)


class PollPlanner(Protocol):
    def next_poll(self, job: Job, now: float) -> float: ...

    def eta(self, job: Job, now: float) -> float | None: ...

    def observe(self, model: str, seconds: float) -> None: ...


class FixedPlanner:
    """Poll every `interval` seconds: the loop in Together's own example (the bench baseline)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def next_poll(self, job: Job, now: float) -> float:
        return now + self.interval

    def eta(self, job: Job, now: float) -> float | None:
        return None

    def observe(self, model: str, seconds: float) -> None:
        pass


class AdaptivePlanner:
    """Sparse early, dense while the job is likely to finish, backing off once it is late.

    - right after submission: one early check (quick failures, queued -> in progress);
    - before the model's early finish: go APPROACH of the remaining way each time;
    - between its early and late finish: every (late - early) / DENSE_STEPS seconds;
    - after that: intervals grow slowly, up to `max_interval`.
    Every interval is at least `min_interval`.

    DENSE_STEPS and APPROACH were tuned by simulating the bench's light load (lengths normal
    around the model's typical, sd 10 %): 36 % of a 5 s poller's requests, and a median delay
    1.2 times its own. Halving the approach (8 dense steps) spent 34 % but waited 1.8 times.
    """

    DENSE_STEPS = 12
    APPROACH = 2 / 3
    FIRST_CHECK = 0.05  # of the typical duration

    def __init__(
        self, durations: DurationModel, min_interval: float, max_interval: float = 60.0
    ) -> None:
        self.durations = durations
        self.min_interval = min_interval
        self.max_interval = max(max_interval, min_interval)

    def _dense(self, estimate: Estimate) -> float:
        return max(self.min_interval, (estimate.late - estimate.early) / self.DENSE_STEPS)

    def next_poll(self, job: Job, now: float) -> float:
        start = job.submitted_at or job.created_at
        elapsed = now - start
        estimate = self.durations.estimate(job.model)
        dense = self._dense(estimate)
        first = estimate.typical * self.FIRST_CHECK
        if elapsed < first:
            wait = first - elapsed
        elif elapsed < estimate.early - dense:
            wait = (estimate.early - elapsed) * self.APPROACH
        elif elapsed < estimate.late:
            wait = dense
        else:
            wait = dense + 0.25 * (elapsed - estimate.late)
        return now + min(self.max_interval, max(self.min_interval, wait))

    def observe(self, model: str, seconds: float) -> None:
        self.durations.observe(model, seconds)

    def eta(self, job: Job, now: float) -> float | None:
        """Seconds until the typical finish, or None once it has passed."""
        start = job.submitted_at or job.created_at
        left = start + self.durations.estimate(job.model).typical - now
        return left if left > 0 else None


# Members FairQueue remembers (the most recently served); about 100 bytes each.
REMEMBERED_MEMBERS = 10_000


class FairQueue:
    """Round-robin across members: whoever was served longest ago goes next.

    Memory is bounded: only the `remembered` most recently served members keep their turn.
    A forgotten member cannot be told from one never served, so both rank as turn 0. The
    order is therefore exactly the unbounded one, except among forgotten and never-served
    members: those still come before every remembered member (the unbounded queue put them
    there too, as their turns were older), but among themselves they rank by their oldest
    queued job rather than "never served first, then longest ago". A remembered floor turn
    would change nothing: it must also be shared by never-served members (indistinguishable),
    and any shared rank below the remembered turns gives this same order. A bot restart
    already forgets every turn; this only forgets members unserved for `remembered` turns.
    """

    def __init__(self, remembered: int = REMEMBERED_MEMBERS) -> None:
        if remembered < 1:
            raise ValueError("remembered must be at least 1")
        self.remembered = remembered
        # Oldest turn first: eviction pops from the front.
        self._last_served: OrderedDict[MemberKey, int] = OrderedDict()
        self._turn = 0

    @property
    def members_remembered(self) -> int:
        return len(self._last_served)

    def served(self, job: Job) -> None:
        self._turn += 1
        member = (job.guild_id, job.user_id)
        self._last_served[member] = self._turn
        self._last_served.move_to_end(member)
        if len(self._last_served) > self.remembered:
            self._last_served.popitem(last=False)

    def order(self, queued: Iterable[Job]) -> list[Job]:
        """The queued jobs in the order they would get slots, if slots freed one by one."""
        by_member: dict[MemberKey, deque[Job]] = defaultdict(deque)
        for job in sorted(queued, key=lambda j: j.id):
            by_member[(job.guild_id, job.user_id)].append(job)
        # Members by their last turn (never served first), then by their oldest job.
        members = sorted(by_member, key=lambda m: (self._last_served.get(m, 0), by_member[m][0].id))
        order: list[Job] = []
        while members:
            remaining = []
            for member in members:
                order.append(by_member[member].popleft())
                if by_member[member]:
                    remaining.append(member)
            members = remaining
        return order

    def pick(
        self,
        queued: Iterable[Job],
        active_by_guild: Mapping[int, int],
        per_guild_limit: int,
    ) -> Job | None:
        for job in self.order(queued):
            if active_by_guild.get(job.guild_id, 0) < per_guild_limit:
                return job
        return None


class EditPacer:
    """At most `per_channel` periodic edits per channel in any `window` seconds, and at most
    `per_second` in all (Discord's global limit is 50 requests a second for the whole bot).

    State-change edits are never held back, but they count, so periodic ones make way for them.
    """

    def __init__(self, per_channel: int = 4, window: float = 5.0, per_second: int = 20) -> None:
        self.per_channel = per_channel
        self.window = window
        self._recent: dict[int, deque[float]] = defaultdict(deque)
        self._overall = RateBudget(per_second)

    @property
    def channels_tracked(self) -> int:
        """Channels with remembered edits; `forget_idle` drops those quiet for a window."""
        return len(self._recent)

    def _expire(self, channel_id: int, now: float) -> deque[float]:
        recent = self._recent[channel_id]
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent

    def record(self, channel_id: int, now: float) -> None:
        self._expire(channel_id, now).append(now)
        self._overall.record(now)

    def allows(self, channel_id: int, now: float) -> bool:
        room_overall = self._overall.next_free(now) <= now
        if channel_id not in self._recent:  # asking does not make a channel tracked
            return room_overall
        return room_overall and len(self._expire(channel_id, now)) < self.per_channel

    def forget_idle(self, now: float) -> None:
        for channel_id in [c for c in self._recent if not self._expire(c, now)]:
            del self._recent[channel_id]


def spread(job_id: int) -> float:
    """A fixed fraction in [0, 1) per job, so jobs started together do not edit in step."""
    return (job_id * 0.6180339887) % 1.0
