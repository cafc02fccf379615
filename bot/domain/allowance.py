"""What a member has left, at a glance (the top of /videos): pure, from the quota's own terms.

The figures come from the same effective limits (role quotas included) and the same usage
that /video's check reads, through the quota module's own helpers (remaining_today,
budget_allows, frees_at), so the summary cannot promise what /video would refuse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.catalog import ModelSpec
from bot.domain.quota import budget_allows, frees_at, remaining_today
from bot.i18n import translate
from storage.models import (
    DAY_SECONDS,
    MONEY_EPSILON,
    MONTH_SECONDS,
    EffectiveLimits,
    MemberUsage,
)


@dataclass(frozen=True, slots=True)
class Allowance:
    """What a member can still start, and when more frees up (Unix seconds)."""

    left_today: int  # the member's own videos left, capped by the server's
    daily: int  # the member's daily limit (their role's, where one applies)
    made_today: int
    server_left_today: int
    server_daily: int
    next_free_at: int | None  # with none left today: when one frees up (None: unknown)
    unfinished: int
    concurrent: int
    budget_usd: float
    budget_left_usd: float
    budget_binds: bool  # the budget stops the member before their daily count does
    budget_frees_at: int | None
    switched_off: bool = False  # a limit of zero: /video refuses every video


def cheapest_video_usd(models: Iterable[ModelSpec], max_seconds: int | None) -> float | None:
    """The lowest estimate of any video these models can make within max_seconds; None if
    none can (no model allowed, or every model's shortest clip is too long)."""
    estimates = [
        model.estimate_usd(seconds)
        for model in models
        if model.enabled
        for seconds in model.durations[:1]
        if max_seconds is None or seconds <= max_seconds
    ]
    return min(estimates, default=None)


def allowance(
    limits: EffectiveLimits, usage: MemberUsage, now: float, cheapest_usd: float | None
) -> Allowance:
    """The member's allowance at `now`; `cheapest_usd`: the cheapest video they could ask
    for (cheapest_video_usd), which tells whether the budget is what binds."""
    left = remaining_today(limits, usage)
    server_left = max(0, limits.guild_daily - usage.guild_day)
    next_free_at = None
    if left == 0:
        # Both days may be full: a video is possible only once both have a free slot.
        waits = []
        if usage.user_day >= limits.user_daily:
            waits.append(frees_at(usage.user_day_oldest, DAY_SECONDS, now))
        if server_left == 0:
            waits.append(frees_at(usage.guild_day_oldest, DAY_SECONDS, now))
        next_free_at = None if None in waits else max(w for w in waits if w is not None)
    # Binding: the budget is used up, or even the cheapest videos, as many as the day still
    # allows (at least one), would not all fit in what is left of it.
    per_video = 0.0 if cheapest_usd is None else cheapest_usd
    binds = limits.monthly_budget_usd - usage.guild_month_usd <= MONEY_EPSILON or not (
        budget_allows(limits, usage, per_video * max(left, 1))
    )
    # The limits whose zero refuses every video (a zero budget still lets free videos through).
    switched_off = 0 in (
        limits.user_daily,
        limits.guild_daily,
        limits.user_concurrent,
        limits.max_seconds,
    )
    return Allowance(
        left_today=left,
        daily=limits.user_daily,
        made_today=usage.user_day,
        server_left_today=server_left,
        server_daily=limits.guild_daily,
        next_free_at=next_free_at,
        unfinished=usage.user_active,
        concurrent=limits.user_concurrent,
        budget_usd=limits.monthly_budget_usd,
        budget_left_usd=max(0.0, limits.monthly_budget_usd - usage.guild_month_usd),
        budget_binds=binds,
        budget_frees_at=frees_at(usage.guild_month_oldest, MONTH_SECONDS, now) if binds else None,
        switched_off=switched_off,
    )


def allowance_text(allowance: Allowance, locale: str | None = None) -> str:
    """The lines at the top of /videos, in the member's language: videos left today,
    unfinished videos, and the server's budget when it is what binds."""
    a = allowance

    def say(key: str, **params: object) -> str:
        return translate(locale, f"allowance.{key}", **params)

    if a.switched_off:
        return say("switched_off")
    day = say("left_today", left=a.left_today, daily=a.daily, made=a.made_today)
    if a.left_today == 0 and a.server_left_today == 0:
        day += say("server_day_full", count=a.server_daily)
    elif a.server_left_today < a.daily - a.made_today:
        day += say("server_left", left=a.server_left_today)
    if a.next_free_at is not None:
        day += say("next_frees", when=f"<t:{a.next_free_at}:R>")
    lines = [day, say("unfinished", unfinished=a.unfinished, concurrent=a.concurrent)]
    if a.unfinished >= a.concurrent:
        lines[-1] += say("unfinished_full")
    if a.budget_binds:
        budget = say("budget_left", left=_usd(a.budget_left_usd), budget=_usd(a.budget_usd))
        if a.budget_frees_at is not None:
            budget += say("budget_frees", when=f"<t:{a.budget_frees_at}:R>")
        lines.append(budget)
    return "\n".join(lines)


def _usd(amount: float) -> str:
    return f"${amount:,.2f}"
