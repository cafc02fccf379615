"""Short texts shared by the moderator and member commands: pure functions.

Every text is read from bot.i18n's catalogs in the reader's language (`locale`: a Discord
locale such as `de` or `pt-BR`, or a job's stored language).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.domain.quota import QuotaDefaults
from bot.i18n import translate
from storage.models import GuildLimits, Job, JobState


def locale_of(interaction: Any) -> str:
    """The member's client language (`discord.Interaction.locale`), as bot.i18n reads it."""
    return str(interaction.locale.value)


def state_word(state: JobState, locale: str | None) -> str:
    """'waiting', 'generating', 'delivered', ... in the reader's language."""
    return translate(locale, f"state.{state.value}")


def money(amount: float) -> str:
    return f"${amount:,.2f}"


def message_link(job: Job) -> str | None:
    if job.message_id is None:
        return None
    return f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{job.message_id}"


def job_line(job: Job, model_name: str, locale: str | None) -> str:
    """'#12 · MiniMax Hailuo 02 · generating · <t:…:R> · [message](…)'"""
    when = f"<t:{int(job.created_at)}:R>"
    parts = [f"#{job.id}", model_name, state_word(job.state, locale), when]
    link = message_link(job)
    if link:
        parts.append(translate(locale, "link.message", link=link))
    return " · ".join(parts)


def _limit(
    locale: str | None, server: float | None, default: float, *, dollars: bool = False
) -> str:
    value = server if server is not None else default
    shown = money(value) if dollars else str(int(value))
    return shown if server is not None else translate(locale, "limits.default", value=shown)


def limits_text(
    limits: GuildLimits,
    defaults: QuotaDefaults,
    role_quotas: Mapping[int, int],
    locale: str | None,
) -> str:
    def line(key: str, value: str) -> str:
        return translate(locale, key, value=value)

    longest = (
        translate(locale, "limits.seconds", seconds=limits.max_seconds)
        if limits.max_seconds is not None
        else translate(locale, "limits.any")
    )
    lines = [
        line("limits.user_daily", _limit(locale, limits.user_daily, defaults.user_daily)),
        line("limits.guild_daily", _limit(locale, limits.guild_daily, defaults.guild_daily)),
        line(
            "limits.user_concurrent",
            _limit(locale, limits.user_concurrent, defaults.user_concurrent),
        ),
        line(
            "limits.budget",
            _limit(locale, limits.monthly_budget_usd, defaults.monthly_budget_usd, dollars=True),
        ),
        line("limits.max_seconds", longest),
    ]
    for role_id, daily in sorted(role_quotas.items()):
        lines.append(translate(locale, "limits.role", role=f"<@&{role_id}>", count=daily))
    return "\n".join(lines)
