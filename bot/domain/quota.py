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

from bot.i18n import Text, text
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
    """Why a video was not accepted: `text` is shown to the member in their language."""

    limit: LimitName
    text: Text

    @property
    def message(self) -> str:
        """In English, for logs and tests."""
        return self.text.render(None)


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
        return Refusal("max_seconds", text("quota.off_server"))
    return Refusal("max_seconds", text("quota.seconds", count=cap, seconds=seconds))


def _check_concurrent(limits: EffectiveLimits, usage: MemberUsage) -> Refusal | None:
    cap, active = limits.user_concurrent, usage.user_active
    if active < cap:
        return None
    if cap == 0:
        return Refusal("user_concurrent", text("quota.off_members"))
    return Refusal("user_concurrent", text("quota.concurrent", count=active, cap=cap))


def _check_user_daily(limits: EffectiveLimits, usage: MemberUsage, now: float) -> Refusal | None:
    cap, used = limits.user_daily, usage.user_day
    if used < cap:
        return None
    if cap == 0:
        return Refusal("user_daily", text("quota.off_you"))
    frees = _frees("quota.user_frees", usage.user_day_oldest, DAY_SECONDS, now)
    return Refusal("user_daily", _used("quota.user_daily", used, cap, frees))


def _check_guild_daily(limits: EffectiveLimits, usage: MemberUsage, now: float) -> Refusal | None:
    cap, used = limits.guild_daily, usage.guild_day
    if used < cap:
        return None
    if cap == 0:
        return Refusal("guild_daily", text("quota.off_server"))
    frees = _frees("quota.guild_frees", usage.guild_day_oldest, DAY_SECONDS, now)
    return Refusal("guild_daily", _used("quota.guild_daily", used, cap, frees))


def _check_budget(
    limits: EffectiveLimits, usage: MemberUsage, now: float, estimated_cost_usd: float
) -> Refusal | None:
    budget, spent = limits.monthly_budget_usd, usage.guild_month_usd
    if budget_allows(limits, usage, estimated_cost_usd):
        return None
    if budget == 0:
        return Refusal("monthly_budget_usd", text("quota.no_budget"))
    cost = _usd(estimated_cost_usd)
    if estimated_cost_usd > budget + MONEY_EPSILON:
        # Waiting would not help: the video alone is over the whole budget.
        return Refusal(
            "monthly_budget_usd", text("quota.over_budget", cost=cost, budget=_usd(budget))
        )
    frees = _frees("quota.budget_frees", usage.guild_month_oldest, MONTH_SECONDS, now)
    return Refusal(
        "monthly_budget_usd",
        text("quota.budget", spent=_usd(spent), budget=_usd(budget), cost=cost, frees=frees),
    )


# --- wording ------------------------------------------------------------------------------


def _frees(key: str, oldest: float | None, window: int, now: float) -> Text | str:
    """' Your next one frees up <t:…:R>.' for when the oldest job leaves the rolling window;
    '' if unknown."""
    at = frees_at(oldest, window, now)
    return "" if at is None else text(key, when=f"<t:{at}:R>")


def _used(key: str, used: int, cap: int, frees: Text | str) -> Text:
    """'5 of your 5 videos for today', or, past a limit lowered since, '7 videos today, and
    your limit is 5' (`<key>_over`)."""
    if used == cap:
        return text(key, used=used, count=cap, frees=frees)
    return text(f"{key}_over", used=used, cap=cap, frees=frees)


def _usd(amount: float) -> str:
    return f"${amount:,.2f}"
