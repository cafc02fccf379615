"""VideoParams is the one list of the generation parameters: everything else derives from it.

A field added to VideoParams without its column, or under a name Together does not know,
fails here by name; a round trip checks that what option checking makes is what is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.catalog import load_catalog
from bot.domain.options import VideoOptions, VideoRequest, validate_options
from bot.engine.request import SHAPED, build_request
from bot.together.models import CreateVideoRequest
from storage.db import MIGRATIONS_DIR, open_database
from storage.jobs import JobRepository
from storage.leases import LEASE_COLUMNS
from storage.models import (
    IMAGE_KINDS,
    LINK_KINDS,
    MEDIA_KINDS,
    EffectiveLimits,
    Job,
    MediaLink,
    NewJob,
    VideoParams,
)
from storage.reservations import Reservations
from storage.rows import JOB_COLUMNS, NEW_JOB_COLUMNS, PARAM_COLUMNS
from tests.unit.fakes import WAN, new_job

NOW = 1_700_000_000.0
PARAMS = tuple(field.name for field in dataclasses.fields(VideoParams))
WIDE_OPEN = EffectiveLimits(
    user_daily=99, guild_daily=99, user_concurrent=99, monthly_budget_usd=99.0, max_seconds=None
)


def _field_names(cls: type) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def test_every_parameter_has_its_column(tmp_path: Path) -> None:
    async def columns() -> set[str]:
        db = await open_database(tmp_path / "bot.sqlite3")
        await db.close()
        with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
            return {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}

    stored = asyncio.run(columns())
    missing = [name for name in PARAMS if name not in stored]
    assert not missing, f"VideoParams fields without a jobs column (add a migration): {missing}"
    # Job, with its params spread out, is exactly the table (less the leases, which only
    # storage.leases reads and writes): no column is read by hand.
    assert set(JOB_COLUMNS) == stored - LEASE_COLUMNS
    assert PARAM_COLUMNS == PARAMS


def test_jobs_and_checked_options_carry_params_not_copies() -> None:
    for cls in (NewJob, Job, VideoRequest):
        assert "params" in _field_names(cls), cls
        copies = _field_names(cls) & set(PARAMS)
        assert not copies, f"{cls.__name__} repeats VideoParams fields: {sorted(copies)}"
    assert _field_names(VideoRequest) == {"model", "params"}
    assert set(PARAMS) <= set(NEW_JOB_COLUMNS) and set(PARAMS) <= set(JOB_COLUMNS)


def test_every_parameter_is_sent_under_its_own_name_or_shaped_in_one_place() -> None:
    unsent = [
        name
        for name in PARAMS
        if name not in SHAPED and name not in CreateVideoRequest.model_fields
    ]
    assert not unsent, f"VideoParams fields Together's request does not know: {unsent}"
    assert set(PARAMS) >= SHAPED, "the request builder shapes only VideoParams fields"


media_sets = st.lists(st.sampled_from(MEDIA_KINDS), unique=True).map(
    lambda kinds: tuple(k for k in MEDIA_KINDS if k in kinds)
)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=50)
video_params = st.builds(
    VideoParams,
    prompt=texts.filter(bool),
    width=st.integers(16, 4096),
    height=st.integers(16, 4096),
    seconds=st.integers(1, 60),
    negative_prompt=st.none() | texts,
    fps=st.none() | st.integers(1, 60),
    steps=st.none() | st.integers(10, 50),
    seed=st.none() | st.integers(0, 2**32 - 1),
    guidance_scale=st.none() | st.floats(1.0, 20.0),
    output_format=st.sampled_from(("MP4", "WEBM")),
    generate_audio=st.none() | st.booleans(),
    output_quality=st.none() | st.integers(1, 50),
    media=media_sets,
)
frames = st.none() | st.tuples(st.sampled_from(("720P", "1080P")), st.sampled_from(("16:9", "1:1")))
video_params = st.builds(
    lambda params, frame: (
        dataclasses.replace(params, resolution=frame[0], ratio=frame[1]) if frame else params
    ),
    video_params,
    frames,
)


@settings(max_examples=40, deadline=None)
@given(video_params, st.booleans(), st.booleans())
def test_params_survive_storage_and_reach_the_request(
    params: VideoParams, fast_path: bool, resolution_ratio: bool
) -> None:
    """VideoParams -> NewJob -> SQLite (either insert) -> Job -> CreateVideoRequest."""
    images = {kind: kind.encode() for kind in params.media if kind in IMAGE_KINDS}
    links = [MediaLink(kind, f"https://cdn/{kind}", 1e10) for kind in params.media]
    links = [link for link in links if link.kind in LINK_KINDS]

    async def round_trip(path: Path) -> tuple[Job, dict[str, bytes]]:
        db = await open_database(path)
        try:
            candidate = new_job(NOW, params=params)
            if fast_path:
                stored = await Reservations(db).create_within_quota(
                    candidate, lambda usage: None, images, WIDE_OPEN, links
                )
            else:
                stored = await JobRepository(db).create(candidate, images, links)
            assert isinstance(stored, Job)
            again = await JobRepository(db).get(stored.id)
            assert again is not None and again == stored
            assert await JobRepository(db).links(stored.id) == sorted(links, key=lambda k: k.kind)
            return again, await JobRepository(db).media(stored.id)
        finally:
            await db.close()

    with tempfile.TemporaryDirectory() as directory:
        job, media = asyncio.run(round_trip(Path(directory) / "bot.sqlite3"))
    assert job.params == params
    assert media == images

    body = build_request(job, media, WAN if resolution_ratio else None, links).to_body()
    derived = resolution_ratio and params.resolution is None
    for name in PARAMS:
        value = getattr(params, name)
        if name in SHAPED or (derived and name in ("resolution", "ratio")):
            continue
        if value is None:
            assert name not in body, name  # left out: Together applies its default
        else:
            assert body[name] == (str(value) if name == "seconds" else value), name
    if params.resolution is not None:
        assert "width" not in body and body["resolution"] == params.resolution
    elif resolution_ratio:
        assert (
            "width" not in body
            and body["resolution"] == f"{min(job.params.width, job.params.height)}P"
        )
    else:
        assert (body["width"], body["height"]) == (params.width, params.height)
    assert body["output_format"] == params.output_format
    sent = body.get("media", {})
    frames = {image["frame"] for image in sent.get("frame_images", [])}
    framed = {0 if k == "first_frame" else "last" for k in images if k != "reference"}
    assert frames == framed
    assert bool(sent.get("reference_images")) == ("reference" in params.media)
    assert bool(sent.get("audio_inputs")) == ("soundtrack" in params.media)
    # WAN takes no video: a clip goes to the default field, frame_videos.
    assert bool(sent.get("frame_videos")) == ("video" in params.media)


def test_option_checking_makes_the_params_that_are_stored() -> None:
    request = validate_options(
        VideoOptions(
            prompt=" a cat ",
            guidance=7.5,
            format="webm",
            seed=3,
            attachments={"last_frame": 10, "first_frame": 10},
        ),
        load_catalog(),
        "google/veo-2.0",
    )
    assert request.params == VideoParams(
        prompt="a cat",
        width=1280,
        height=720,
        seconds=5,
        seed=3,
        guidance_scale=7.5,
        output_format="WEBM",
        media=("first_frame", "last_frame"),
    )


def test_the_migration_reads_the_media_of_jobs_stored_before(tmp_path: Path) -> None:
    older = tmp_path / "migrations"
    older.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < "007_":
            shutil.copy(path, older / path.name)
    database = tmp_path / "bot.sqlite3"

    async def before_and_after() -> list[Job]:
        db = await open_database(database, older)
        await db.close()
        with sqlite3.connect(database) as conn:
            for job_id, kinds in ((1, ("reference", "first_frame")), (2, ())):
                conn.execute(
                    "INSERT INTO jobs (id, state, guild_id, channel_id, user_id, application_id,"
                    " interaction_id, interaction_token, upload_limit, model, prompt, width,"
                    " height, seconds, created_at, updated_at, deadline_at)"
                    " VALUES (?, 'queued', 1, 2, 3, 4, 5, '', 10, 'm', 'p', 64, 64, 5, 0, 0, 9)",
                    (job_id,),
                )
                for kind in kinds:
                    conn.execute("INSERT INTO job_media VALUES (?, ?, x'00')", (job_id, kind))
        db = await open_database(database)
        try:
            return [job for job_id in (1, 2) if (job := await JobRepository(db).get(job_id))]
        finally:
            await db.close()

    with_images, without = asyncio.run(before_and_after())
    assert with_images.params.media == ("first_frame", "reference")
    assert without.params.media == ()
