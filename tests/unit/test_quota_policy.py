"""The pure quota policy: resolving limits, each check, its wording and their order."""

from __future__ import annotations

import dataclasses

import pytest

from bot.domain.quota import (
    QuotaDefaults,
    check,
    effective_limits,
    model_allowed,
    remaining_today,
)
from storage.models import EffectiveLimits, GuildLimits, MemberUsage

NOW = 1_700_000_000.0
DAY = 86_400
DEFAULTS = QuotaDefaults(user_daily=5, guild_daily=50, user_concurrent=2, monthly_budget_usd=20.0)
LIMITS = EffectiveLimits(
    user_daily=5, guild_daily=50, user_concurrent=2, monthly_budget_usd=20.0, max_seconds=10
)
IDLE = MemberUsage(
    user_day=0,
    guild_day=0,
    user_active=0,
    guild_month_usd=0.0,
    user_day_oldest=None,
    guild_day_oldest=None,
    guild_month_oldest=None,
)


def usage(**changes: object) -> MemberUsage:
    return dataclasses.replace(IDLE, **changes)  # type: ignore[arg-type]


def limits(**changes: object) -> EffectiveLimits:
    return dataclasses.replace(LIMITS, **changes)  # type: ignore[arg-type]


def run(lim: EffectiveLimits, use: MemberUsage, *, cost: float = 0.49, seconds: int = 6) -> str:
    """The refused limit and its message, or 'ok'."""
    refusal = check(lim, use, NOW, estimated_cost_usd=cost, seconds=seconds)
    return "ok" if refusal is None else f"{refusal.limit}: {refusal.message}"


# --- effective_limits -----------------------------------------------------------------------


def test_defaults_apply_where_the_server_set_nothing() -> None:
    assert effective_limits(DEFAULTS, GuildLimits(), {}, []) == EffectiveLimits(
        user_daily=5, guild_daily=50, user_concurrent=2, monthly_budget_usd=20.0, max_seconds=None
    )


def test_server_values_replace_defaults_including_zero() -> None:
    guild = GuildLimits(user_daily=0, guild_daily=10, monthly_budget_usd=7.5, max_seconds=8)
    assert effective_limits(DEFAULTS, guild, {}, [111]) == EffectiveLimits(
        user_daily=0, guild_daily=10, user_concurrent=2, monthly_budget_usd=7.5, max_seconds=8
    )


def test_highest_role_override_wins_even_below_the_server_value() -> None:
    guild = GuildLimits(user_daily=5)
    roles = {1: 20, 2: 3, 3: 100}
    assert effective_limits(DEFAULTS, guild, roles, [1, 2, 9]).user_daily == 20
    assert effective_limits(DEFAULTS, guild, roles, [2]).user_daily == 3, "the role's own value"
    assert effective_limits(DEFAULTS, guild, roles, [9]).user_daily == 5, "no overriding role"
    assert effective_limits(DEFAULTS, guild, roles, []).user_daily == 5, "no roles at all"
    assert effective_limits(DEFAULTS, GuildLimits(), roles, [2]).user_daily == 3


# --- each check and its message -------------------------------------------------------------


def test_accepts_within_every_limit() -> None:
    assert run(LIMITS, usage(user_day=4, guild_day=49, user_active=1, guild_month_usd=1)) == "ok"


def test_max_seconds() -> None:
    assert run(limits(max_seconds=10), IDLE, seconds=10) == "ok"
    assert run(limits(max_seconds=None), IDLE, seconds=60) == "ok"
    assert run(limits(max_seconds=6), IDLE, seconds=10) == (
        "max_seconds: This server allows videos of up to 6 seconds; this one would be 10 seconds."
    )
    assert run(limits(max_seconds=0), IDLE, seconds=1) == (
        "max_seconds: Video generation is switched off on this server."
    )


def test_user_concurrent() -> None:
    assert run(LIMITS, usage(user_active=1)) == "ok"
    assert run(LIMITS, usage(user_active=2)) == (
        "user_concurrent: You have 2 videos in progress, and you can have 2 at once. "
        "You can start another when one of your running videos finishes."
    )
    assert run(limits(user_concurrent=0), IDLE).startswith("user_concurrent: Video generation")


def test_user_daily_boundary_and_when_it_frees() -> None:
    assert run(LIMITS, usage(user_day=4, user_day_oldest=NOW - 100)) == "ok"
    oldest = NOW - 13_600
    assert run(LIMITS, usage(user_day=5, user_day_oldest=oldest)) == (
        "user_daily: You have made 5 of your 5 videos for today. "
        f"Your next one frees up <t:{int(oldest) + DAY}:R>."
    )


def test_user_daily_spec_example() -> None:
    refusal = check(
        LIMITS,
        usage(user_day=5, user_day_oldest=1_700_000_000.0),
        1_700_050_000.0,
        estimated_cost_usd=0.49,
        seconds=6,
    )
    assert refusal is not None
    assert refusal.message == (
        "You have made 5 of your 5 videos for today. Your next one frees up <t:1700086400:R>."
    )


def test_free_time_is_rounded_up_to_the_second() -> None:
    text = run(LIMITS, usage(user_day=5, user_day_oldest=NOW - 10.2))
    assert f"<t:{int(NOW) + DAY - 10}:R>" in text


def test_user_daily_above_a_lowered_limit_and_zero() -> None:
    assert run(limits(user_daily=3), usage(user_day=7, user_day_oldest=NOW - 50)) == (
        "user_daily: You have made 7 videos today, and your limit is 3. "
        f"Your next one frees up <t:{int(NOW) - 50 + DAY}:R>."
    )
    assert run(limits(user_daily=0), IDLE) == (
        "user_daily: Video generation is switched off for you on this server."
    )


def test_guild_daily() -> None:
    assert run(LIMITS, usage(guild_day=49)) == "ok"
    assert run(LIMITS, usage(guild_day=50, guild_day_oldest=NOW - 3600)) == (
        "guild_daily: This server has made 50 of its 50 videos for today. "
        f"The next one frees up <t:{int(NOW) - 3600 + DAY}:R>."
    )
    assert run(limits(guild_daily=0), IDLE) == (
        "guild_daily: Video generation is switched off on this server."
    )


def test_budget_exactly_equal_is_allowed_a_cent_over_is_not() -> None:
    assert run(LIMITS, usage(guild_month_usd=19.51), cost=0.49) == "ok"
    # Float sums from SQL are not exact: 40 x $0.49 is 19.599999999999994, then $0.40 more.
    assert run(LIMITS, usage(guild_month_usd=sum([0.49] * 40)), cost=0.40) == "ok"
    month_oldest = NOW - 5 * DAY
    assert run(LIMITS, usage(guild_month_usd=19.52, guild_month_oldest=month_oldest)) == (
        "monthly_budget_usd: This server has used $19.52 of its $20.00 monthly video budget, "
        "and this video is estimated at $0.49. "
        f"Budget frees up <t:{int(month_oldest) + 30 * DAY}:R>."
    )


def test_budget_spec_example_and_special_cases() -> None:
    assert run(LIMITS, usage(guild_month_usd=19.6, guild_month_oldest=NOW)) == (
        "monthly_budget_usd: This server has used $19.60 of its $20.00 monthly video budget, "
        f"and this video is estimated at $0.49. Budget frees up <t:{int(NOW) + 30 * DAY}:R>."
    )
    assert run(LIMITS, IDLE, cost=25.0) == (
        "monthly_budget_usd: This video is estimated at $25.00, more than this server's "
        "whole $20.00 monthly video budget."
    )
    assert run(limits(monthly_budget_usd=0.0), IDLE) == (
        "monthly_budget_usd: This server has no video budget."
    )
    assert run(limits(monthly_budget_usd=0.0), IDLE, cost=0.0) == "ok", "free models still run"


def test_budget_counts_the_spend_the_storage_reports() -> None:
    # The storage sums Together's reported cost where known, else the estimate: the policy
    # only sees the total, and adds this video's estimate to it.
    assert run(LIMITS, usage(guild_month_usd=19.0), cost=1.0) == "ok"
    assert run(LIMITS, usage(guild_month_usd=19.0), cost=1.01).startswith("monthly_budget_usd")


@pytest.mark.parametrize(
    ("use", "seconds", "expected"),
    [
        (usage(user_active=2, user_day=5, guild_day=50, guild_month_usd=20.0), 30, "max_seconds"),
        (
            usage(user_active=2, user_day=5, guild_day=50, guild_month_usd=20.0),
            6,
            "user_concurrent",
        ),
        (usage(user_day=5, guild_day=50, guild_month_usd=20.0), 6, "user_daily"),
        (usage(guild_day=50, guild_month_usd=20.0), 6, "guild_daily"),
        (usage(guild_month_usd=20.0), 6, "monthly_budget_usd"),
    ],
)
def test_order_of_checks(use: MemberUsage, seconds: int, expected: str) -> None:
    refusal = check(LIMITS, use, NOW, estimated_cost_usd=0.49, seconds=seconds)
    assert refusal is not None and refusal.limit == expected


def test_no_time_is_promised_when_nothing_is_in_the_window() -> None:
    # A limit lowered to below usage counted elsewhere: no oldest job, so no timestamp.
    assert run(LIMITS, usage(guild_day=50)) == (
        "guild_daily: This server has made 50 of its 50 videos for today."
    )


def test_singular_wording() -> None:
    assert run(limits(user_daily=1), usage(user_day=1)) == (
        "user_daily: You have made 1 of your 1 video for today."
    )
    assert run(limits(user_concurrent=1), usage(user_active=1)).startswith(
        "user_concurrent: You have 1 video in progress"
    )


# --- summaries and rules --------------------------------------------------------------------


def test_remaining_today() -> None:
    assert remaining_today(LIMITS, IDLE) == 5
    assert remaining_today(LIMITS, usage(user_day=3)) == 2
    assert remaining_today(LIMITS, usage(user_day=3, guild_day=49)) == 1, "the server caps it"
    assert remaining_today(LIMITS, usage(user_day=9)) == 0, "never negative"
    assert remaining_today(limits(user_daily=0), IDLE) == 0


def test_model_rules() -> None:
    assert model_allowed({}, "any/model")
    assert not model_allowed({"a": "deny"}, "a")
    assert model_allowed({"a": "deny"}, "b"), "deny rules alone leave the rest open"
    assert model_allowed({"a": "allow"}, "a")
    assert not model_allowed({"a": "allow"}, "b"), "any allow rule makes an allowlist"
