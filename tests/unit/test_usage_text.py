"""The /videoadmin usage reply's text: the server's figures and top members, or one member's."""

from __future__ import annotations

import datetime as dt

from cogs.usage import usage_text
from storage.models import DailyUsage, UsageReport, UsageRow

DAYS = [DailyUsage(dt.date(2026, 10, 9) + dt.timedelta(days=i), 0, 0.0) for i in range(30)]

REPORT = UsageReport(
    day_jobs=2,
    day_usd=0.77,
    month_jobs=5,
    month_usd=4.8,
    top_members=[UsageRow(2, 1, 3.0), UsageRow(1, 2, 0.9)],
)


def test_the_server_with_its_budget_and_top_members_as_mentions() -> None:
    assert usage_text(REPORT, 50.0, None, DAYS).split("\n") == [
        "**This server**",
        "Last 24 hours: 2 videos, $0.77",
        "Last 30 days: 5 videos, $4.80 of the $50.00 budget",
        "Top members (30 days):",
        "1. <@2>: 1 video, $3.00",
        "2. <@1>: 2 videos, $0.90",
        "Chart: one column per UTC day from 2026-10-09 to 2026-11-07 (dates as month-day; the last"
        " day is today so far). Top: videos per day (bars). Bottom: spend per day in US dollars"
        " (line).",
    ]


def test_one_member_without_the_budget_or_a_ranking() -> None:
    mine = UsageReport(0, 0.0, 2, 0.9, [UsageRow(3, 2, 0.9)])
    text = usage_text(mine, 50.0, 3, DAYS)
    assert text.startswith(
        "**<@3>**\nLast 24 hours: 0 videos, $0.00\nLast 30 days: 2 videos, $0.90\n"
    )
    assert "budget" not in text and "Top members" not in text


def test_a_server_without_videos_lists_no_members() -> None:
    text = usage_text(UsageReport(0, 0.0, 0, 0.0, []), 0.0, None, DAYS)
    assert "Top members" not in text and "Last 30 days: 0 videos, $0.00 of the $0.00 budget" in text


def test_the_moderator_reads_it_in_their_language() -> None:
    german = usage_text(REPORT, 50.0, None, DAYS, "de").split("\n")
    assert german[:6] == [
        "**Dieser Server**",
        "Letzte 24 Stunden: 2 Videos, $0.77",
        "Letzte 30 Tage: 5 Videos, $4.80 von $50.00 Budget",
        "Aktivste Mitglieder (30 Tage):",
        "1. <@2>: 1 Video, $3.00",
        "2. <@1>: 2 Videos, $0.90",
    ]
    assert german[6].startswith(
        "Diagramm: eine Spalte pro UTC-Tag vom 2026-10-09 bis zum 2026-11-07"
    )
    japanese = usage_text(REPORT, 50.0, None, DAYS, "ja")
    assert "グラフ：2026-10-09〜2026-11-07" in japanese and "直近24時間：2 本、$0.77" in japanese
