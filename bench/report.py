"""The markdown table, and the issue's targets with PASS or MISS beside each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.metrics import Metrics
from bench.scenarios import ADAPTIVE, BASELINE, LEARNING, POLL_INTERVAL

COLUMNS: tuple[tuple[str, Callable[[Metrics], str]], ...] = (
    ("Scenario", lambda m: m.scenario),
    ("Strategy", lambda m: m.strategy),
    ("Scale", lambda m: f"{m.scale:g}"),
    ("Delivered", lambda m: f"{m.delivered}/{m.jobs}"),
    ("Missed 3 s", lambda m: str(m.missed_deadline)),
    ("First response p50 (ms)", lambda m: _num(m.first_response_p50_ms, 1)),
    ("First response p99 (ms)", lambda m: _num(m.first_response_p99_ms, 1)),
    ("Together req/job", lambda m: _num(m.together_per_job, 1)),
    ("Together peak req/s", lambda m: _num(m.peak_rate, 2)),
    ("Done→Discord p50 (s)", lambda m: _num(m.delivery_p50, 1)),
    ("Done→Discord p99 (s)", lambda m: _num(m.delivery_p99, 1)),
    ("Unpolled after done max (s)", lambda m: _num(m.unpolled_max, 1)),
    ("Discord req/job", lambda m: _num(m.discord_per_job, 1)),
    ("429s", lambda m: str(m.discord_429s)),
    ("Bot CPU (s)", lambda m: _num(m.cpu_seconds, 1)),
    ("Bot CPU busy", lambda m: "n/a" if m.cpu_busy is None else f"{m.cpu_busy:.0%}"),
    ("Bot peak RSS (MB)", lambda m: _num(m.peak_rss_mb, 0)),
)

NEW_ACCOUNT_COLUMNS: tuple[tuple[str, Callable[[Metrics], str]], ...] = (
    ("Scenario", lambda m: m.scenario),
    ("Strategy", lambda m: m.strategy),
    ("Delivered", lambda m: f"{m.delivered}/{m.jobs}"),
    ("Together req/job", lambda m: _num(m.together_per_job, 1)),
    ("Together 429s", lambda m: str(m.together_429s)),
    ("429s/job", lambda m: _num(m.together_429s / m.jobs if m.jobs else None, 2)),
    ("429s after 1st min", lambda m: _share(m.together_429_share_late)),
    ("Done→Discord p50 (s)", lambda m: _num(m.delivery_p50, 1)),
    ("Done→Discord p95 (s)", lambda m: _num(m.delivery_p95, 1)),
)
LATE_429_TARGET = 0.01

FIRST_RESPONSE_TARGET_MS = 100.0
REQUEST_RATIO_TARGET = 0.40
DELIVERY_RATIO_TARGET = 1.5
RSS_TARGET_MB = 150.0


@dataclass(frozen=True)
class Target:
    verdict: str  # PASS, MISS, or INFO (a figure to report, nothing to meet)
    text: str


def _num(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(
    rows: Sequence[Metrics], columns: Sequence[tuple[str, Callable[[Metrics], str]]] = COLUMNS
) -> str:
    lines = [
        "| " + " | ".join(name for name, _ in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(row) for _, cell in columns) + " |")
    return "\n".join(lines)


def unpolled_bound(m: Metrics) -> float:
    """How long a finished job should at most wait for its next check under a full budget.

    With every job overdue, the scheduler checks the most overdue first, so each is reached
    within one round of the budget (jobs / budget seconds); one poll interval on top allows
    for a check planned just before the job finished.
    """
    return m.jobs / m.budget + POLL_INTERVAL if m.budget else float("inf")


def targets(rows: Sequence[Metrics]) -> list[Target]:
    found = {(m.scenario, m.strategy): m for m in rows}
    out: list[Target] = []
    burst = found.get(("burst", ADAPTIVE.name))
    if burst and burst.first_response_p99_ms is not None:
        out.append(
            Target(
                _verdict(burst.first_response_p99_ms < FIRST_RESPONSE_TARGET_MS),
                f"burst: {burst.jobs} /video at once, first response p99 "
                f"{burst.first_response_p99_ms:.0f} ms (target < 100 ms; Discord allows 3 s)",
            )
        )
    light, light_base = found.get(("light", ADAPTIVE.name)), found.get(("light", BASELINE.name))
    if light and light_base and light_base.together_per_job:
        ratio = light.together_per_job / light_base.together_per_job
        out.append(
            Target(
                _verdict(ratio <= REQUEST_RATIO_TARGET),
                f"light: Together requests per job {light.together_per_job:.1f} vs baseline "
                f"{light_base.together_per_job:.1f} = {ratio:.0%} (target <= 40 %)",
            )
        )
    if light and light_base and light.delivery_p50 is not None and light_base.delivery_p50:
        ratio = light.delivery_p50 / light_base.delivery_p50
        out.append(
            Target(
                _verdict(ratio <= DELIVERY_RATIO_TARGET),
                f"light: done→Discord p50 {light.delivery_p50:.1f} s vs baseline "
                f"{light_base.delivery_p50:.1f} s = {ratio:.2f}x (target <= 1.5x)",
            )
        )
    learning = found.get(("new-account", LEARNING.name))
    if learning:
        share = learning.together_429_share_late
        out.append(
            Target(
                _verdict(share is not None and share <= LATE_429_TARGET),
                f"new-account, {learning.strategy}: Together 429s after the first minute "
                f"{_share(share)} of requests (target <= 1 %); "
                f"{learning.together_429s} in all, {learning.together_429s / learning.jobs:.2f} "
                "per job",
            )
        )
    over = found.get(("overload", ADAPTIVE.name))
    if over:
        out.extend(_overload(over))
    for m in rows:
        if m.scenario == "overload" and m.peak_rss_mb is not None:
            out.append(
                Target(
                    _verdict(m.peak_rss_mb < RSS_TARGET_MB),
                    f"overload, {m.strategy}: bot peak RSS {m.peak_rss_mb:.0f} MB with "
                    f"{m.jobs} jobs in flight (target < 150 MB)",
                )
            )
    if rows:
        late = [
            f"{m.scenario}/{m.strategy}: {m.missed_deadline}" for m in rows if m.missed_deadline
        ]
        out.append(
            Target(
                _verdict(not late),
                "every /video answered within Discord's 3 s"
                + (f"; missed: {', '.join(late)}" if late else " in every run"),
            )
        )
        total = sum(m.discord_429s for m in rows)
        out.append(Target(_verdict(total == 0), f"429s from Discord over all runs: {total} (0)"))
        short = [f"{m.scenario}/{m.strategy}" for m in rows if m.delivered < m.jobs]
        out.append(
            Target(
                _verdict(not short),
                "every job delivered"
                + (f"; not in: {', '.join(short)}" if short else " in every run"),
            )
        )
    return out


def _overload(m: Metrics) -> list[Target]:
    capacity = int(m.budget * m.scale)
    held = m.budget_held
    out = [
        Target(
            _verdict(bool(held)),
            f"overload: budget {m.budget:g} req/s held in every window: at most "
            f"{m.peak_in_budget_window} Together requests in one {m.budget_window:g} s (real) "
            f"window, capacity {capacity}: {m.peak_rate:.2f} per virtual s, in the window "
            f"starting {m.peak_window_at:.0f} s after the first request; at most "
            f"{m.steady_peak} in any window from the third on",
        ),
        Target(
            "INFO",
            f"overload: done→Discord p50 {_num(m.delivery_p50, 1)} s, "
            f"p99 {_num(m.delivery_p99, 1)} s",
        ),
    ]
    bound = unpolled_bound(m)
    ok = m.unpolled_max is not None and m.unpolled_max <= bound and not m.never_polled
    out.append(
        Target(
            _verdict(ok),
            f"overload: longest a finished job went unpolled: max {_num(m.unpolled_max, 1)} s, "
            f"p99 {_num(m.unpolled_p99, 1)} s; never polled after done: {m.never_polled} "
            f"(bound: jobs / budget + one poll interval = {bound:.0f} s)",
        )
    )
    return out


def render(rows: Sequence[Metrics], notes: Sequence[str]) -> str:
    parts = [
        "Time-like figures are virtual seconds: real seconds x the row's scale (time "
        "compression). First response is real milliseconds, and CPU real seconds: neither is "
        "compressed. Together peak req/s is per virtual second, counted in the bot's own "
        "budget window (1 real second). CPU busy: the share of one core the bot used while "
        "the scenario ran.",
        "",
        table(rows),
        "",
    ]
    fresh = [m for m in rows if m.scenario == "new-account"]
    if fresh:
        parts += [
            "New account (the stand-in applies Together's dynamic limit: 60 requests per "
            "virtual minute, later twice the past hour's successful rate; 429s after the first "
            "virtual minute as a share of the requests sent after it):",
            "",
            table(fresh, NEW_ACCOUNT_COLUMNS),
            "",
        ]
    parts += [
        "Targets:",
        "",
    ]
    parts += [f"- **{t.verdict}** {t.text}" for t in targets(rows)]
    if notes:
        parts += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(parts) + "\n"
