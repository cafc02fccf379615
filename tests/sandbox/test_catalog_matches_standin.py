"""The bot's catalog and the Together stand-in were written separately from the same facts:
every request the bot can build for a model must be one the stand-in (like Together) takes."""

from __future__ import annotations

import dataclasses

import pytest

from bot.domain.catalog import ModelSpec, load_catalog
from bot.domain.options import VideoOptions, validate_options
from bot.engine import build_request
from sandbox.together.models import MODELS
from sandbox.together.validation import validate_create
from storage.models import IMAGE_KINDS, MediaLink
from tests.unit.fakes import make_job

CATALOG = load_catalog()
# Each attachment option, and which of the model's inputs it needs.
OPTION_INPUTS = {
    "first_frame": "first_frame",
    "last_frame": "last_frame",
    "reference": "reference_images",
    "soundtrack": "audio_inputs",
}


def body(model: ModelSpec, attachments: dict[str, int], **options: object) -> dict[str, object]:
    request = validate_options(
        VideoOptions(prompt="x", model=model.id, attachments=attachments, **options),  # type: ignore[arg-type]
        CATALOG,
        model.id,
    )
    job = make_job(1, 0.0, model=model.id)
    job = dataclasses.replace(job, params=request.params)
    images = {kind: b"\xff\xd8jpeg" for kind in attachments if kind in IMAGE_KINDS}
    links = [
        MediaLink(kind, f"http://127.0.0.1:9/{kind}") for kind in attachments if kind not in images
    ]
    return build_request(job, images, model, links).to_body()


def takes(model: ModelSpec) -> dict[str, int]:
    """Every attachment the model takes at once (a clip and a first frame both, for i2v)."""
    given = {option: 10 for option, need in OPTION_INPUTS.items() if need in model.inputs}
    if model.video_input_field:
        given["video"] = 10
    return given


@pytest.mark.parametrize("model", list(CATALOG), ids=lambda m: m.id)
def test_every_enabled_model_is_known_to_the_stand_in(model: ModelSpec) -> None:
    assert model.id in MODELS


@pytest.mark.parametrize("model", list(CATALOG), ids=lambda m: m.id)
def test_the_defaults_and_every_input_the_bot_offers_are_accepted(model: ModelSpec) -> None:
    given = takes(model)
    if model.kind == "t2v":
        assert validate_create(body(model, {})) is None
    assert validate_create(body(model, given)) is None, given


@pytest.mark.parametrize("model", list(CATALOG), ids=lambda m: m.id)
def test_every_length_and_frame_the_bot_offers_is_accepted(model: ModelSpec) -> None:
    needed = {"i2v": {"first_frame": 10}, "r2v": {"reference": 10}}.get(model.kind, {})
    if model.kind == "videoedit":
        needed = {"video": 10}
    for seconds in model.durations:
        assert validate_create(body(model, needed, seconds=seconds)) is None, seconds
    if model.dimensions == "width_height":
        for size in model.sizes:
            assert validate_create(body(model, needed, size=size)) is None, size
    else:
        for resolution in model.resolutions:
            for ratio in model.ratios:
                sent = body(model, needed, resolution=resolution, ratio=ratio)
                assert validate_create(sent) is None, (resolution, ratio)
    if model.audio != "none":
        assert validate_create(body(model, needed, audio=True)) is None
