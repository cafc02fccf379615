"""Figures from one run's records, in virtual time (real seconds x scale) where time-like."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.runner import RunRecord

FIRST_MINUTE = 60.0  # virtual seconds in which a learning budget is allowed its first 429s


@dataclass(frozen=True)
class Metrics:
    scenario: str
    strategy: str
    scale: float
    jobs: int
    delivered: int
    missed_deadline: int  # commands not answered within Discord's 3 s
    first_response_p50_ms: float | None  # real milliseconds: not compressed
    first_response_p99_ms: float | None
    together_per_job: float
    budget: float  # Together requests per virtual second; 0: none
    budget_window: float  # the bot's window, in real seconds
    peak_in_budget_window: int  # most Together requests in any such window
    peak_window_at: float  # when that window began, virtual s after the first request
    steady_peak: int  # the same, leaving out the first two windows (the submission rush)
    peak_rate: float  # that, per virtual second
    peak_in_virtual_second: int  # most Together requests in any one virtual second
    delivery_p50: float | None  # completion at Together -> video in Discord, virtual s
    delivery_p95: float | None
    delivery_p99: float | None
    unpolled_p99: float | None  # completion at Together -> the next status check, virtual s
    unpolled_max: float | None
    never_polled: int  # jobs completed at Together that no status check saw
    together_429s: int  # Together's own 429s (the new-account scenario's dynamic limit)
    together_429_share_late: float | None  # 429s / requests, after the first virtual minute
    discord_per_job: float
    discord_429s: int
    cpu_seconds: float | None
    cpu_busy: float | None  # share of one core the bot used from the first command to the end
    peak_rss_mb: float | None
    wall_seconds: float
    problems: tuple[str, ...]

    @property
    def budget_held(self) -> bool | None:
        if not self.budget:
            return None
        return self.peak_in_budget_window <= math.floor(self.budget * self.scale)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def peak_in_window(times: Sequence[float], window: float) -> tuple[int, float]:
    """Most events in any half-open window (t - window, t], and when that window's first
    event was; `times` sorted."""
    peak, at, start = 0, 0.0, 0
    for end, now in enumerate(times):
        while times[start] <= now - window:
            start += 1
        if end - start + 1 > peak:
            peak, at = end - start + 1, times[start]
    return peak, at


def budget_window(per_second: float) -> float:
    """The bot's RateBudget window: floor(rate) requests per floor(rate) / rate seconds."""
    return math.floor(per_second) / per_second if per_second >= 1 else 1.0 / per_second


def _late_share(record: RunRecord, after: float) -> float | None:
    """The share of Together's answers that were 429s, counting from `after` (real time)."""
    late = len(record.together_times) - bisect.bisect_left(record.together_times, after)
    if not late:
        return None
    refused = len(record.together_429_times) - bisect.bisect_left(record.together_429_times, after)
    return refused / late


def _busy(record: RunRecord) -> float | None:
    if record.stats is None or record.cpu_at_first_command is None or not record.wall_seconds:
        return None
    return (record.stats.cpu_seconds - record.cpu_at_first_command) / record.wall_seconds


def compute(record: RunRecord) -> Metrics:
    scale = record.scale
    jobs = len(record.planned)
    responses = [seconds * 1000 for seconds in record.first_response.values()]
    deliveries = [
        (record.delivered_at[i] - record.completed_at[i]) * scale
        for i in record.delivered_at
        if i in record.completed_at
    ]
    unpolled, never = [], 0
    for index, done in record.completed_at.items():
        polls = record.polls.get(index, [])
        after = bisect.bisect_left(polls, done)
        if after < len(polls):
            unpolled.append((polls[after] - done) * scale)
        else:
            never += 1
    window = budget_window(record.budget) if record.budget else 1.0
    in_window, peak_at = peak_in_window(record.together_times, window)
    first = record.together_times[0] if record.together_times else 0.0
    stats = record.stats
    return Metrics(
        scenario=record.scenario.name,
        strategy=record.strategy.name,
        scale=scale,
        jobs=jobs,
        delivered=len(record.delivered_at),
        missed_deadline=len(record.missed_deadline),
        first_response_p50_ms=percentile(responses, 0.50),
        first_response_p99_ms=percentile(responses, 0.99),
        together_per_job=len(record.together_times) / jobs if jobs else 0.0,
        budget=record.strategy.budget,
        budget_window=window,
        peak_in_budget_window=in_window,
        peak_window_at=(peak_at - first) * scale,
        steady_peak=peak_in_window(
            [t for t in record.together_times if t >= first + 2 * window], window
        )[0],
        peak_rate=in_window / (window * scale),
        peak_in_virtual_second=peak_in_window(record.together_times, 1.0 / scale)[0],
        delivery_p50=percentile(deliveries, 0.50),
        delivery_p95=percentile(deliveries, 0.95),
        delivery_p99=percentile(deliveries, 0.99),
        unpolled_p99=percentile(unpolled, 0.99),
        unpolled_max=max(unpolled, default=None),
        never_polled=never,
        together_429s=len(record.together_429_times),
        together_429_share_late=_late_share(record, first + FIRST_MINUTE / scale),
        discord_per_job=record.discord_requests / jobs if jobs else 0.0,
        discord_429s=record.discord_429s,
        cpu_seconds=stats.cpu_seconds if stats else None,
        cpu_busy=_busy(record),
        peak_rss_mb=stats.peak_rss_bytes / 2**20 if stats else None,
        wall_seconds=record.wall_seconds,
        problems=tuple(record.problems),
    )


def job_lines(record: RunRecord) -> list[str]:
    """Per-job detail as CSV (virtual seconds from the first command), for a closer look."""
    start = min(record.together_times, default=0.0)
    lines = ["job,model,length,done,first_check_after_done,delivered,checks"]
    for job in sorted(record.planned, key=lambda j: j.index):
        done = record.completed_at.get(job.index)
        polls = record.polls.get(job.index, [])
        after = [t for t in polls if done is not None and t >= done]
        cells = [
            done,
            after[0] if after else None,
            record.delivered_at.get(job.index),
        ]
        shown = ["" if t is None else f"{(t - start) * record.scale:.2f}" for t in cells]
        lines.append(f"{job.index},{job.model},{job.length:.1f},{','.join(shown)},{len(polls)}")
    return lines
