"""Figures of a run with several bot processes: the account's Together budget over all of them,
and CPU per process; the rest (first response, deliveries) is bench.metrics'."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.metrics import Metrics, compute, peak_in_window
from bench.runner import RunRecord

WINDOW = 1.0  # real seconds: TOGETHER_REQUESTS_PER_SECOND is per (real) second


@dataclass(frozen=True)
class ProcessesMetrics:
    processes: int
    database: str  # "PostgreSQL", or "SQLite" for the one-process comparison
    base: Metrics
    # TOGETHER_REQUESTS_PER_SECOND as every process was configured (real requests per second),
    # taken as the account's budget: what all processes together may send.
    account_budget: float
    peak_in_window: int  # most Together requests, all processes, in any sliding 1 s window
    windows: int  # consecutive 1 s windows from the first Together request to the last
    windows_over: int  # of those, the ones holding more requests than the budget
    cpu_per_process: tuple[float | None, ...]  # CPU seconds, from the first command to the end
    busy_per_process: tuple[float | None, ...]  # that, as a share of one core

    @property
    def capacity(self) -> int:
        return math.floor(self.account_budget * WINDOW)

    @property
    def budget_held(self) -> bool:
        return self.peak_in_window <= self.capacity


def fixed_windows(times: Sequence[float], window: float) -> list[int]:
    """Requests in each consecutive `window` from the first request on; `times` sorted."""
    if not times:
        return []
    counts = [0] * (math.floor((times[-1] - times[0]) / window) + 1)
    for moment in times:
        counts[math.floor((moment - times[0]) / window)] += 1
    return counts


def compute_processes(
    record: RunRecord, processes: int, database: str = "PostgreSQL"
) -> ProcessesMetrics:
    counts = fixed_windows(record.together_times, WINDOW)
    capacity = math.floor(record.budget * WINDOW)
    cpu: list[float | None] = []
    busy: list[float | None] = []
    for stats, at_start in zip(
        record.process_stats, record.process_cpu_at_first_command, strict=True
    ):
        used = None if stats is None or at_start is None else stats.cpu_seconds - at_start
        cpu.append(used)
        wall = record.wall_seconds
        busy.append(used / wall if used is not None and wall else None)
    return ProcessesMetrics(
        processes=processes,
        database=database,
        base=compute(record),
        account_budget=record.budget,
        peak_in_window=peak_in_window(record.together_times, WINDOW)[0],
        windows=len(counts),
        windows_over=sum(1 for count in counts if count > capacity),
        cpu_per_process=tuple(cpu),
        busy_per_process=tuple(busy),
    )


def _num(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _each(values: Sequence[float | None], shown: Callable[[float], str]) -> str:
    return " / ".join("n/a" if value is None else shown(value) for value in values)


COLUMNS: tuple[tuple[str, Callable[[ProcessesMetrics], str]], ...] = (
    ("Scenario", lambda m: m.base.scenario),
    ("Processes", lambda m: str(m.processes)),
    ("Database", lambda m: m.database),
    ("Scale", lambda m: f"{m.base.scale:g}"),
    ("Delivered", lambda m: f"{m.base.delivered}/{m.base.jobs}"),
    ("Missed 3 s", lambda m: str(m.base.missed_deadline)),
    ("First response p50 (ms)", lambda m: _num(m.base.first_response_p50_ms, 1)),
    ("First response p99 (ms)", lambda m: _num(m.base.first_response_p99_ms, 1)),
    ("Account budget (req per real s)", lambda m: f"{m.capacity}"),
    ("Most Together req in 1 s", lambda m: str(m.peak_in_window)),
    ("1 s windows over budget", lambda m: f"{m.windows_over}/{m.windows}"),
    ("Budget held", lambda m: "yes" if m.budget_held else "NO"),
    ("Together 429s", lambda m: str(m.base.together_429s)),
    ("Together req/job", lambda m: _num(m.base.together_per_job, 1)),
    ("Done→Discord p50 (s)", lambda m: _num(m.base.delivery_p50, 1)),
    ("Done→Discord p99 (s)", lambda m: _num(m.base.delivery_p99, 1)),
    ("CPU per process (s)", lambda m: _each(m.cpu_per_process, lambda v: f"{v:.1f}")),
    ("CPU busy per process", lambda m: _each(m.busy_per_process, lambda v: f"{v:.0%}")),
    ("Wall (s)", lambda m: f"{m.base.wall_seconds:.0f}"),
)


def table(rows: Sequence[ProcessesMetrics]) -> str:
    lines = [
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(cell(row) for _, cell in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


EXPLANATION = (
    "Account budget: TOGETHER_REQUESTS_PER_SECOND as each process was given it (5 per virtual "
    "second x the scale), taken as what the account allows all processes together. Most "
    "Together req in 1 s: every process's requests to /v2/videos, as the Together stand-in "
    "received them, in any sliding window of 1 real second; 1 s windows over budget: "
    "consecutive 1 s windows from the first request to the last that held more than the budget. "
    "CPU per process: CPU seconds of each bot process (shard 0 / shard 1 / ...) from the first "
    "command to the end, and that as a share of one core. First response is real "
    "milliseconds; Done→Discord virtual seconds (real x scale)."
)
