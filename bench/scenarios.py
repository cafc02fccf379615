"""What each scenario sends, and the two strategies it is run with.

All times here are virtual seconds: what they would be without time compression.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

# A realistic mix: the bot's default model (Hailuo 02) most often, and three others.
MODEL_MIX: tuple[tuple[str, float], ...] = (
    ("minimax/hailuo-02", 0.4),
    ("kwaivgI/kling-2.1-pro", 0.2),
    ("openai/sora-2", 0.2),
    ("google/veo-3.0", 0.2),
)
LENGTH_SD = 0.10  # job length: normal around the model's typical length, sd 10 %
QUEUE_SECONDS = 2.0  # time each job spends queued at Together before generating
PROMPT = "bench job {index}: a cat surfing a wave at sunset"
_PROMPT_TAG = re.compile(r"^bench job (\d+):")


@dataclass(frozen=True)
class Scenario:
    name: str
    jobs: int
    arrival_window: float  # commands arrive spread over this many seconds; 0: all at once
    # Default time compression: as high as keeps the bot's CPU well under one core in the
    # baseline (polling every job every 5 s), since a starved bot polls late and stretches
    # every virtual-time figure (500 jobs at scale 2.5 already ran it at 63-75 %). 10 is
    # also the most that PROGRESS_EDIT_INTERVAL's 1 s floor allows.
    scale: float
    summary: str
    # The Together stand-in applies a new account's dynamic limit (60 requests per virtual
    # minute to begin with), and the scenario runs its own two strategies.
    new_account: bool = False

    @property
    def strategies(self) -> tuple[Strategy, ...]:
        return NEW_ACCOUNT_STRATEGIES if self.new_account else STRATEGIES


@dataclass(frozen=True)
class Strategy:
    name: str
    poll_strategy: str
    budget: float  # Together requests per (virtual) second; 0: no limit
    # Where the bot's learned rate starts (virtual requests per second); 0: a fixed budget.
    start: float = 0.0
    slug: str = ""  # the run's folder suffix; the poll strategy by default

    @property
    def folder(self) -> str:
        return self.slug or self.poll_strategy


# The first two keep a fixed budget, as before the budget learned, so their figures compare
# with earlier runs: their stand-in sets no limit, so learning would only slow them down.
ADAPTIVE = Strategy("adaptive", "adaptive", 5.0)
# The loop in Together's own example: one task per job, polling every 5 s, no shared budget.
BASELINE = Strategy("baseline 5 s", "fixed", 0.0)
STRATEGIES = (ADAPTIVE, BASELINE)
# A new account: the bot's defaults (learning from 1/s under a 5/s ceiling) against the old
# fixed 5/s.
LEARNING = Strategy("learning, ceiling 5/s", "adaptive", 5.0, start=1.0, slug="learning")
FIXED_5 = Strategy("fixed 5/s", "adaptive", 5.0, slug="fixed5")
NEW_ACCOUNT_STRATEGIES = (LEARNING, FIXED_5)
NEW_ACCOUNT_BASE = 60  # requests per virtual minute, Together's base for a new account

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("burst", 200, 0.0, 5.0, "200 /video commands at once"),
        Scenario("light", 10, 60.0, 10.0, "10 jobs arriving over a minute"),
        Scenario("overload", 500, 0.0, 2.0, "500 jobs in flight at once"),
        Scenario(
            "new-account",
            50,
            0.0,
            5.0,
            "50 jobs at once on an account limited to 60 requests a minute",
            new_account=True,
        ),
    )
}
POLL_INTERVAL = 5.0
PROGRESS_EDIT_INTERVAL = 10.0  # the bot's default


@dataclass(frozen=True)
class PlannedJob:
    index: int
    member: int
    model: str
    length: float  # seconds at Together from creation to completion
    arrival: float  # seconds after the first command

    @property
    def prompt(self) -> str:
        return PROMPT.format(index=self.index)


def job_index(prompt: object) -> int | None:
    """The planned job a prompt belongs to (the stand-in sees only the request)."""
    match = _PROMPT_TAG.match(prompt) if isinstance(prompt, str) else None
    return int(match.group(1)) if match else None


def plan_jobs(
    scenario: Scenario, jobs: int, members: int, typical: Mapping[str, float], seed: int
) -> list[PlannedJob]:
    """The same jobs for both strategies: one seeded draw per scenario."""
    rng = random.Random(f"{seed}:{scenario.name}")
    models = [model for model, _ in MODEL_MIX]
    weights = [weight for _, weight in MODEL_MIX]
    planned = []
    for index in range(jobs):
        model = rng.choices(models, weights)[0]
        mean = typical[model]
        length = max(QUEUE_SECONDS + 1.0, rng.gauss(mean, LENGTH_SD * mean))
        arrival = rng.uniform(0.0, scenario.arrival_window) if scenario.arrival_window else 0.0
        planned.append(PlannedJob(index, index % max(1, members), model, length, arrival))
    return sorted(planned, key=lambda job: (job.arrival, job.index))
