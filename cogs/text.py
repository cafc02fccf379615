"""Short texts shared by the moderator and member commands: pure functions."""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain.quota import QuotaDefaults
from storage.models import GuildLimits, Job, JobState

STATE_WORDS = {
    JobState.QUEUED: "waiting",
    JobState.SUBMITTING: "sending",
    JobState.RUNNING: "generating",
    JobState.DELIVERING: "uploading",
    JobState.DELIVERED: "delivered",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
    JobState.TIMED_OUT: "timed out",
}


def money(amount: float) -> str:
    return f"${amount:,.2f}"


def message_link(job: Job) -> str | None:
    if job.message_id is None:
        return None
    return f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{job.message_id}"


def job_line(job: Job, model_name: str) -> str:
    """'#12 · MiniMax Hailuo 02 · generating · <t:…:R> · [message](…)'"""
    parts = [f"#{job.id}", model_name, STATE_WORDS[job.state], f"<t:{int(job.created_at)}:R>"]
    link = message_link(job)
    if link:
        parts.append(f"[message]({link})")
    return " · ".join(parts)


def _limit(server: float | None, default: float, *, dollars: bool = False) -> str:
    shown = money(server if server is not None else default) if dollars else None
    if shown is None:
        shown = str(int(server if server is not None else default))
    return shown if server is not None else f"{shown} (default)"


def limits_text(
    limits: GuildLimits, defaults: QuotaDefaults, role_quotas: Mapping[int, int]
) -> str:
    lines = [
        f"Videos per member per 24 h: {_limit(limits.user_daily, defaults.user_daily)}",
        f"Videos in the server per 24 h: {_limit(limits.guild_daily, defaults.guild_daily)}",
        "Unfinished videos per member: " + _limit(limits.user_concurrent, defaults.user_concurrent),
        "Budget per 30 days: "
        + _limit(limits.monthly_budget_usd, defaults.monthly_budget_usd, dollars=True),
        "Longest clip: "
        + (f"{limits.max_seconds} s" if limits.max_seconds is not None else "any (default)"),
    ]
    for role_id, daily in sorted(role_quotas.items()):
        lines.append(f"<@&{role_id}>: {daily} videos per member per 24 h")
    return "\n".join(lines)
