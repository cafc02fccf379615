"""/videoadmin usage: the figures and top members as text, the last 30 UTC days as a chart.

The text reads the rolling windows (24 hours, 30 days) like the quota does; the chart reads
whole UTC days (storage.usage.UsageRepository.daily_usage) and is drawn by
bot.reports.usage_chart off the event loop. Members are named only in the text, as mentions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.i18n import translate
from bot.reports.usage_chart import usage_chart_png
from cogs.text import money
from storage.models import DailyUsage, UsageReport

if TYPE_CHECKING:
    from bot.client import VideoBot

CHART_FILENAME = "usage.png"

# The moderator reads the reply in their language (keys `admin.usage_*` in bot/i18n); the
# chart draws no words (its font has no Japanese), so the reply says what it shows.


@dataclass(frozen=True, slots=True)
class UsageAnswer:
    text: str
    chart_png: bytes


def usage_text(
    report: UsageReport,
    budget_usd: float,
    user_id: int | None,
    days: Sequence[DailyUsage],
    locale: str | None = None,
) -> str:
    """The reply's text: the server's (or with `user_id`, that member's) figures, for the
    server its top members by 30-day spend, and what the chart of `days` shows."""

    def say(key: str, **params: object) -> str:
        return translate(locale, f"admin.usage_{key}", **params)

    lines = [
        f"**{say('server') if user_id is None else f'<@{user_id}>'}**",
        say("day", count=report.day_jobs, spend=money(report.day_usd)),
        say("month", count=report.month_jobs, spend=money(report.month_usd))
        + (say("of_budget", budget=money(budget_usd)) if user_id is None else ""),
    ]
    if user_id is None and report.top_members:
        lines.append(say("top"))
        lines += [
            say(
                "member",
                rank=rank,
                member=f"<@{row.user_id}>",
                count=row.jobs,
                spend=money(row.spend_usd),
            )
            for rank, row in enumerate(report.top_members, start=1)
        ]
    if days:
        first, last = days[0].day, days[-1].day
        lines.append(say("chart", first=first.isoformat(), last=last.isoformat()))
    return "\n".join(lines)


async def usage_answer(
    bot: VideoBot, guild_id: int, user_id: int | None, locale: str | None = None
) -> UsageAnswer:
    """The text and the chart of the server's usage, or of one member's."""
    now = time.time()
    report = await bot.usage.usage_report(guild_id, now, user_id=user_id)
    days = await bot.usage.daily_usage(guild_id, now, user_id=user_id)
    limits = await bot.gatekeeper.server_limits(guild_id)
    # Tens of milliseconds of drawing: kept off the event loop, which answers everyone else.
    chart = await asyncio.to_thread(usage_chart_png, days)
    text = usage_text(report, limits.monthly_budget_usd, user_id, days, locale)
    return UsageAnswer(text, chart)
