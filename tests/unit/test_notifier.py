"""The Discord notifier's bookkeeping: dead interaction tokens, and how Discord errors are read."""

from __future__ import annotations

import datetime as dt
import time

import discord
import pytest

from bot.engine import FileRefused, MessageUnreachable
from cogs.progress import DiscordNotifier, _raise_sorted
from tests.unit.fakes import make_job


class Response:
    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "x"


def http_error(status: int, code: int) -> discord.HTTPException:
    kinds: dict[int, type[discord.HTTPException]] = {403: discord.Forbidden, 404: discord.NotFound}
    return kinds.get(status, discord.HTTPException)(
        Response(status), {"code": code, "message": "x"}
    )  # type: ignore[arg-type]


def interaction_id(seconds_ago: float) -> int:
    created = discord.utils.utcnow() - dt.timedelta(seconds=seconds_ago)
    return discord.utils.time_snowflake(created)


def test_dead_tokens_are_forgotten_once_they_would_have_expired_anyway() -> None:
    notifier = DiscordNotifier(bot=None)  # type: ignore[arg-type]
    expired = 401, 50027
    old = make_job(1, time.time(), interaction_id=interaction_id(3600))
    fresh = make_job(2, time.time(), interaction_id=interaction_id(10))
    assert notifier._token_died(old, http_error(*expired))
    assert notifier._token_died(fresh, http_error(*expired))
    assert notifier._dead_tokens == {fresh.interaction_id}, "the hour-old one is gone"


def test_a_blank_token_is_never_used() -> None:
    notifier = DiscordNotifier(bot=None)  # type: ignore[arg-type]
    job = make_job(1, time.time(), interaction_id=interaction_id(10), interaction_token="")
    assert not notifier._token_usable(job)


@pytest.mark.parametrize(
    ("status", "code", "raised"),
    [
        (404, 10003, MessageUnreachable),  # the channel was deleted
        (403, 50001, MessageUnreachable),  # missing access
        (403, 50013, MessageUnreachable),  # missing permissions
        (413, 40005, FileRefused),
        (503, 0, discord.HTTPException),  # passing: raised as it was, retried by the engine
        (429, 0, discord.HTTPException),
    ],
)
def test_discord_errors_are_read_as_final_refused_or_passing(
    status: int, code: int, raised: type[Exception]
) -> None:
    error = http_error(status, code)
    with pytest.raises(raised) as caught:
        _raise_sorted(error)
    if raised is discord.HTTPException:
        assert caught.value is error
