"""The multi-process bench's budget figures: requests of every process per 1 s window, CPU each."""

from __future__ import annotations

from bench.procstats import ProcStats
from bench.runner import RunRecord
from bench.scenarios import ADAPTIVE, SCENARIOS
from bench.sharded_report import compute_processes, fixed_windows, table


def record(times: list[float], budget: float) -> RunRecord:
    return RunRecord(SCENARIOS["burst"], ADAPTIVE, 5.0, [], budget, together_times=sorted(times))


def test_fixed_windows_count_from_the_first_request() -> None:
    assert fixed_windows([], 1.0) == []
    assert fixed_windows([10.0, 10.5, 10.99, 11.0, 13.2], 1.0) == [3, 1, 0, 1]


def test_a_window_over_the_account_budget_is_counted_and_the_budget_not_held() -> None:
    # Two processes, each within its own 10/s, together 12 in the first second.
    times = [100.0 + i * 0.04 for i in range(12)] + [101.5 + i * 0.1 for i in range(5)]
    metrics = compute_processes(record(times, budget=10.0), processes=2)
    assert (metrics.capacity, metrics.peak_in_window) == (10, 12)
    assert (metrics.windows_over, metrics.windows) == (1, 2)
    assert not metrics.budget_held


def test_requests_within_the_budget_in_every_window_hold_it() -> None:
    times = [i * 0.1 for i in range(30)]  # 10 a second, evenly
    metrics = compute_processes(record(times, budget=10.0), processes=1)
    assert metrics.peak_in_window == 10 and metrics.windows_over == 0 and metrics.budget_held


def test_cpu_is_reported_per_process_from_the_first_command() -> None:
    run = record([1.0], budget=10.0)
    run.wall_seconds = 4.0
    run.process_stats = [ProcStats(3.0, 1), None]
    run.process_cpu_at_first_command = [1.0, 0.5]
    metrics = compute_processes(run, processes=2)
    assert metrics.cpu_per_process == (2.0, None)
    assert metrics.busy_per_process == (0.5, None)
    row = table([metrics]).splitlines()[-1]
    assert "| 2.0 / n/a | 50% / n/a |" in row
