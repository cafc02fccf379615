"""The /videos allowance: the figures from the quota's terms, its words, and that it agrees
with what /video's check would decide."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.allowance import (
    allowance,
    allowance_text,
    cheapest_video_usd,
)
from bot.domain.catalog import ModelSpec, Price
from bot.domain.quota import check
from bot.i18n import translate
from storage.models import EffectiveLimits, MemberUsage

NOW = 1_700_000_000.0
DAY = 86_400
MONTH = 30 * DAY
LIMITS = EffectiveLimits(
    user_daily=5, guild_daily=50, user_concurrent=2, monthly_budget_usd=20.0, max_seconds=None
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
CHEAP = 0.49
SWITCHED_OFF = translate("en", "allowance.switched_off")
UNFINISHED_FULL = translate("en", "allowance.unfinished_full")


def usage(**changes: object) -> MemberUsage:
    return dataclasses.replace(IDLE, **changes)  # type: ignore[arg-type]


def limits(**changes: object) -> EffectiveLimits:
    return dataclasses.replace(LIMITS, **changes)  # type: ignore[arg-type]


def text(lim: EffectiveLimits, use: MemberUsage, cheapest: float | None = CHEAP) -> str:
    return allowance_text(allowance(lim, use, NOW, cheapest))


def model(
    model_id: str, price: Price, durations: tuple[int, ...], enabled: bool = True
) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        name=model_id,
        sizes=("1280x720",),
        default_size="1280x720",
        durations=durations,
        default_seconds=durations[0],
        price=price,
        enabled=enabled,
    )


# --- the words ------------------------------------------------------------------------------


def test_room_left_shows_the_day_and_the_unfinished_videos_only() -> None:
    assert text(LIMITS, usage(user_day=2, guild_day=9, user_active=1)) == (
        "Videos left today: **3** of 5 (2 made in the last 24 hours)\nUnfinished: 1 of 2 at once"
    )


def test_none_left_says_when_the_next_one_frees_up() -> None:
    use = usage(user_day=5, guild_day=5, user_day_oldest=NOW - DAY + 600.5)
    assert text(LIMITS, use).split("\n")[0] == (
        "Videos left today: **0** of 5 (5 made in the last 24 hours) · the next one frees up "
        f"<t:{int(NOW) + 601}:R>"
    )


def test_the_server_day_caps_what_is_left() -> None:
    some = usage(user_day=1, guild_day=48)
    assert text(LIMITS, some).split("\n")[0] == (
        "Videos left today: **2** of 5 (1 made in the last 24 hours) · the server has 2 left today"
    )
    full = usage(user_day=1, guild_day=50, guild_day_oldest=NOW - DAY + 60)
    assert text(LIMITS, full).split("\n")[0] == (
        "Videos left today: **0** of 5 (1 made in the last 24 hours) · the server's 50 videos for"
        f" today are used · the next one frees up <t:{int(NOW) + 60}:R>"
    )


def test_with_both_days_full_the_later_slot_is_the_next_one() -> None:
    use = usage(
        user_day=5, guild_day=50, user_day_oldest=NOW - DAY + 60, guild_day_oldest=NOW - DAY + 900
    )
    assert allowance(LIMITS, use, NOW, CHEAP).next_free_at == int(NOW) + 900


def test_a_role_limit_is_the_daily_figure() -> None:
    # effective_limits put the role's value in user_daily; the summary shows that value.
    assert "**8** of 10" in text(limits(user_daily=10), usage(user_day=2))


def test_all_unfinished_slots_taken() -> None:
    assert text(LIMITS, usage(user_active=2)).split("\n")[1] == (
        "Unfinished: 2 of 2 at once · another can start when one finishes"
    )


def test_the_budget_shows_only_when_it_binds() -> None:
    # $20 budget, $18 spent: 5 cheap videos ($2.45) would not fit, so the budget binds.
    spent = usage(guild_month_usd=18.0, guild_month_oldest=NOW - MONTH + 3600)
    assert text(LIMITS, spent).split("\n")[2] == (
        f"Server budget left: **$2.00** of $20.00 over 30 days · frees up <t:{int(NOW) + 3600}:R>"
    )
    # $10 spent: the day's 5 videos fit, so the day binds and the budget is not shown.
    assert "budget" not in text(LIMITS, usage(guild_month_usd=10.0))
    # Used up: shown even when no model is usable here (nothing to price).
    assert "**$0.00** of $20.00" in text(LIMITS, usage(guild_month_usd=20.0), cheapest=None)
    assert "budget" not in text(LIMITS, usage(guild_month_usd=1.0), cheapest=None)


def test_a_zero_limit_switches_generation_off() -> None:
    for changes in (
        {"user_daily": 0},
        {"guild_daily": 0},
        {"user_concurrent": 0},
        {"max_seconds": 0},
    ):
        assert text(limits(**changes), IDLE) == SWITCHED_OFF


# --- the cheapest video ---------------------------------------------------------------------


def test_the_cheapest_video_is_the_shortest_clip_of_the_cheapest_usable_model() -> None:
    per_video = model("a", Price(usd=0.49), (6, 10))
    per_second = model("b", Price(usd=0.05, per="second"), (4, 8))  # 4 s: $0.20
    off = model("c", Price(usd=0.01), (5,), enabled=False)
    assert cheapest_video_usd([per_video, per_second, off], None) == pytest.approx(0.20)
    assert cheapest_video_usd([per_video, per_second], 3) is None
    assert cheapest_video_usd([per_video, model("d", Price(usd=0.1), (12,))], 10) == 0.49
    assert cheapest_video_usd([], None) is None


# --- agreement with /video's check ----------------------------------------------------------

counts = st.integers(min_value=0, max_value=6)
oldest = st.one_of(st.none(), st.floats(min_value=NOW - DAY + 1, max_value=NOW))


@given(
    user_daily=counts,
    guild_daily=counts,
    concurrent=st.integers(min_value=0, max_value=3),
    budget=st.sampled_from([0.0, 0.5, 1.0, 2.45, 20.0]),
    max_seconds=st.sampled_from([None, 0, 10]),
    user_day=counts,
    guild_extra=counts,
    active=st.integers(min_value=0, max_value=4),
    spent=st.sampled_from([0.0, 0.49, 0.98, 1.5, 2.0, 19.99, 25.0]),
    cheapest=st.sampled_from([0.0, 0.2, 0.49]),
    user_oldest=oldest,
)
def test_the_summary_shows_why_a_video_would_be_refused(
    user_daily: int,
    guild_daily: int,
    concurrent: int,
    budget: float,
    max_seconds: int | None,
    user_day: int,
    guild_extra: int,
    active: int,
    spent: float,
    cheapest: float,
    user_oldest: float | None,
) -> None:
    lim = EffectiveLimits(user_daily, guild_daily, concurrent, budget, max_seconds)
    use = MemberUsage(
        user_day=user_day,
        guild_day=user_day + guild_extra,
        user_active=active,
        guild_month_usd=spent,
        user_day_oldest=user_oldest if user_day else None,
        guild_day_oldest=user_oldest if user_day else None,
        guild_month_oldest=NOW - DAY if spent else None,
    )
    shown = allowance(lim, use, NOW, cheapest)
    words = allowance_text(shown)
    refusal = check(lim, use, NOW, estimated_cost_usd=cheapest, seconds=5)
    if refusal is None:  # /video takes the cheapest video: the summary must not say otherwise
        assert not shown.switched_off and shown.left_today >= 1
        assert shown.unfinished < shown.concurrent and UNFINISHED_FULL not in words
    elif shown.switched_off:
        assert words == SWITCHED_OFF
    elif refusal.limit in ("user_daily", "guild_daily"):
        assert shown.left_today == 0 and "left today: **0**" in words
    elif refusal.limit == "user_concurrent":
        assert UNFINISHED_FULL in words
    else:
        assert refusal.limit == "monthly_budget_usd"
        assert shown.budget_binds and "Server budget left" in words


def test_the_summary_speaks_the_members_language() -> None:
    full = usage(user_day=1, guild_day=50, guild_day_oldest=NOW - DAY + 60, user_active=2)
    shown = allowance(LIMITS, full, NOW, CHEAP)
    german = allowance_text(shown, "de")
    assert german.split("\n") == [
        "Heute noch möglich: **0** von 5 (1 in den letzten 24 Stunden erstellt)"
        " · die 50 Videos des Servers für heute sind verbraucht"
        f" · der nächste wird <t:{int(NOW) + 60}:R> frei",
        "Unfertig: 2 von 2 gleichzeitig · ein weiteres kann starten, sobald eins fertig ist",
    ]
    assert allowance_text(shown, "ja").startswith("今日の残り：5 本中 **0** 本")
    assert allowance_text(shown, "ko") == allowance_text(shown)  # unshipped: English
