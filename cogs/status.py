"""/videoadmin status: the bot's version, uptime, queue, Together budget and this server's
recent failures. `status_text` is a pure function of the facts; `gather` reads them.

The queue is read from the database, so with several processes (PostgreSQL) it counts every
job, whichever process works it; the budget is the account's, and this process's share of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.engine.snapshot import BudgetView, EngineSnapshot
from bot.i18n import translate
from bot.metrics import bot_version
from bot.sharding import describe_shards
from cogs.render import failure_reason, format_duration, shown_reason
from cogs.text import state_word
from storage.models import Job

if TYPE_CHECKING:
    from bot.client import VideoBot

FAILURE_DAYS = 7
FAILURES_SHOWN = 5
REASON_SHOWN = 200  # five of these and the rest stay well inside a message's 2000 characters
MESSAGE_LIMIT = 2000

# The moderator reads the reply in their language: keys `admin.status_*` in bot/i18n.


@dataclass(frozen=True)
class StatusFacts:
    version: str
    uptime: float  # seconds
    overall: EngineSnapshot
    here: EngineSnapshot  # this server's share of the same
    failures: Sequence[Job]  # latest first
    shards: str | None = None  # the shards this process runs ("0-3"); None: not sharded
    shard_count: int | None = None


async def gather(bot: VideoBot, guild_id: int, now: float, monotonic_now: float) -> StatusFacts:
    """The facts for one server, read now."""
    failures = await bot.jobs.recent_failures(
        guild_id, now - FAILURE_DAYS * 86400, limit=FAILURES_SHOWN
    )
    budget = bot.engine.snapshot().budget
    settings = bot.settings
    return StatusFacts(
        version=bot_version(),
        uptime=monotonic_now - bot.started,
        overall=EngineSnapshot(await bot.jobs.unfinished_counts(), budget),
        here=EngineSnapshot(await bot.jobs.unfinished_counts(guild_id), budget),
        failures=failures,
        shards=describe_shards(settings.shard_ids, settings.shard_count),
        shard_count=settings.shard_count,
    )


def status_text(facts: StatusFacts, locale: str | None = None) -> str:
    """The reply, within Discord's 2000 characters."""

    def say(key: str, **params: object) -> str:
        return translate(locale, f"admin.status_{key}", **params)

    uptime = uptime_text(facts.uptime, locale)
    lines = [say("heading", version=facts.version, uptime=uptime)]
    if facts.shards is not None:
        lines.append(say("shards", shards=facts.shards, count=facts.shard_count))
    lines += ["", say("queue"), queue_text(facts.overall, facts.here, locale)]
    lines += ["", say("budget"), budget_text(facts.overall.budget, locale)]
    lines += ["", say("failures", count=FAILURE_DAYS)]
    lines += [failure_line(job, locale) for job in facts.failures] or [say("no_failures")]
    text = "\n".join(lines)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def uptime_text(seconds: float, locale: str | None = None) -> str:
    days, rest = divmod(max(0, int(seconds)), 86400)
    if days:
        return translate(locale, "duration.days", days=days, hours=rest // 3600)
    return format_duration(rest, locale)


def queue_text(overall: EngineSnapshot, here: EngineSnapshot, locale: str | None = None) -> str:
    if not overall.unfinished:
        return translate(locale, "admin.status_queue_empty")
    return " · ".join(
        translate(
            locale,
            "admin.status_queue_item",
            state=state_word(state, locale),
            all=count,
            here=here.states[state],
        )
        for state, count in overall.states.items()
    )


def budget_text(budget: BudgetView, locale: str | None = None) -> str:
    def say(key: str, **params: object) -> str:
        return translate(locale, f"admin.status_{key}", **params)

    if not budget.limited:
        return say("unlimited")
    rate = f"{budget.rate:.2f}"
    if not budget.learning:
        parts = [say("fixed", rate=rate)]
    else:
        parts = [say("learned", rate=rate, ceiling=f"{budget.ceiling:.2f}")]
        if budget.backing_off and budget.paused_for > 0:
            parts.append(say("paused", duration=format_duration(budget.paused_for, locale)))
        else:
            parts.append(say("climbing" if budget.backing_off else "steady"))
        if budget.last_429_ago is not None:
            parts.append(say("last_429", duration=format_duration(budget.last_429_ago, locale)))
    if budget.processes > 1:  # the rate above is the account's
        parts.append(say("shared", processes=budget.processes, share=f"{budget.share:.2f}"))
    return " · ".join(parts)


def failure_line(job: Job, locale: str | None = None) -> str:
    """'#12 · <t:…:R> · timed out · reason': the bot's own reasons in the reader's language,
    Together's words as they came (made inert)."""
    ended = job.finished_at if job.finished_at is not None else job.updated_at
    reason = failure_reason(job, locale) or translate(locale, "embed.no_reason")
    shown = shown_reason(reason, REASON_SHOWN)
    return f"#{job.id} · <t:{int(ended)}:R> · {state_word(job.state, locale)} · {shown}"
