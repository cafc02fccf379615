"""Time compression: every time-like setting divided by the scale, every rate multiplied.

The bot runs on the wall clock, so compressing time means shrinking what it waits for: the
stand-in's job lengths, its poll and edit intervals, the models' expected lengths and time
limits (through a generated MODELS_FILE), and the Discord stand-in's rate-limit windows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.scenarios import POLL_INTERVAL, PROGRESS_EDIT_INTERVAL, Strategy
from bot.domain.catalog import load_catalog
from bot.settings import Settings


def _bound(setting: str, kind: str) -> float:
    """A setting's limit ("ge" or "le") as bot/settings.py declares it, so they never drift."""
    for constraint in Settings.model_fields[setting].metadata:
        if hasattr(constraint, kind):
            return float(getattr(constraint, kind))
    raise LookupError(f"{setting} has no {kind} bound")


POLL_INTERVAL_FLOOR = _bound("poll_interval", "ge")
EDIT_INTERVAL_FLOOR = _bound("progress_edit_interval", "ge")
BUDGET_CEILING = _bound("together_requests_per_second", "le")
ACTIVE_CEILING = int(_bound("max_active_jobs", "le"))


@dataclass(frozen=True)
class TimeScale:
    factor: float
    floors: list[str] = field(default_factory=list, compare=False)

    def real(self, virtual: float) -> float:
        return virtual / self.factor

    def virtual(self, real: float) -> float:
        return real * self.factor

    def setting(self, name: str, virtual: float, floor: float) -> float:
        """A time setting for the bot, compressed; raised to the bot's minimum if need be."""
        real = virtual / self.factor
        if real >= floor:
            return real
        note = (
            f"{name} = {virtual:g} s would be {real:g} s compressed, below the bot's minimum "
            f"{floor:g} s: it ran at {floor:g} s = {floor * self.factor:g} virtual s"
        )
        if note not in self.floors:
            self.floors.append(note)
        return float(floor)


def bot_settings(
    strategy: Strategy, scale: TimeScale, jobs: int, models_file: Path
) -> dict[str, Any]:
    """Settings for BotProcess: the bot's defaults, compressed, with room for every job."""
    budget = strategy.budget * scale.factor
    if budget > BUDGET_CEILING:
        raise ValueError(
            f"TOGETHER_REQUESTS_PER_SECOND would be {budget:g} (budget x scale), over the bot's "
            f"maximum {BUDGET_CEILING}: use a smaller --scale"
        )
    active = min(ACTIVE_CEILING, max(20, jobs))
    return {
        "poll_strategy": strategy.poll_strategy,
        "poll_interval": scale.setting("POLL_INTERVAL", POLL_INTERVAL, POLL_INTERVAL_FLOOR),
        "progress_edit_interval": scale.setting(
            "PROGRESS_EDIT_INTERVAL", PROGRESS_EDIT_INTERVAL, EDIT_INTERVAL_FLOOR
        ),
        "together_requests_per_second": budget,
        "together_start_requests_per_second": strategy.start * scale.factor,
        "max_active_jobs": active,
        "max_active_jobs_per_server": active,
        # Quotas out of the way: the scenario, not a limit, decides how many jobs run.
        "default_user_daily": 100_000,
        "default_guild_daily": 100_000,
        "default_user_concurrent": 1000,
        "default_monthly_budget_usd": 1_000_000.0,
        "models_file": models_file,
        "log_level": "INFO",
    }


def typical_seconds() -> dict[str, float]:
    """Each bundled model's expected generation time (virtual seconds)."""
    return {spec.id: spec.expected_seconds for spec in load_catalog()}


def write_models_file(path: Path, scale: TimeScale) -> Path:
    """A copy of the bundled catalog with expected lengths and time limits compressed."""
    models = []
    for spec in load_catalog():
        entry = spec.model_dump(mode="json")
        entry["expected_seconds"] = spec.expected_seconds / scale.factor
        entry["timeout_minutes"] = spec.timeout_minutes / scale.factor
        models.append(entry)
    path.write_text(json.dumps({"models": models}, indent=1), encoding="utf-8")
    return path
