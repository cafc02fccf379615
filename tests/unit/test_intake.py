"""The intake with no Discord: a real SQLite store and gatekeeper, and a recording engine."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.catalog import load_catalog
from bot.domain.errors import InvalidOptionError, NotAllowedError, UserFacingError
from bot.domain.options import VideoOptions
from bot.domain.quota import QuotaDefaults
from bot.gatekeeper import Gatekeeper, QuotaExceeded
from bot.intake import (
    ABANDONED,
    DEFAULT_UPLOAD_LIMIT,
    THUMBNAIL_NAME,
    Intake,
    Requester,
)
from bot.settings import Settings
from storage.db import Database, open_database
from storage.jobs import JobRepository
from storage.models import Derivation, Job, JobState, MediaLink
from storage.reservations import Reservations
from storage.server_settings import GuildSettingsRepository
from storage.usage import UsageRepository

GUILD, CHANNEL, MEMBER, MOD = 10, 20, 30, 99
NOW = 1_700_000_000.0
DEFAULT_MODEL = Settings.model_fields["default_model"].default
DEFAULTS = QuotaDefaults(user_daily=5, guild_daily=50, user_concurrent=2, monthly_budget_usd=100)


class RecordingEngine:
    def __init__(self) -> None:
        self.enqueued: list[Job] = []

    def enqueue(self, job: Job) -> None:
        self.enqueued.append(job)


@dataclasses.dataclass
class Parts:
    intake: Intake
    jobs: JobRepository
    rules: GuildSettingsRepository
    engine: RecordingEngine


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(tmp_path / "bot.sqlite3")
    yield database
    await database.close()


@pytest.fixture
def parts(db: Database) -> Parts:
    catalog = load_catalog(None)
    jobs = JobRepository(db)
    rules = GuildSettingsRepository(db)
    engine = RecordingEngine()
    gate = Gatekeeper(rules, UsageRepository(db), Reservations(db), catalog, DEFAULTS)
    return Parts(Intake(gate, jobs, catalog, engine, DEFAULT_MODEL), jobs, rules, engine)


def asker(**overrides: object) -> Requester:
    values: dict[str, object] = dict(
        guild_id=GUILD,
        channel_id=CHANNEL,
        user_id=MEMBER,
        role_ids=(),
        application_id=40,
        interaction_id=50,
        interaction_token="secret-interaction-token",
        upload_limit=25 * 1024 * 1024,
    )
    values.update(overrides)
    return Requester(**values)  # type: ignore[arg-type]


async def reserved(parts: Parts, requester: Requester | None = None, **options: object) -> Job:
    options.setdefault("prompt", "a cat surfing a wave at sunset")
    admission = await parts.intake.check(requester or asker(), VideoOptions(**options))  # type: ignore[arg-type]
    return await parts.intake.reserve(admission, {})


# --- check --------------------------------------------------------------------------------


async def test_check_fills_in_the_model_defaults_and_the_members_limits(parts: Parts) -> None:
    await parts.rules.set_role_quota(GUILD, 7, 12, MOD, NOW)
    admission = await parts.intake.check(asker(role_ids=(7,)), VideoOptions(prompt=" a cat "))
    assert admission.request.model.id == DEFAULT_MODEL
    assert admission.request.params.prompt == "a cat"
    assert admission.limits.user_daily == 12  # the role's own daily limit
    assert admission.limits.user_concurrent == DEFAULTS.user_concurrent


async def test_check_refuses_blocked_members_and_other_channels(parts: Parts) -> None:
    await parts.rules.set_blocked(GUILD, MEMBER, True, MOD, NOW)
    with pytest.raises(NotAllowedError, match="You cannot use /video in this server"):
        await parts.intake.check(asker(), VideoOptions(prompt="x"))
    await parts.rules.set_channels(GUILD, [21], MOD, NOW)
    with pytest.raises(NotAllowedError) as refused:
        await parts.intake.check(asker(user_id=31), VideoOptions(prompt="x"))
    assert refused.value.message == "/video works only in <#21> on this server."


async def test_check_refuses_bad_options_and_denied_models(parts: Parts) -> None:
    with pytest.raises(InvalidOptionError, match="`steps` must be between 10 and 50"):
        await parts.intake.check(asker(), VideoOptions(prompt="x", steps=5))
    await parts.rules.set_model_rule(GUILD, DEFAULT_MODEL, "deny", MOD, NOW)
    with pytest.raises(InvalidOptionError, match="is not available on this server"):
        await parts.intake.check(asker(), VideoOptions(prompt="x"))
    assert await parts.jobs.recent_for_member(GUILD, MEMBER) == []


# --- precheck and reserve -----------------------------------------------------------------


async def test_reserve_stores_a_queued_job_the_engine_does_not_have_yet(parts: Parts) -> None:
    job = await reserved(parts, seed=7, format="webm")
    stored = await parts.jobs.get(job.id)
    assert stored is not None and stored.state is JobState.QUEUED
    assert (stored.guild_id, stored.channel_id, stored.user_id) == (GUILD, CHANNEL, MEMBER)
    assert stored.interaction_token == "secret-interaction-token"
    assert stored.upload_limit == 25 * 1024 * 1024
    assert (stored.params.seed, stored.params.output_format, stored.thumbnail) == (7, "WEBM", None)
    assert stored.message_id is None
    assert parts.engine.enqueued == []


async def test_reserve_keeps_the_images_and_names_the_thumbnail(parts: Parts) -> None:
    admission = await parts.intake.check(
        asker(upload_limit=None), VideoOptions(prompt="x", attachments={"first_frame": 10})
    )
    job = await parts.intake.reserve(admission, {"first_frame": b"jpeg"})
    assert job.thumbnail == THUMBNAIL_NAME
    assert job.upload_limit == DEFAULT_UPLOAD_LIMIT  # Discord did not say
    assert await parts.jobs.media(job.id) == {"first_frame": b"jpeg"}


async def test_precheck_and_reserve_refuse_over_the_limit(parts: Parts) -> None:
    for _ in range(DEFAULTS.user_concurrent):
        await reserved(parts)
    admission = await parts.intake.check(asker(), VideoOptions(prompt="x"))
    with pytest.raises(QuotaExceeded, match="You have 2 videos in progress"):
        await parts.intake.precheck(admission)
    with pytest.raises(QuotaExceeded, match="You have 2 videos in progress"):
        await parts.intake.reserve(admission, {})
    assert len(await parts.jobs.recent_for_member(GUILD, MEMBER)) == DEFAULTS.user_concurrent


# --- accepted and abandoned ---------------------------------------------------------------


async def test_accepted_records_the_message_and_hands_the_job_over(parts: Parts) -> None:
    job = await reserved(parts)
    handed = await parts.intake.accepted(job, 777)
    assert handed.message_id == 777
    assert parts.engine.enqueued == [handed]
    stored = await parts.jobs.get(job.id)
    assert stored is not None and stored.message_id == 777 and stored.state is JobState.QUEUED


async def test_abandoned_cancels_the_job_and_forgets_its_token(parts: Parts) -> None:
    job = await reserved(parts)
    await parts.intake.abandoned(job)
    stored = await parts.jobs.get(job.id)
    assert stored is not None
    # Left queued, the next start would submit it, and bill it, with no message.
    assert stored.state is JobState.CANCELLED
    assert stored.failure_reason == ABANDONED
    assert stored.interaction_token == ""
    assert parts.engine.enqueued == []
    # It no longer counts as in progress.
    await reserved(parts)
    await reserved(parts)


# --- retry --------------------------------------------------------------------------------


async def finished(parts: Parts, media: dict[str, bytes] | None = None, **options: object) -> Job:
    options.setdefault("prompt", "a cat surfing a wave at sunset")
    admission = await parts.intake.check(asker(), VideoOptions(**options))  # type: ignore[arg-type]
    job = await parts.intake.reserve(admission, media or {})
    done = await parts.jobs.transition(job.id, JobState.QUEUED, JobState.FAILED, NOW)
    assert done is not None
    return done


async def test_retry_makes_the_same_video_with_a_new_seed(parts: Parts) -> None:
    source = await finished(
        parts,
        {"first_frame": b"jpeg"},
        seed=1,
        steps=20,
        guidance=7.5,
        fps=24,
        negative_prompt="rain",
        size="1920x1080",
        seconds=10,
        attachments={"first_frame": 10},
    )
    retried = await parts.intake.retry(source, asker(interaction_id=51, interaction_token="t2"))
    job = retried.job
    assert job.id != source.id and job.state is JobState.QUEUED
    assert (
        job.params.seed != source.params.seed
        and job.params.seed is not None
        and 0 <= job.params.seed < 2**32
    )
    same = ("prompt", "negative_prompt", "width", "height", "seconds", "fps", "steps", "media")
    assert job.model == source.model
    assert [getattr(job.params, f) for f in same] == [getattr(source.params, f) for f in same]
    assert job.params.media == ("first_frame",)
    assert (
        job.params.guidance_scale == 7.5 and job.params.output_format == source.params.output_format
    )
    assert (job.interaction_id, job.interaction_token) == (51, "t2")
    assert retried.first_frame == b"jpeg" and job.thumbnail == THUMBNAIL_NAME
    assert await parts.jobs.media(job.id) == {"first_frame": b"jpeg"}
    assert parts.engine.enqueued == []  # not until its answer reached Discord


async def test_retry_refuses_once_the_images_are_pruned(parts: Parts) -> None:
    source = await finished(parts, {"first_frame": b"jpeg"}, attachments={"first_frame": 10})
    assert await parts.jobs.prune_media(before=NOW + 10**9, now=NOW) == 1
    pruned = await parts.jobs.get(source.id)
    assert pruned is not None
    with pytest.raises(UserFacingError) as refused:
        await parts.intake.retry(pruned, asker())
    assert refused.value.key == "intake.images_gone"
    assert len(await parts.jobs.recent_for_member(GUILD, MEMBER)) == 1


async def test_retry_refuses_what_a_new_video_would_be_refused(parts: Parts) -> None:
    source = await finished(parts)
    gone = dataclasses.replace(source, model="nobody/old-model")
    with pytest.raises(UserFacingError) as refused:
        await parts.intake.retry(gone, asker())
    assert refused.value.message == "The model nobody/old-model is no longer available."
    await parts.rules.set_model_rule(GUILD, source.model, "deny", MOD, NOW)
    with pytest.raises(InvalidOptionError, match="is not available on this server"):
        await parts.intake.retry(source, asker())
    await parts.rules.set_model_rule(GUILD, source.model, None, MOD, NOW)
    await parts.rules.set_limits(GUILD, MOD, NOW, max_seconds=1)
    with pytest.raises(QuotaExceeded, match="This server allows videos of up to 1 second;"):
        await parts.intake.retry(source, asker())
    await parts.rules.set_blocked(GUILD, MEMBER, True, MOD, NOW)
    with pytest.raises(NotAllowedError):
        await parts.intake.retry(source, asker())
    assert len(await parts.jobs.recent_for_member(GUILD, MEMBER)) == 1


# --- media links (videos and soundtracks Together fetches) -------------------------------

EDIT_MODEL = "Wan-AI/wan2.7-videoedit"


async def with_clip(parts: Parts, clip: MediaLink) -> Job:
    admission = await parts.intake.check(
        asker(),
        VideoOptions(prompt="make it snow", model=EDIT_MODEL, attachments={"video": 1000}),
    )
    job = await parts.intake.reserve(admission, {}, [clip])
    done = await parts.jobs.transition(job.id, JobState.QUEUED, JobState.DELIVERED, NOW)
    assert done is not None
    return done


async def test_reserve_stores_the_links_with_the_job_and_prices_by_the_second(
    parts: Parts,
) -> None:
    clip = MediaLink("video", "https://cdn/clip.mp4?ex=1", time.time() + 86_400)
    job = await with_clip(parts, clip)
    assert job.params.media == ("video",)
    assert await parts.jobs.links(job.id) == [clip]
    assert job.estimated_cost_usd == pytest.approx(0.5)  # Wan 2.7: $0.10/s x 5 s


async def test_retry_keeps_a_link_that_works_or_can_be_renewed(parts: Parts) -> None:
    on_message = MediaLink("video", "https://cdn/a.mp4", time.time() - 60, 1, 2, 3)
    source = await with_clip(parts, on_message)
    retried = await parts.intake.retry(source, asker(interaction_id=51))
    assert await parts.jobs.links(retried.job.id) == [on_message]


async def test_retry_refuses_when_a_slash_command_link_has_expired(parts: Parts) -> None:
    source = await with_clip(parts, MediaLink("video", "https://cdn/a.mp4", time.time() - 60))
    with pytest.raises(UserFacingError) as refused:
        await parts.intake.retry(source, asker(interaction_id=51))
    assert refused.value.key == "intake.links_gone"
    assert len(await parts.jobs.recent_for_member(GUILD, MEMBER)) == 1


async def test_retry_of_a_model_since_switched_off_is_refused(parts: Parts, tmp_path: Path) -> None:
    source = await finished(parts)
    override = tmp_path / "models.json"
    override.write_text(f'{{"models": [{{"id": "{source.model}", "enabled": false}}]}}')
    catalog = load_catalog(override)
    gate = Gatekeeper(
        parts.rules,
        UsageRepository(parts.jobs._db),
        Reservations(parts.jobs._db),
        catalog,
        DEFAULTS,
    )
    intake = Intake(gate, parts.jobs, catalog, parts.engine, DEFAULT_MODEL)
    with pytest.raises(InvalidOptionError, match="switched off"):
        await intake.retry(source, asker(interaction_id=51))


async def test_remix_changes_only_the_words_and_records_its_lineage(parts: Parts) -> None:
    source = await finished(
        parts, {"first_frame": b"jpeg"}, seed=7, size="1920x1080", attachments={"first_frame": 1}
    )
    remixed = await parts.intake.remix(
        source, asker(interaction_id=52), "  a dog surfing \x00", "rain"
    )
    job = remixed.job
    assert (job.params.prompt, job.params.negative_prompt) == ("a dog surfing", "rain")
    same = ("width", "height", "seconds", "seed", "media", "fps", "steps")
    assert [getattr(job.params, f) for f in same] == [getattr(source.params, f) for f in same]
    assert (job.parent_id, job.derivation) == (source.id, Derivation.REMIX)
    assert await parts.jobs.media(job.id) == {"first_frame": b"jpeg"}


async def test_remix_refuses_words_the_model_would_refuse(parts: Parts) -> None:
    source = await finished(parts, model="pixverse/pixverse-v5")
    with pytest.raises(InvalidOptionError, match="takes at most 2048"):
        await parts.intake.remix(source, asker(interaction_id=52), "x" * 2049, None)
    with pytest.raises(InvalidOptionError, match="`prompt` is empty"):
        await parts.intake.remix(source, asker(interaction_id=52), " \u200b ", None)
    assert len(await parts.jobs.recent_for_member(GUILD, MEMBER)) == 1


async def test_retry_records_its_parent(parts: Parts) -> None:
    source = await finished(parts)
    retried = await parts.intake.retry(source, asker(interaction_id=51))
    assert (retried.job.parent_id, retried.job.derivation) == (source.id, Derivation.RETRY)


async def test_flow_models_follow_the_server_then_the_bot(parts: Parts) -> None:
    assert await parts.intake.flow_model(GUILD, "animate") == DEFAULT_MODEL  # no bot default
    await parts.rules.set_flow_model(GUILD, "animate", "kwaivgI/kling-2.1-pro", MOD, NOW)
    assert await parts.intake.flow_model(GUILD, "animate") == "kwaivgI/kling-2.1-pro"
    await parts.rules.set_flow_model(GUILD, "animate", None, MOD, NOW)
    assert await parts.intake.flow_model(GUILD, "animate") == DEFAULT_MODEL
    assert [entry.action for entry in await parts.rules.audit(GUILD)] == ["flow_model"] * 2


async def test_retry_refuses_an_extend_whose_frame_was_never_taken(parts: Parts) -> None:
    source = await finished(parts, model="google/veo-2.0")
    unframed = dataclasses.replace(
        source,
        derivation=Derivation.EXTEND,
        params=dataclasses.replace(source.params, media=("first_frame",)),
    )
    with pytest.raises(UserFacingError) as refused:
        await parts.intake.retry(unframed, asker(interaction_id=51))
    assert refused.value.key == "intake.images_gone"
    joined = dataclasses.replace(source, derivation=Derivation.JOIN)
    with pytest.raises(UserFacingError, match="press Join again"):
        await parts.intake.remix(joined, asker(interaction_id=52), "x", None)
