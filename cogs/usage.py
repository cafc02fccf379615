"""/videoadmin usage: the figures and top members as text, the last 30 UTC days as a chart.

The text reads the rolling windows (24 hours, 30 days) like the quota does; the chart reads
whole UTC days (storage.usage.UsageRepository.daily_usage) and is drawn by
bot.reports.usage_chart off the event loop. Members are named only in the text, as mentions.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.reports.usage_chart import usage_chart_png
from cogs.text import money
from storage.models import UsageReport

if TYPE_CHECKING:
    from bot.client import VideoBot

CHART_FILENAME = "usage.png"

# The member-facing words of the reply, in one place.
SERVER = "This server"
LAST_DAY = "Last 24 hours: {videos} videos, {spend}"
LAST_MONTH = "Last 30 days: {videos} videos, {spend}"
OF_BUDGET = " of the {budget} budget"
TOP_MEMBERS = "Top members (30 days):"
TOP_MEMBER = "{rank}. <@{user_id}>: {videos} videos, {spend}"
CHART_NOTE = "The chart shows videos and spend per UTC day over the last 30 days."


@dataclass(frozen=True, slots=True)
class UsageAnswer:
    text: str
    chart_png: bytes


def usage_text(report: UsageReport, budget_usd: float, user_id: int | None) -> str:
    """The reply's text: the server's (or with `user_id`, that member's) figures, and for the
    server its top members by 30-day spend."""
    lines = [
        f"**{SERVER if user_id is None else f'<@{user_id}>'}**",
        LAST_DAY.format(videos=report.day_jobs, spend=money(report.day_usd)),
        LAST_MONTH.format(videos=report.month_jobs, spend=money(report.month_usd))
        + (OF_BUDGET.format(budget=money(budget_usd)) if user_id is None else ""),
    ]
    if user_id is None and report.top_members:
        lines.append(TOP_MEMBERS)
        lines += [
            TOP_MEMBER.format(
                rank=rank, user_id=row.user_id, videos=row.jobs, spend=money(row.spend_usd)
            )
            for rank, row in enumerate(report.top_members, start=1)
        ]
    lines.append(CHART_NOTE)
    return "\n".join(lines)


async def usage_answer(bot: VideoBot, guild_id: int, user_id: int | None) -> UsageAnswer:
    """The text and the chart of the server's usage, or of one member's."""
    now = time.time()
    report = await bot.usage.usage_report(guild_id, now, user_id=user_id)
    days = await bot.usage.daily_usage(guild_id, now, user_id=user_id)
    limits = await bot.gatekeeper.server_limits(guild_id)
    # Tens of milliseconds of drawing: kept off the event loop, which answers everyone else.
    chart = await asyncio.to_thread(usage_chart_png, days, one_member=user_id is not None)
    return UsageAnswer(usage_text(report, limits.monthly_budget_usd, user_id), chart)
