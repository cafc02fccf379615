"""The options Together's 2026 API brought: resolution and ratio, audio, quality, video and
soundtrack attachments, model kinds, switched-off models and per-second prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.domain.catalog import load_catalog, size_for
from bot.domain.errors import InvalidOptionError
from bot.domain.options import VideoOptions, VideoRequest, validate_options

CATALOG = load_catalog()
DEFAULT = "minimax/hailuo-02"
MB = 1024 * 1024
T2V, I2V, R2V, EDIT = (f"Wan-AI/wan2.7-{kind}" for kind in ("t2v", "i2v", "r2v", "videoedit"))


def check(**options: object) -> VideoRequest:
    return validate_options(VideoOptions(**options), CATALOG, DEFAULT)  # type: ignore[arg-type]


def refusal(**options: object) -> str:
    with pytest.raises(InvalidOptionError) as info:
        check(**options)
    return info.value.message


def test_resolution_and_ratio_make_the_frame_and_are_sent() -> None:
    params = check(prompt="x", model=T2V, resolution="1080p", ratio="9:16").params
    assert (params.resolution, params.ratio) == ("1080P", "9:16")
    assert (params.width, params.height) == (1080, 1920)
    defaults = check(prompt="x", model=T2V).params
    assert (defaults.resolution, defaults.ratio, defaults.width) == ("720P", "16:9", 1280)


@pytest.mark.parametrize(
    ("resolution", "ratio", "size"),
    [("720P", "16:9", (1280, 720)), ("720P", "4:3", (960, 720)), ("1080P", "3:4", (1080, 1440))],
)
def test_size_for(resolution: str, ratio: str, size: tuple[int, int]) -> None:
    assert size_for(resolution, ratio) == size


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"model": T2V, "size": "1280x720"}, "`size`: Wan 2.7 takes `resolution` (720P, 1080P)"),
        ({"model": T2V, "ratio": "21:9"}, "`ratio`: Wan 2.7 takes 16:9, 9:16, 1:1, 4:3, 3:4"),
        ({"model": T2V, "resolution": "4K"}, "`resolution`: Wan 2.7 takes 720P, 1080P"),
        ({"model": "google/veo-2.0", "ratio": "16:9"}, "`ratio`: Veo 2.0 takes `size` instead"),
        ({"model": T2V, "seconds": 16}, "makes clips of 2 to 15 seconds (got 16)"),
        ({"model": "google/veo-2.0", "audio": True}, "`audio`: Veo 2.0 makes silent videos"),
        ({"model": "google/veo-3.0-audio", "audio": False}, "always makes sound"),
        ({"quality": 0}, "`quality` must be between 1 and 50"),
        ({"model": "google/veo-3.1"}, "switched off on this bot"),
        ({"attachments": {"soundtrack": 10}}, "`soundtrack`: MiniMax Hailuo 02 does not take"),
        ({"attachments": {"video": 10}}, "`video`: MiniMax Hailuo 02 does not take a video"),
        ({"model": T2V, "attachments": {"soundtrack": 16 * MB}}, "the limit is 15 MB"),
        ({"model": I2V, "attachments": {"video": 51 * MB}}, "the limit is 50 MB"),
        ({"model": EDIT}, "`video`: Wan 2.7 Video Edit is video edit: attach the clip"),
        ({"model": I2V}, "`first_frame`: Wan 2.7 I2V is image to video: attach an image"),
        ({"model": R2V}, "`reference`: Wan 2.7 R2V is reference to video: attach an image"),
        ({"model": T2V, "attachments": {"first_frame": 10}}, "`first_frame`: Wan 2.7 does not"),
    ],
)
def test_bad_new_options_are_named(options: dict[str, object], names: str) -> None:
    assert names in refusal(prompt="x", **options)


def test_the_refusal_names_the_models_that_do_take_it() -> None:
    message = refusal(prompt="x", attachments={"video": 10})
    assert "Wan 2.7 I2V, Wan 2.7 R2V, Wan 2.7 Video Edit" in message


def test_audio_is_sent_only_where_the_model_takes_it() -> None:
    assert check(prompt="x", model=T2V, audio=False).params.generate_audio is False
    assert check(prompt="x", model="google/veo-3.0-audio", audio=True).params.generate_audio
    assert check(prompt="x", model=T2V).params.generate_audio is None


def test_media_kinds_follow_the_attachments() -> None:
    edit = check(prompt="make it snow", model=EDIT, attachments={"video": MB, "reference": 10})
    assert edit.params.media == ("reference", "video")
    hailuo = check(prompt="x", attachments={"reference": 10})
    assert hailuo.params.media == ("reference",)
    sound = check(prompt="x", model=I2V, attachments={"first_frame": 10, "soundtrack": MB})
    assert sound.params.media == ("first_frame", "soundtrack")


def test_every_enabled_model_accepts_its_defaults() -> None:
    for model in CATALOG:
        attachments = {"t2v": {}, "i2v": {"first_frame": 10}, "r2v": {"reference": 10}}
        given = attachments.get(model.kind, {"video": 10})
        request = check(prompt="x", model=model.id, attachments=given)
        assert request.params.seconds == model.default_seconds


def test_estimates_use_the_price_unit() -> None:
    wan = CATALOG.get(T2V)
    hailuo = CATALOG.get(DEFAULT)
    assert wan is not None and hailuo is not None
    assert wan.estimate_usd(10) == pytest.approx(1.0)  # $0.10 per second
    assert hailuo.estimate_usd(10) == hailuo.estimate_usd(6) == pytest.approx(0.49)


def test_switched_off_models_are_listed_but_not_offered(tmp_path: Path) -> None:
    off = CATALOG.get("google/veo-3.1")
    assert off is not None and not off.enabled
    assert off not in list(CATALOG) and off in CATALOG.all_models()
    assert not CATALOG.search("veo-3.1")
    override = tmp_path / "models.json"
    override.write_text(json.dumps({"models": [{"id": "google/veo-3.1", "enabled": True}]}))
    switched_on = load_catalog(override)
    veo = switched_on.get("google/veo-3.1")
    assert veo is not None and veo.enabled and veo.audio == off.audio
    request = validate_options(
        VideoOptions(prompt="x", model="google/veo-3.1"), switched_on, DEFAULT
    )
    assert request.model.id == "google/veo-3.1"


def test_the_catalog_says_where_it_comes_from() -> None:
    assert CATALOG.updated and len(CATALOG.sources) >= 3
    kinds = {model.kind for model in CATALOG}
    assert kinds == {"t2v", "i2v", "r2v", "videoedit"}


def test_an_old_style_override_still_loads(tmp_path: Path) -> None:
    override = tmp_path / "models.json"
    entry = {
        "id": "acme/old",
        "name": "Old",
        "sizes": ["640x360"],
        "default_size": "640x360",
        "durations": [5],
        "default_seconds": 5,
        "last_frame": True,
        "price_usd": 0.2,
    }
    override.write_text(json.dumps({"models": [entry]}))
    old = load_catalog(override).get("acme/old")
    assert old is not None and old.inputs == ("first_frame", "last_frame")
    assert old.price.per == "video" and old.estimate_usd(5) == pytest.approx(0.2)
