"""Settings cached per process, kept in step across processes by the change counter.

Two GuildSettingsRepository instances on one SQLite file, each with its own connection, stand
for two bot processes sharing a database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.rules_refresh import RulesRefresher
from storage.db import Database, open_database
from storage.server_settings import GuildSettingsRepository

NOW = 1_700_000_000.0
GUILD = 10
OTHER_GUILD = 11
MOD = 99

Change = Callable[[GuildSettingsRepository], Awaitable[object]]


@pytest.fixture
async def two_databases(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    path = tmp_path / "bot.sqlite3"
    first = await open_database(path)
    second = await open_database(path)
    yield first, second
    await second.close()
    await first.close()


@pytest.fixture
def here(two_databases: tuple[Database, Database]) -> GuildSettingsRepository:
    return GuildSettingsRepository(two_databases[0])


@pytest.fixture
def elsewhere(two_databases: tuple[Database, Database]) -> GuildSettingsRepository:
    return GuildSettingsRepository(two_databases[1])


CHANGES: dict[str, Change] = {
    "quota": lambda r: r.set_limits(GUILD, MOD, NOW, user_daily=1),
    "role quota": lambda r: r.set_role_quota(GUILD, 5, 3, MOD, NOW),
    "model rule": lambda r: r.set_model_rule(GUILD, "m", "deny", MOD, NOW),
    "flow model": lambda r: r.set_flow_model(GUILD, "edit", "m", MOD, NOW),
    "channels": lambda r: r.set_channels(GUILD, [7], MOD, NOW),
    "block": lambda r: r.set_blocked(GUILD, 42, True, MOD, NOW),
    "safety": lambda r: r.set_safety(GUILD, MOD, NOW, screening=True),
    "blocked word": lambda r: r.change_blocked_word(GUILD, "word", True, 10, MOD, NOW),
}


@pytest.mark.parametrize("name", CHANGES)
async def test_a_change_elsewhere_is_seen_after_one_check(
    here: GuildSettingsRepository, elsewhere: GuildSettingsRepository, name: str
) -> None:
    before = await here.rules(GUILD)
    await CHANGES[name](elsewhere)
    assert await here.rules(GUILD) is before  # served from memory until the check
    assert await here.catch_up() == 1
    after = await here.rules(GUILD)
    assert after != before
    assert after == await elsewhere.rules(GUILD)


async def test_a_quota_change_elsewhere_shows_its_value(
    here: GuildSettingsRepository, elsewhere: GuildSettingsRepository
) -> None:
    assert (await here.limits(GUILD)).user_daily is None
    await elsewhere.set_limits(GUILD, MOD, NOW, user_daily=2)
    await here.catch_up()
    assert (await here.limits(GUILD)).user_daily == 2


async def test_without_changes_the_copies_stay(
    here: GuildSettingsRepository, elsewhere: GuildSettingsRepository
) -> None:
    await elsewhere.set_limits(GUILD, MOD, NOW, user_daily=2)  # before the copy was read
    rules = await here.rules(GUILD)
    await here.catch_up()  # the first look reads that change: the copy already has it
    assert await here.rules(GUILD) is rules
    assert await here.catch_up() == 0
    assert await here.rules(GUILD) is rules


async def test_only_the_changed_server_is_read_again(
    here: GuildSettingsRepository, elsewhere: GuildSettingsRepository
) -> None:
    await here.rules(GUILD)
    other = await here.rules(OTHER_GUILD)
    await elsewhere.set_channels(GUILD, [7], MOD, NOW)
    assert await here.catch_up() == 1
    assert await here.rules(OTHER_GUILD) is other
    assert (await here.rules(GUILD)).channels == {7}


async def test_changes_that_change_nothing_and_refusals_leave_the_version(
    here: GuildSettingsRepository, elsewhere: GuildSettingsRepository
) -> None:
    rules = await here.rules(GUILD)
    assert not await elsewhere.set_blocked(GUILD, 42, False, MOD, NOW)  # was not blocked
    await elsewhere.set_limits(GUILD, MOD, NOW)  # no limits given
    await elsewhere.record_refusal(GUILD, 42, "blocked_word", "word", NOW)
    assert await here.catch_up() == 0
    assert await here.rules(GUILD) is rules


async def test_own_changes_are_not_read_twice(
    here: GuildSettingsRepository, elsewhere: GuildSettingsRepository
) -> None:
    await here.set_limits(GUILD, MOD, NOW, user_daily=4)
    rules = await here.rules(GUILD)  # read after the change: has its version
    assert await here.catch_up() == 0
    assert await here.rules(GUILD) is rules


async def test_a_copy_older_than_announced_news_is_not_kept(
    here: GuildSettingsRepository, elsewhere: GuildSettingsRepository
) -> None:
    # A pushed notice (or a look from another task) can arrive while a read is still on its
    # way with older data; that read is served but not kept.
    here.forget_changed([(GUILD, 5)])
    await here.rules(GUILD)
    await elsewhere.set_limits(GUILD, MOD, NOW, user_daily=3)
    assert (await here.limits(GUILD)).user_daily == 3  # read again: nothing was kept


async def test_changes_are_numbered_in_order(
    here: GuildSettingsRepository, elsewhere: GuildSettingsRepository
) -> None:
    await here.rules(GUILD)
    await here.rules(OTHER_GUILD)
    await elsewhere.set_limits(GUILD, MOD, NOW, user_daily=1)
    assert await here.catch_up() == 1
    await elsewhere.set_limits(OTHER_GUILD, MOD, NOW, user_daily=1)
    await here.rules(GUILD)
    assert await here.catch_up() == 1  # the second change only; GUILD's copy is current
    assert (await here.limits(OTHER_GUILD)).user_daily == 1


class FlakyCache:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.third_call = asyncio.Event()

    async def catch_up(self) -> int:
        self.calls += 1
        if self.calls >= 3:
            self.third_call.set()
        if self.calls <= self.failures:
            raise OSError("disk I/O error")
        return 1


async def test_refresher_logs_a_run_of_failures_once(caplog: pytest.LogCaptureFixture) -> None:
    cache = FlakyCache(failures=3)
    refresher = RulesRefresher(cache)
    with caplog.at_level(logging.INFO, logger="bot.rules_refresh"):
        results = [await refresher.refresh_once() for _ in range(5)]
    assert results == [0, 0, 0, 1, 1]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "disk I/O error" in warnings[0].getMessage()
    assert any("works again" in r.getMessage() for r in caplog.records)


async def test_refresher_keeps_looking_until_closed() -> None:
    cache = FlakyCache(failures=1)
    async with RulesRefresher(cache, every=0.0):
        await cache.third_call.wait()
    calls = cache.calls
    await asyncio.sleep(0.01)
    assert cache.calls == calls  # stopped with the block
