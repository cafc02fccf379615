"""The safety settings and blocked words on a real SQLite file: defaults, changes, bounds, the
audit entries, the cached rules, and refusals recorded without dropping the cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database, open_database
from storage.models import SafetyRules
from storage.safety_settings import WordChange
from storage.server_settings import GuildSettingsRepository

GUILD, OTHER, MEMBER, MOD = 10, 11, 30, 99
NOW = 1_700_000_000.0


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(tmp_path / "bot.sqlite3")
    yield database
    await database.close()


@pytest.fixture
def settings(db: Database) -> GuildSettingsRepository:
    return GuildSettingsRepository(db)


async def test_defaults_are_everything_off(settings: GuildSettingsRepository) -> None:
    assert (await settings.rules(GUILD)).safety == SafetyRules()
    assert SafetyRules().screen_unavailable == "refuse"


async def test_set_safety_changes_only_the_given_settings_and_audits(
    settings: GuildSettingsRepository,
) -> None:
    await settings.rules(GUILD)  # cached before the change
    updated = await settings.set_safety(GUILD, MOD, NOW, screening=True)
    assert updated == SafetyRules(screening=True)
    updated = await settings.set_safety(
        GUILD, MOD, NOW + 1, age_restricted_only=True, screen_unavailable="allow"
    )
    assert updated == SafetyRules(True, True, "allow")
    assert (await settings.rules(GUILD)).safety == updated
    assert (await settings.rules(OTHER)).safety == SafetyRules()
    audit = await settings.audit(GUILD)
    assert [(e.actor_id, e.action, e.detail) for e in audit] == [
        (MOD, "safety", "age_restricted_only=on, screen_unavailable=allow"),
        (MOD, "safety", "screening=on"),
    ]


async def test_set_safety_with_nothing_writes_nothing(settings: GuildSettingsRepository) -> None:
    assert await settings.set_safety(GUILD, MOD, NOW) == SafetyRules()
    assert await settings.audit(GUILD) == []


@pytest.mark.parametrize(
    "changes",
    [{"screen_unavailable": "maybe"}, {"screening": 1}, {"colour": True}],
)
async def test_set_safety_refuses_bad_values_and_writes_nothing(
    settings: GuildSettingsRepository, changes: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        await settings.set_safety(GUILD, MOD, NOW, **changes)
    assert await settings.audit(GUILD) == []
    assert (await settings.rules(GUILD)).safety == SafetyRules()


async def test_blocked_words_add_remove_and_audit(settings: GuildSettingsRepository) -> None:
    await settings.rules(GUILD)
    assert await settings.change_blocked_word(GUILD, "zeta", True, 5, MOD, NOW) is WordChange.DONE
    assert await settings.change_blocked_word(GUILD, "alpha", True, 5, MOD, NOW) is WordChange.DONE
    again = await settings.change_blocked_word(GUILD, "zeta", True, 5, MOD, NOW)
    assert again is WordChange.UNCHANGED
    assert (await settings.rules(GUILD)).safety.blocked_words == ("alpha", "zeta")
    assert await settings.change_blocked_word(GUILD, "zeta", False, 5, MOD, NOW) is WordChange.DONE
    gone = await settings.change_blocked_word(GUILD, "zeta", False, 5, MOD, NOW)
    assert gone is WordChange.UNCHANGED
    assert (await settings.rules(GUILD)).safety.blocked_words == ("alpha",)
    assert (await settings.rules(OTHER)).safety.blocked_words == ()
    audit = [(e.action, e.detail) for e in await settings.audit(GUILD)]
    assert audit == [
        ("blocked_word_remove", "zeta"),
        ("blocked_word_add", "alpha"),
        ("blocked_word_add", "zeta"),
    ]


async def test_the_list_is_bounded(settings: GuildSettingsRepository) -> None:
    for word in ("a", "b"):
        await settings.change_blocked_word(GUILD, word, True, 2, MOD, NOW)
    assert await settings.change_blocked_word(GUILD, "c", True, 2, MOD, NOW) is WordChange.FULL
    # Adding one already there is no change, full or not.
    assert await settings.change_blocked_word(GUILD, "a", True, 2, MOD, NOW) is WordChange.UNCHANGED
    assert (await settings.rules(GUILD)).safety.blocked_words == ("a", "b")
    assert len(await settings.audit(GUILD)) == 2


async def test_a_refusal_is_audited_with_the_member_and_keeps_the_cache(
    settings: GuildSettingsRepository, db: Database
) -> None:
    rules = await settings.rules(GUILD)
    await settings.record_refusal(GUILD, MEMBER, "refused", "blocked word: zeta", NOW)
    [entry] = await settings.audit(GUILD)
    assert (entry.actor_id, entry.action, entry.detail) == (MEMBER, "refused", "blocked word: zeta")
    assert await settings.rules(GUILD) is rules


async def test_settings_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "again.sqlite3"
    first = await open_database(path)
    await GuildSettingsRepository(first).set_safety(GUILD, MOD, NOW, age_restricted_only=True)
    await GuildSettingsRepository(first).change_blocked_word(GUILD, "x", True, 5, MOD, NOW)
    await first.close()
    second = await open_database(path)
    try:
        safety = (await GuildSettingsRepository(second).rules(GUILD)).safety
        assert safety == SafetyRules(age_restricted_only=True, blocked_words=("x",))
    finally:
        await second.close()
