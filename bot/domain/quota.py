"""The quota policy: given the limits and a member's usage, allow a video or say why not.

Pure functions, no I/O: the storage layer reads the usage and calls `check` inside the same
transaction that stores the job (Reservations.create_within_quota). Its one-statement fast path
applies the same comparisons in SQL (storage.usage.INSERT_WITHIN_LIMITS); a property test
holds the two to the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from storage.models import (
    DAY_SECONDS,
    MONEY_EPSILON,
    MONTH_SECONDS,
    EffectiveLimits,
    GuildLimits,
    MemberUsage,
)

LimitName = Literal[
    "user_daily", "guild_daily", "user_concurrent", "monthly_budget_usd", "max_seconds"
]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class QuotaDefaults:
    """Bot-wide limits (from the settings), used where a server has not set its own."""

    user_daily: int
    guild_daily: int
    user_concurrent: int
    monthly_budget_usd: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a video was not accepted; `message` is shown to the member as is."""

    limit: LimitName
    message: str


def effective_limits(
    defaults: QuotaDefaults,
    guild: GuildLimits,
    role_overrides: Mapping[int, int],
    member_role_ids: Iterable[int],
) -> EffectiveLimits:
    """Server values replace the defaults; a member's role overrides replace user_daily.

    With several overriding roles the highest wins, and it wins even when it is lower than the
    server's user_daily: a role's value is its members' limit.
    """
    role_limits = [role_overrides[r] for r in member_role_ids if r in role_overrides]
    server_daily = _or(guild.user_daily, defaults.user_daily)
    return EffectiveLimits(
        user_daily=max(role_limits) if role_limits else server_daily,
        guild_daily=_or(guild.guild_daily, defaults.guild_daily),
        user_concurrent=_or(guild.user_concurrent, defaults.user_concurrent),
        monthly_budget_usd=_or(guild.monthly_budget_usd, defaults.monthly_budget_usd),
        max_seconds=guild.max_seconds,
    )


def _or(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def check(
    limits: EffectiveLimits,
    usage: MemberUsage,
    now: float,
    *,
    estimated_cost_usd: float,
    seconds: int,
) -> Refusal | None:
    """The first limit this video would break, or None to accept it.

    Checked in order: length, videos in progress, the member's day, the server's day, the
    server's monthly budget.
    """
    return (
        _check_seconds(limits, seconds)
        or _check_concurrent(limits, usage)
        or _check_user_daily(limits, usage, now)
        or _check_guild_daily(limits, usage, now)
        or _check_budget(limits, usage, now, estimated_cost_usd)
    )


def remaining_today(limits: EffectiveLimits, usage: MemberUsage) -> int:
    """Videos the member can still make today: their own allowance, capped by the server's."""
    own = limits.user_daily - usage.user_day
    server = limits.guild_daily - usage.guild_day
    return max(0, min(own, server))


def budget_allows(limits: EffectiveLimits, usage: MemberUsage, cost_usd: float) -> bool:
    """Whether the server's monthly budget has room for `cost_usd` more."""
    return usage.guild_month_usd + cost_usd <= limits.monthly_budget_usd + MONEY_EPSILON


def frees_at(oldest: float | None, window: int, now: float) -> int | None:
    """When the oldest job leaves the rolling window (Unix seconds); None if there is none."""
    if oldest is None:
        return None
    # Rounded up: a slot must not be announced free a fraction of a second before it is.
    return math.ceil(max(oldest + window, now))


def model_allowed(rules: Mapping[str, str], model_id: str) -> bool:
    """A denied model is refused; once any model is allowed, only allowed models are."""
    rule = rules.get(model_id)
    if rule is not None:
        return rule == "allow"
    return "allow" not in rules.values()


# --- one function per limit ---------------------------------------------------------------


def _check_seconds(limits: EffectiveLimits, seconds: int) -> Refusal | None:
    cap = limits.max_seconds
    if cap is None or seconds <= cap:
        return None
    if cap == 0:
        return Refusal("max_seconds", "Video generation is switched off on this server.")
    return Refusal(
        "max_seconds",
        f"This server allows videos of up to {_plural(cap, 'second')}; "
        f"this one would be {_plural(seconds, 'second')}.",
    )


def _check_concurrent(limits: EffectiveLimits, usage: MemberUsage) -> Refusal | None:
    cap, active = limits.user_concurrent, usage.user_active
    if active < cap:
        return None
    if cap == 0:
        return Refusal("user_concurrent", "Video generation is switched off for members here.")
    return Refusal(
        "user_concurrent",
        f"You have {_plural(active, 'video')} in progress, and you can have {cap} at once. "
        "You can start another when one of your running videos finishes.",
    )


def _check_user_daily(limits: EffectiveLimits, usage: MemberUsage, now: float) -> Refusal | None:
    cap, used = limits.user_daily, usage.user_day
    if used < cap:
        return None
    if cap == 0:
        return Refusal("user_daily", "Video generation is switched off for you on this server.")
    return Refusal(
        "user_daily",
        f"You have made {_of(used, cap, 'your')}."
        f"{_frees(' Your next one frees up', usage.user_day_oldest, DAY_SECONDS, now)}",
    )


def _check_guild_daily(limits: EffectiveLimits, usage: MemberUsage, now: float) -> Refusal | None:
    cap, used = limits.guild_daily, usage.guild_day
    if used < cap:
        return None
    if cap == 0:
        return Refusal("guild_daily", "Video generation is switched off on this server.")
    return Refusal(
        "guild_daily",
        f"This server has made {_of(used, cap, 'its')}."
        f"{_frees(' The next one frees up', usage.guild_day_oldest, DAY_SECONDS, now)}",
    )


def _check_budget(
    limits: EffectiveLimits, usage: MemberUsage, now: float, estimated_cost_usd: float
) -> Refusal | None:
    budget, spent = limits.monthly_budget_usd, usage.guild_month_usd
    if budget_allows(limits, usage, estimated_cost_usd):
        return None
    if budget == 0:
        return Refusal("monthly_budget_usd", "This server has no video budget.")
    if estimated_cost_usd > budget + MONEY_EPSILON:
        # Waiting would not help: the video alone is over the whole budget.
        return Refusal(
            "monthly_budget_usd",
            f"This video is estimated at {_usd(estimated_cost_usd)}, more than this server's "
            f"whole {_usd(budget)} monthly video budget.",
        )
    return Refusal(
        "monthly_budget_usd",
        f"This server has used {_usd(spent)} of its {_usd(budget)} monthly video budget, "
        f"and this video is estimated at {_usd(estimated_cost_usd)}."
        f"{_frees(' Budget frees up', usage.guild_month_oldest, MONTH_SECONDS, now)}",
    )


# --- wording ------------------------------------------------------------------------------


def _frees(lead: str, oldest: float | None, window: int, now: float) -> str:
    """' <lead> <t:…:R>.' for when the oldest job leaves the rolling window; '' if unknown."""
    at = frees_at(oldest, window, now)
    return "" if at is None else f"{lead} <t:{at}:R>."


def _of(used: int, cap: int, whose: str) -> str:
    """'5 of your 5 videos for today', or, past a limit lowered since, '7 videos today, and
    your limit is 5'."""
    if used == cap:
        return f"{used} of {whose} {_plural(cap, 'video')} for today"
    return f"{_plural(used, 'video')} today, and {whose} limit is {cap}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _usd(amount: float) -> str:
    return f"${amount:,.2f}"
