"""What the engine holds right now, read at once: its unfinished jobs by state and its request
budget. Read by /metrics at each scrape and by /videoadmin status; nothing here writes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.domain.budget import AdaptiveBudget
from bot.engine.tracked import Tracked
from storage.models import UNFINISHED_STATES, JobState


@dataclass(frozen=True)
class BudgetView:
    """The request budget for Together as it stands."""

    limited: bool  # False: TOGETHER_REQUESTS_PER_SECOND is 0, no budget at all
    learning: bool  # False: a fixed rate (TOGETHER_START_REQUESTS_PER_SECOND 0)
    rate: float  # requests per second now (math.inf when not limited)
    ceiling: float
    backing_off: bool  # paused, or below the rate the last 429 cut
    paused_for: float  # seconds left of a pause (Retry-After); 0 when not paused
    last_429_ago: float | None  # seconds since a 429 last cut the rate; None: never
    # Processes sharing the account's rate (PostgreSQL, bot/engine/shared_budget.py), and
    # this one's requests per second of it; `rate` above is the account's.
    processes: int = 1
    share: float = math.inf


@dataclass(frozen=True)
class EngineSnapshot:
    states: Mapping[JobState, int]  # every unfinished state, 0 included
    budget: BudgetView

    @property
    def waiting(self) -> int:
        """Jobs in the bot's queue, not yet sent to Together."""
        return self.states[JobState.QUEUED]

    @property
    def unfinished(self) -> int:
        return sum(self.states.values())


def take_snapshot(
    jobs: Iterable[Tracked], rates: AdaptiveBudget, now: float, guild_id: int | None = None
) -> EngineSnapshot:
    """The tracked jobs (of one server, or all) by state, and the budget, at `now`."""
    states = {state: 0 for state in JobState if state in UNFINISHED_STATES}  # in life order
    for tracked in jobs:
        job = tracked.job
        if job.state in states and (guild_id is None or job.guild_id == guild_id):
            states[job.state] += 1
    throttled = rates.throttled_at
    budget = BudgetView(
        limited=not rates.unlimited,
        learning=rates.learning,
        rate=rates.rate,
        ceiling=rates.ceiling,
        backing_off=rates.backing_off(now),
        paused_for=max(0.0, rates.paused_until - now),
        last_429_ago=None if throttled is None else max(0.0, now - throttled),
        processes=rates.processes,
        share=rates.share,
    )
    return EngineSnapshot(states, budget)
