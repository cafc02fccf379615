"""/videoadmin status: the bot's version, uptime, queue, Together budget and this server's
recent failures. `status_text` is a pure function of the facts; `gather` reads them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.engine.snapshot import BudgetView, EngineSnapshot
from bot.metrics import bot_version
from cogs.render import format_duration, shown_reason
from cogs.text import state_word
from storage.models import Job

if TYPE_CHECKING:
    from bot.client import VideoBot

FAILURE_DAYS = 7
FAILURES_SHOWN = 5
REASON_SHOWN = 200  # five of these and the rest stay well inside a message's 2000 characters
MESSAGE_LIMIT = 2000

# Member-facing texts, in one place for translation.
HEADING = "**Video bot {version}** · up {uptime}"
QUEUE_HEADING = "**Queue** (all servers / this server)"
QUEUE_EMPTY = "No unfinished videos."
BUDGET_HEADING = "**Together request budget**"
BUDGET_UNLIMITED = "no limit (TOGETHER_REQUESTS_PER_SECOND is 0)"
BUDGET_LEARNED = "{rate:.2f} requests/s now, at most {ceiling:.2f}/s"
BUDGET_FIXED = "fixed at {rate:.2f} requests/s"
BACKING_OFF_PAUSED = "backing off after a 429: no requests for {seconds} more"
BACKING_OFF = "backing off after a 429: climbing back"
NOT_BACKING_OFF = "not backing off"
LAST_429 = "last 429 {ago} ago"
FAILURES_HEADING = "**Recent failures here** (last {days} days)"
NO_FAILURES = "None."
NO_REASON = "No reason was given."


@dataclass(frozen=True)
class StatusFacts:
    version: str
    uptime: float  # seconds
    overall: EngineSnapshot
    here: EngineSnapshot  # this server's share of the same
    failures: Sequence[Job]  # latest first


async def gather(bot: VideoBot, guild_id: int, now: float, monotonic_now: float) -> StatusFacts:
    """The facts for one server, read now."""
    failures = await bot.jobs.recent_failures(
        guild_id, now - FAILURE_DAYS * 86400, limit=FAILURES_SHOWN
    )
    return StatusFacts(
        version=bot_version(),
        uptime=monotonic_now - bot.started,
        overall=bot.engine.snapshot(),
        here=bot.engine.snapshot(guild_id),
        failures=failures,
    )


def status_text(facts: StatusFacts) -> str:
    """The reply, within Discord's 2000 characters."""
    lines = [HEADING.format(version=facts.version, uptime=uptime_text(facts.uptime))]
    lines += ["", QUEUE_HEADING, queue_text(facts.overall, facts.here)]
    lines += ["", BUDGET_HEADING, budget_text(facts.overall.budget)]
    lines += ["", FAILURES_HEADING.format(days=FAILURE_DAYS)]
    lines += [failure_line(job) for job in facts.failures] or [NO_FAILURES]
    text = "\n".join(lines)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def uptime_text(seconds: float) -> str:
    days, rest = divmod(max(0, int(seconds)), 86400)
    return f"{days}d {rest // 3600}h" if days else format_duration(rest)


def queue_text(overall: EngineSnapshot, here: EngineSnapshot) -> str:
    if not overall.unfinished:
        return QUEUE_EMPTY
    return " · ".join(
        f"{state_word(state, None)}: {count} / {here.states[state]}"
        for state, count in overall.states.items()
    )


def budget_text(budget: BudgetView) -> str:
    if not budget.limited:
        return BUDGET_UNLIMITED
    if not budget.learning:
        return BUDGET_FIXED.format(rate=budget.rate)
    parts = [BUDGET_LEARNED.format(rate=budget.rate, ceiling=budget.ceiling)]
    if budget.backing_off and budget.paused_for > 0:
        parts.append(BACKING_OFF_PAUSED.format(seconds=format_duration(budget.paused_for)))
    else:
        parts.append(BACKING_OFF if budget.backing_off else NOT_BACKING_OFF)
    if budget.last_429_ago is not None:
        parts.append(LAST_429.format(ago=format_duration(budget.last_429_ago)))
    return " · ".join(parts)


def failure_line(job: Job) -> str:
    """'#12 · <t:…:R> · timed out · reason' (the reason is Together's words: made inert)."""
    ended = job.finished_at if job.finished_at is not None else job.updated_at
    reason = shown_reason(job.failure_reason or NO_REASON, REASON_SHOWN)
    return f"#{job.id} · <t:{int(ended)}:R> · {state_word(job.state, None)} · {reason}"
