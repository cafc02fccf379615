"""bot.safety.SafetyGuard with a real SQLite store and scripted screens, alone and in the
intake: what is refused, what is audited, and what the member reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.catalog import load_catalog
from bot.domain.options import VideoOptions
from bot.domain.safety import ScreenUnavailable
from bot.gatekeeper import Gatekeeper
from bot.i18n import LANGUAGES, translate
from bot.intake import Intake
from bot.safety import (
    AGE_RESTRICTED_ONLY,
    BLOCKED_WORDS,
    SCREEN_DOWN,
    SafetyGuard,
    SafetyRefused,
)
from storage.db import Database, open_database
from storage.jobs import JobRepository
from storage.models import Job, JobState
from storage.reservations import Reservations
from storage.server_settings import GuildSettingsRepository
from storage.usage import UsageRepository
from tests.unit.test_intake import DEFAULT_MODEL, DEFAULTS, RecordingEngine, asker

GUILD, CHANNEL, MEMBER, MOD = 10, 20, 30, 99
NOW = 1_700_000_000.0


class ScriptedScreen:
    """Answers from a script: a text, or an exception to raise, or None to hang."""

    def __init__(self, answer: str | BaseException | None = "safe") -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def screen(self, prompt: str) -> str:
        self.asked.append(prompt)
        if self.answer is None:
            await asyncio.Event().wait()
        if isinstance(self.answer, BaseException):
            raise self.answer
        assert isinstance(self.answer, str)
        return self.answer


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(tmp_path / "bot.sqlite3")
    yield database
    await database.close()


@pytest.fixture
def store(db: Database) -> GuildSettingsRepository:
    return GuildSettingsRepository(db)


@pytest.fixture
def screen() -> ScriptedScreen:
    return ScriptedScreen()


@pytest.fixture
def guard(store: GuildSettingsRepository, screen: ScriptedScreen) -> SafetyGuard:
    return SafetyGuard(store, screen, timeout=0.2, clock=lambda: NOW)


async def refusal(
    guard: SafetyGuard, prompt: str, negative: str | None = None, nsfw: bool = True
) -> str:
    with pytest.raises(SafetyRefused) as refused:
        await guard.check(GUILD, CHANNEL, MEMBER, nsfw, prompt, negative)
    return refused.value.message


async def refused_with(
    guard: SafetyGuard, prompt: str, negative: str | None = None, nsfw: bool = True
) -> SafetyRefused:
    with pytest.raises(SafetyRefused) as refused:
        await guard.check(GUILD, CHANNEL, MEMBER, nsfw, prompt, negative)
    return refused.value


def english(key: str) -> str:
    return translate("en", key)


async def audited(store: GuildSettingsRepository) -> list[tuple[int, str, str]]:
    return [(e.actor_id, e.action, e.detail) for e in await store.audit(GUILD)]


async def test_nothing_is_checked_or_asked_with_everything_off(
    guard: SafetyGuard, screen: ScriptedScreen
) -> None:
    await guard.check(GUILD, CHANNEL, MEMBER, False, "anything", None)
    assert screen.asked == []
    assert not await guard.screens(GUILD)


async def test_age_restricted_only(guard: SafetyGuard, store: GuildSettingsRepository) -> None:
    await store.set_safety(GUILD, MOD, NOW, age_restricted_only=True)
    assert await refusal(guard, "a cat", nsfw=False) == english(AGE_RESTRICTED_ONLY)
    await guard.check(GUILD, CHANNEL, MEMBER, True, "a cat", None)
    with pytest.raises(SafetyRefused):
        await guard.check_place(GUILD, CHANNEL, MEMBER, False)
    entries = await audited(store)
    assert entries[0] == (MEMBER, "refused", f"not an age-restricted channel (<#{CHANNEL}>)")
    assert len([e for e in entries if e[1] == "refused"]) == 2


async def test_blocked_words_in_prompt_and_negative_prompt(
    guard: SafetyGuard, store: GuildSettingsRepository
) -> None:
    await store.change_blocked_word(GUILD, "ass", True, 80, MOD, NOW)
    text = await refusal(guard, "an ÁSS in a field")
    assert text == english(BLOCKED_WORDS) and "ass" not in text.lower().split()
    await refusal(guard, "a donkey", negative="no a\u200bss")
    await guard.check(GUILD, CHANNEL, MEMBER, True, "a classy class", "no bass")
    assert (await audited(store))[:2] == [
        (MEMBER, "refused", "blocked word: ass"),
        (MEMBER, "refused", "blocked word: ass"),
    ]


async def test_flagged_prompt_names_the_category(
    guard: SafetyGuard, store: GuildSettingsRepository, screen: ScriptedScreen
) -> None:
    await store.set_safety(GUILD, MOD, NOW, screening=True)
    assert await guard.screens(GUILD)
    screen.answer = "unsafe\nS1,S10"
    text = await refusal(guard, "a fight", negative="calm")
    assert "S1 violent crimes, S10 hate" in text
    assert screen.asked == ["a fight"]  # the prompt only
    assert (await audited(store))[0] == (
        MEMBER,
        "refused",
        "screen flagged: S1 violent crimes, S10 hate",
    )
    screen.answer = "safe"
    await guard.check(GUILD, CHANNEL, MEMBER, False, "a calm lake", None)


async def test_refusals_are_in_the_members_language_and_never_name_the_word(
    guard: SafetyGuard, store: GuildSettingsRepository, screen: ScriptedScreen
) -> None:
    await store.change_blocked_word(GUILD, "red panda", True, 80, MOD, NOW)
    blocked = await refused_with(guard, "a RED  panda")
    for lang in LANGUAGES:
        said = blocked.text_for(lang)
        assert said == translate(lang, BLOCKED_WORDS) and "panda" not in said.lower(), lang
    assert blocked.text_for("de").startswith("Deine Beschreibung enthält Wörter")

    await store.set_safety(GUILD, MOD, NOW, screening=True)
    screen.answer = "unsafe\nS1,S10,S99"
    flagged = await refused_with(guard, "a fight")
    assert "(S1 Gewaltverbrechen, S10 Hass, S99 Kategorie S99)" in flagged.text_for("de")
    assert "（S1 暴力犯罪、S10 ヘイト、S99 カテゴリ S99）" in flagged.text_for("ja")
    assert "(S1 violent crimes, S10 hate, S99 category S99)" in flagged.message
    screen.answer = "unsafe"
    assert "(non précisée)" in (await refused_with(guard, "a fight")).text_for("fr")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (ScreenUnavailable("server error (503)"), "server error (503)"),
        (ScreenUnavailable("rate limited (429)"), "rate limited (429)"),
        (None, "timeout"),
        ("I am not sure", "unreadable answer"),
    ],
)
async def test_an_unavailable_screen_refuses_or_lets_through_per_the_server(
    guard: SafetyGuard,
    store: GuildSettingsRepository,
    screen: ScriptedScreen,
    answer: str | BaseException | None,
    reason: str,
) -> None:
    screen.answer = answer
    await store.set_safety(GUILD, MOD, NOW, screening=True)
    assert await refusal(guard, "a lake") == english(SCREEN_DOWN)
    assert (await audited(store))[0] == (MEMBER, "refused", f"screen unavailable: {reason}")
    await store.set_safety(GUILD, MOD, NOW, screen_unavailable="allow")
    await guard.check(GUILD, CHANNEL, MEMBER, True, "a lake", None)
    assert (await audited(store))[0][1] == "safety"  # let through: nothing more audited


async def test_no_screen_on_this_bot_means_no_screening(store: GuildSettingsRepository) -> None:
    guard = SafetyGuard(store, None, timeout=0.2)
    await store.set_safety(GUILD, MOD, NOW, screening=True)
    assert not await guard.screens(GUILD)
    await guard.check(GUILD, CHANNEL, MEMBER, True, "[unsafe:S1]", None)


# --- in the intake: every way of starting a job --------------------------------------------


@pytest.fixture
def intake(db: Database, store: GuildSettingsRepository, guard: SafetyGuard) -> Intake:
    catalog = load_catalog(None)
    gate = Gatekeeper(store, UsageRepository(db), Reservations(db), catalog, DEFAULTS)
    return Intake(gate, JobRepository(db), catalog, RecordingEngine(), DEFAULT_MODEL, safety=guard)


async def delivered_job(intake: Intake, db: Database, prompt: str) -> Job:
    admission = await intake.check(asker(nsfw=True), VideoOptions(prompt=prompt))
    job = await intake.reserve(admission, {})
    jobs = JobRepository(db)
    for before, after in (
        (JobState.QUEUED, JobState.SUBMITTING),
        (JobState.SUBMITTING, JobState.RUNNING),
        (JobState.RUNNING, JobState.DELIVERING),
        (JobState.DELIVERING, JobState.DELIVERED),
    ):
        moved = await jobs.transition(job.id, before, after, NOW, delivery="attachment")
        assert moved is not None
        job = moved
    return job


async def test_the_intake_checks_video_retry_remix_extend_and_join(
    intake: Intake, db: Database, store: GuildSettingsRepository, screen: ScriptedScreen
) -> None:
    job = await delivered_job(intake, db, "a calm donkey")
    await store.change_blocked_word(GUILD, "donkey", True, 80, MOD, NOW)
    with pytest.raises(SafetyRefused):
        await intake.check(asker(nsfw=True), VideoOptions(prompt="a Donkey"))
    with pytest.raises(SafetyRefused):
        await intake.retry(job, asker(nsfw=True))  # the old words are checked again
    with pytest.raises(SafetyRefused):
        await intake.remix(job, asker(nsfw=True), "a horse", "donkey")
    with pytest.raises(SafetyRefused):
        await intake.extend(job, asker(nsfw=True), "the donkey walks on", None)
    remixed = await intake.remix(job, asker(nsfw=True), "a horse", None)
    assert remixed.job.params.prompt == "a horse"

    await store.set_safety(GUILD, MOD, NOW, age_restricted_only=True)
    ordinary = asker(nsfw=False)
    for attempt in (
        intake.check(ordinary, VideoOptions(prompt="a horse")),
        intake.remix(job, ordinary, "a horse", None),
        intake.join(job, ordinary),
        intake.check_place(ordinary),
    ):
        with pytest.raises(SafetyRefused, match="age-restricted channels"):
            await attempt
    refusals = [e for e in await audited(store) if e[1] == "refused"]
    assert len(refusals) == 8 and {actor for actor, _, _ in refusals} == {MEMBER}


async def test_the_intake_says_when_it_screens(
    intake: Intake, store: GuildSettingsRepository
) -> None:
    assert not await intake.screens(GUILD)
    await store.set_safety(GUILD, MOD, NOW, screening=True)
    assert await intake.screens(GUILD)
