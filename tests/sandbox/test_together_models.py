"""The stand-in's per-model rules: what each model accepts, refused as Together refuses it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandbox.together import MODELS, TogetherSandbox
from sandbox.together.models import ModelSpec, pixel_size
from sandbox.together.validation import validate_create

KEY = "sandbox-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CLIP = "https://cdn.example/clip.mp4"
SONG = "https://cdn.example/song.mp3"
IMAGE = "https://cdn.example/a.png"
WAN_T2V = "Wan-AI/wan2.7-t2v"
WAN_I2V = "Wan-AI/wan2.7-i2v"
WAN_R2V = "Wan-AI/wan2.7-r2v"
WAN_EDIT = "Wan-AI/wan2.7-videoedit"


def body(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "prompt": "a red fox in the snow", **extra}


def frames(*positions: Any) -> dict[str, Any]:
    items = [{"input_image": "aGk="} for _ in positions]
    for item, position in zip(items, positions, strict=True):
        if position is not None:
            item["frame"] = position
    return {"frame_images": items}


def defaults_body(model: str, spec: ModelSpec) -> dict[str, Any]:
    """A body that spells out the model's own defaults."""
    extra: dict[str, Any] = {"seconds": spec.seconds}
    if spec.takes_resolution:
        extra |= {"resolution": spec.resolutions[0], "ratio": spec.ratios[0]}
    else:
        width, height = spec.size.split("x")
        extra |= {"width": int(width), "height": int(height)}
    if spec.kind == "videoedit":
        extra["media"] = {"source_video": CLIP}
    return body(model, **extra)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_accepts_its_own_defaults(model: str) -> None:
    spec = MODELS[model]
    assert validate_create(defaults_body(model, spec)) is None
    if spec.kind != "videoedit":  # a videoedit model needs its source video
        assert validate_create(body(model)) is None
    if spec.published:
        assert spec.seconds_allowed(int(spec.seconds))
        if not spec.takes_resolution:
            assert spec.size in spec.sizes


ACCEPTED: list[dict[str, Any]] = [
    body("google/veo-3.0", width=1080, height=1920, seconds="8"),
    body("minimax/hailuo-02", width=1920, height=1080, seconds="6"),
    body("minimax/hailuo-02", seconds="10", media={"reference_images": [IMAGE]} | frames(0)),
    body("google/veo-3.0-audio", generate_audio=True),
    body("google/veo-3.0-fast-audio", generate_audio=False),
    body("google/veo-2.0", media=frames(None, None)),
    body("kwaivgI/kling-2.1-pro", media=frames("first", "last")),
    body("ByteDance/Seedance-1.0-lite", media=frames(0, "last"), width=640, height=1504),
    body("openai/sora-2", media=frames("first"), output_quality=20),
    {"model": "kwaivgI/kling-2.1-master", "media": frames(0)},  # no prompt, a keyframe
    body(WAN_T2V, resolution="1080P", ratio="3:4", seconds="15", generate_audio=True),
    body(WAN_T2V, seconds="2", media={"audio_inputs": [SONG, {"audio": SONG}]}),
    body(WAN_I2V, media=frames(0, "last") | {"frame_videos": [{"video": CLIP}]}),
    body(WAN_R2V, seconds="10", media={"reference_images": [IMAGE], "reference_videos": []}),
    body(WAN_R2V, media={"reference_videos": [{"video": CLIP}]}),
    body(WAN_EDIT, media={"source_video": CLIP, "reference_images": ["aGk="]}),
    body(WAN_EDIT, media={"source_video": {"video": CLIP}}, ratio="9:16"),
    # Models without published specs: any values of the right types.
    body("google/veo-3.1", width=123, height=45, seconds="99", generate_audio=True),
    body("ByteDance/Seedance-2.0", resolution="4K", ratio="21:9"),
    body("vidu/vidu-q3", media={"source_video": CLIP, "audio_inputs": [SONG]} | frames(0, 9)),
]


@pytest.mark.parametrize("request_body", ACCEPTED)
def test_accepted(request_body: dict[str, Any]) -> None:
    assert validate_create(request_body) is None


REFUSED: list[tuple[dict[str, Any], str]] = [
    # dimensions
    (body("google/veo-3.0", width=1366, height=768), "width"),
    (body("google/veo-2.0", width=1920, height=1080), "width"),
    (body("google/veo-3.0", width=1280), "height"),
    (body("google/veo-3.0", height=720), "width"),
    (body("google/veo-3.0", resolution="720P"), "resolution"),
    (body("openai/sora-2", ratio="16:9"), "ratio"),
    (body(WAN_T2V, width=1280, height=720), "width"),
    (body(WAN_I2V, height=720), "height"),
    (body(WAN_T2V, resolution="4K"), "resolution"),
    (body(WAN_T2V, resolution="720p"), "resolution"),  # the docs spell it 720P
    (body(WAN_R2V, ratio="21:9"), "ratio"),
    (body(WAN_T2V, resolution=720), "resolution"),
    # seconds
    (body("google/veo-3.0", seconds="5"), "seconds"),
    (body("minimax/hailuo-02", seconds="8"), "seconds"),
    (body(WAN_T2V, seconds="16"), "seconds"),
    (body(WAN_T2V, seconds="1"), "seconds"),
    (body(WAN_R2V, seconds="11"), "seconds"),
    (body(WAN_EDIT, seconds="15", media={"source_video": CLIP}), "seconds"),
    (body(WAN_T2V, seconds="5.5"), "seconds"),
    (body(WAN_T2V, seconds="five"), "seconds"),
    (body("google/veo-3.1", seconds=8), "seconds"),
    # generate_audio
    (body("google/veo-3.0", generate_audio=True), "generate_audio"),
    (body("google/veo-3.0-fast", generate_audio=False), "generate_audio"),
    (body(WAN_R2V, generate_audio=True), "generate_audio"),
    (body("google/veo-3.0-audio", generate_audio="yes"), "generate_audio"),
    (body("google/veo-3.1", generate_audio=1), "generate_audio"),
    # output_quality
    (body("google/veo-3.0", output_quality="20"), "output_quality"),
    (body("google/veo-3.0", output_quality=20.5), "output_quality"),
    (body("google/veo-3.0", output_quality=True), "output_quality"),
    # media the model's kind does not take
    (body("google/veo-3.0", media={"source_video": CLIP}), "media.source_video"),
    (body("google/veo-3.0", media={"reference_images": [IMAGE]}), "media.reference_images"),
    (body("openai/sora-2", media={"audio_inputs": [SONG]}), "media.audio_inputs"),
    (body(WAN_T2V, media=frames(0)), "media.frame_images"),
    (body(WAN_T2V, media={"frame_videos": [{"video": CLIP}]}), "media.frame_videos"),
    (body(WAN_I2V, media={"reference_videos": [{"video": CLIP}]}), "media.reference_videos"),
    (body(WAN_R2V, media={"audio_inputs": [SONG]}), "media.audio_inputs"),
    (body(WAN_R2V, media={"source_video": CLIP}), "media.source_video"),
    (body(WAN_EDIT, media={"source_video": CLIP, "frame_videos": []}), "media.frame_videos"),
    # a videoedit model needs its source video
    (body(WAN_EDIT), "media.source_video"),
    (body(WAN_EDIT, media={"reference_images": [IMAGE]}), "media.source_video"),
    # media shapes
    (body(WAN_I2V, media={"frame_videos": [CLIP]}), "media.frame_videos"),
    (body(WAN_I2V, media={"frame_videos": [{"video": "clip.mp4"}]}), "media.frame_videos"),
    (body(WAN_I2V, media={"frame_videos": {"video": CLIP}}), "media.frame_videos"),
    (body(WAN_R2V, media={"reference_videos": CLIP}), "media.reference_videos"),
    (body(WAN_R2V, media={"reference_videos": [{"url": CLIP}]}), "media.reference_videos"),
    (body(WAN_EDIT, media={"source_video": 5}), "media.source_video"),
    (body(WAN_EDIT, media={"source_video": {"url": CLIP}}), "media.source_video"),
    (body(WAN_EDIT, media={"source_video": [CLIP]}), "media.source_video"),
    (body(WAN_T2V, media={"audio_inputs": SONG}), "media.audio_inputs"),
    (body(WAN_T2V, media={"audio_inputs": [{"video": SONG}]}), "media.audio_inputs"),
    (body(WAN_T2V, media={"audio_inputs": ["ftp://x/song.mp3"]}), "media.audio_inputs"),
    (body(WAN_T2V, media={"mask_image": IMAGE}), "media.mask_image"),
    # keyframe positions
    (body("google/veo-3.0", media=frames(0, "last")), "media.frame_images"),
    (body("openai/sora-2", media=frames("last")), "media.frame_images"),
    (body("minimax/video-01-director", media=frames(None, None)), "media.frame_images"),
    (body("kwaivgI/kling-2.1-standard", media=frames(12)), "media.frame_images"),
    (body("google/veo-2.0", media=frames(0, "last", 3)), "media.frame_images"),
    (body("google/veo-2.0", media=frames(None, "last")), "media.frame_images"),
]


@pytest.mark.parametrize(("request_body", "param"), REFUSED)
def test_refused(request_body: dict[str, Any], param: str) -> None:
    problem = validate_create(request_body)
    assert problem is not None
    assert problem.param == param
    assert problem.message


@pytest.mark.parametrize(
    ("resolution", "ratio", "size"),
    [
        ("720P", "16:9", "1280x720"),
        ("720P", "9:16", "720x1280"),
        ("1080P", "1:1", "1080x1080"),
        ("720P", "4:3", "960x720"),
        ("1080P", "3:4", "1080x1440"),
        ("4K", "16:9", None),
        ("720P", "wide", None),
        ("720P", "0:1", None),
    ],
)
def test_pixel_size(resolution: str, ratio: str, size: str | None) -> None:
    assert pixel_size(resolution, ratio) == size


# -- over HTTP ---------------------------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        TogetherSandbox() as sandbox,
        httpx.AsyncClient(base_url=sandbox.base_url, headers=AUTH) as c,
    ):
        yield c


async def test_refusal_names_the_param(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/videos", json=body("google/veo-3.0", seconds="5"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["type"]) == ("seconds", "invalid_request_error")
    assert "8" in error["message"]


@pytest.mark.parametrize("model", sorted(m for m, s in MODELS.items() if s.kind != "videoedit"))
async def test_job_reports_the_model_defaults(client: httpx.AsyncClient, model: str) -> None:
    response = await client.post("/v2/videos", json=body(model))
    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["size"], job["seconds"]) == (MODELS[model].size, MODELS[model].seconds)


@pytest.mark.parametrize(
    ("extra", "size"),
    [
        ({"resolution": "1080P", "ratio": "9:16"}, "1080x1920"),
        ({"resolution": "720P", "ratio": "4:3"}, "960x720"),
        ({"resolution": "1080P"}, "1920x1080"),
        ({"ratio": "1:1"}, "720x720"),
        ({}, "1280x720"),
    ],
)
async def test_job_size_for_resolution_models(
    client: httpx.AsyncClient, extra: dict[str, Any], size: str
) -> None:
    response = await client.post("/v2/videos", json=body(WAN_T2V, seconds="12", **extra))
    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["size"], job["seconds"]) == (size, "12")
    assert job["inputs"]["resolution"] == extra.get("resolution")
