"""Checks a POST /v2/videos body the way Together's API does (the documented rules).

The per-model rules (dimensions, seconds, audio, media) come from `models.MODELS`; a model
without published specs gets the type checks only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.together.models import (
    AUDIO_INPUTS,
    FRAME_IMAGES,
    FRAME_VIDEOS,
    MEDIA_FIELDS,
    MODELS,
    REFERENCE_IMAGES,
    REFERENCE_VIDEOS,
    SOURCE_VIDEO,
    ModelSpec,
)

PROMPT_MAX_CHARS = 32_000
STEPS_RANGE = (10, 50)
OUTPUT_FORMATS = ("MP4", "WEBM")
FRAME_NAMES = ("first", "last")

# Optional fields checked only for their JSON type.
_INT_FIELDS = ("width", "height", "fps", "steps", "seed", "output_quality")
_STR_FIELDS = ("seconds", "negative_prompt", "resolution", "ratio")
_BOOL_FIELDS = ("generate_audio",)
_WHOLE_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a request body was rejected, and which field (None for the body itself)."""

    message: str
    param: str | None


def _is_int(value: Any) -> bool:
    # JSON true/false arrive as bool, which Python counts as int.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, float)


def _given(body: dict[str, Any], name: str) -> bool:
    return body.get(name) is not None


def validate_create(body: Any) -> Invalid | None:
    """Return the first problem with a create-video body, or None when it is acceptable."""
    if not isinstance(body, dict):
        return Invalid("Request body must be a JSON object.", None)
    for check in (_check_model, _check_types, _check_steps, _check_format, _check_media_shapes):
        problem = check(body)
        if problem:
            return problem
    spec = MODELS[body["model"]]
    for model_check in (_check_dimensions, _check_seconds, _check_audio, _check_media_for_model):
        problem = model_check(body, spec)
        if problem:
            return problem
    return _check_prompt(body)


def _check_model(body: dict[str, Any]) -> Invalid | None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return Invalid("model is required.", "model")
    if model not in MODELS:
        return Invalid(f"Unable to access model {model}. Unknown or unsupported model.", "model")
    return None


def _check_types(body: dict[str, Any]) -> Invalid | None:
    for name in _INT_FIELDS:
        if _given(body, name) and not _is_int(body[name]):
            return Invalid(f"{name} must be an integer.", name)
    for name in _STR_FIELDS:
        if _given(body, name) and not isinstance(body[name], str):
            return Invalid(f"{name} must be a string.", name)
    for name in _BOOL_FIELDS:
        if _given(body, name) and not isinstance(body[name], bool):
            return Invalid(f"{name} must be a boolean.", name)
    scale = body.get("guidance_scale")
    if scale is not None and not _is_number(scale):
        return Invalid("guidance_scale must be a number.", "guidance_scale")
    return None


def _check_steps(body: dict[str, Any]) -> Invalid | None:
    steps = body.get("steps")
    low, high = STEPS_RANGE
    if steps is not None and not low <= steps <= high:
        return Invalid(f"steps must be between {low} and {high}.", "steps")
    return None


def _check_format(body: dict[str, Any]) -> Invalid | None:
    fmt = body.get("output_format")
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        return Invalid("output_format must be one of MP4, WEBM.", "output_format")
    return None


# -- per model ---------------------------------------------------------------------------


def _check_dimensions(body: dict[str, Any], spec: ModelSpec) -> Invalid | None:
    if not spec.published:
        return None
    model = body["model"]
    if spec.takes_resolution:
        for name in ("width", "height"):
            if _given(body, name):
                return Invalid(f"{model} takes resolution and ratio, not {name}.", name)
        for name, allowed in (("resolution", spec.resolutions), ("ratio", spec.ratios)):
            if _given(body, name) and body[name] not in allowed:
                return Invalid(f"{name} must be one of {', '.join(allowed)} for {model}.", name)
        return None
    for name in ("resolution", "ratio"):
        if _given(body, name):
            return Invalid(f"{model} takes width and height, not {name}.", name)
    width, height = _given(body, "width"), _given(body, "height")
    if not width and not height:
        return None
    if not (width and height):
        missing = "height" if width else "width"
        return Invalid(f"{missing} is required when {_other(missing)} is given.", missing)
    size = f"{body['width']}x{body['height']}"
    if size not in spec.sizes:
        return Invalid(
            f"{size} is not a supported size for {model}; use one of {', '.join(spec.sizes)}.",
            "width",
        )
    return None


def _other(name: str) -> str:
    return "width" if name == "height" else "height"


def _check_seconds(body: dict[str, Any], spec: ModelSpec) -> Invalid | None:
    seconds = body.get("seconds")
    if seconds is None or not spec.published:
        return None
    if not _WHOLE_NUMBER.fullmatch(seconds) or not spec.seconds_allowed(int(seconds)):
        return Invalid(
            f"seconds must be one of {spec.describe_seconds()} for {body['model']}.", "seconds"
        )
    return None


def _check_audio(body: dict[str, Any], spec: ModelSpec) -> Invalid | None:
    if _given(body, "generate_audio") and not spec.generate_audio:
        return Invalid(f"{body['model']} does not take generate_audio.", "generate_audio")
    return None


def _check_media_for_model(body: dict[str, Any], spec: ModelSpec) -> Invalid | None:
    media = body.get("media") or {}
    model = body["model"]
    for name in MEDIA_FIELDS:
        if media.get(name) is not None and name not in spec.media:
            return Invalid(f"{model} does not accept media.{name}.", f"media.{name}")
    if spec.kind == "videoedit" and media.get(SOURCE_VIDEO) is None:
        return Invalid(f"{model} requires media.source_video.", f"media.{SOURCE_VIDEO}")
    frames = media.get(FRAME_IMAGES)
    if frames and spec.published:
        return _check_frame_positions(frames, spec, model)
    return None


def _check_frame_positions(
    frames: list[dict[str, Any]], spec: ModelSpec, model: str
) -> Invalid | None:
    """One image is the first frame; a second, or any frame but the first, needs a model that
    takes a last frame."""
    param = f"media.{FRAME_IMAGES}"
    if len(frames) > 2:
        return Invalid(f"{model} takes at most a first and a last frame.", param)
    omitted = [frame.get("frame") is None for frame in frames]
    if any(omitted) and not all(omitted):
        # Omitted frames are first then last; mixing that with explicit ones is ambiguous.
        return Invalid("frame must be given for every image or for none.", param)
    later = len(frames) == 2 or any(_is_later_frame(frame.get("frame")) for frame in frames)
    if later and not spec.last_frame:
        return Invalid(f"{model} takes only a first frame.", param)
    return None


def _is_later_frame(frame: Any) -> bool:
    return frame is not None and frame not in (0, "first")


# -- media shapes ------------------------------------------------------------------------


def _check_media_shapes(body: dict[str, Any]) -> Invalid | None:
    media = body.get("media")
    if media is None:
        return None
    if not isinstance(media, dict):
        return Invalid("media must be an object.", "media")
    for name in media:
        if name not in _SHAPES:
            return Invalid(f"Unknown media field {name}.", f"media.{name}")
    for name, (valid, words) in _SHAPES.items():
        value = media.get(name)
        if value is not None and not valid(value):
            return Invalid(f"{name} must be {words}.", f"media.{name}")
    return None


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 8


def _list_of(item_ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, list) and all(item_ok(item) for item in value)


def _holds_url(key: str) -> Callable[[Any], bool]:
    return lambda item: isinstance(item, dict) and _is_url(item.get(key))


def _valid_frame_image(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    image, frame = item.get("input_image"), item.get("frame")
    if not isinstance(image, str) or not image:
        return False
    if frame is None:  # omitted: one image is first, two are first and last
        return True
    if isinstance(frame, str):
        return frame in FRAME_NAMES
    return _is_int(frame) and frame >= 0


def _non_empty_str(item: Any) -> bool:
    return isinstance(item, str) and bool(item)


_SHAPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    FRAME_IMAGES: (
        _list_of(_valid_frame_image),
        'a list of {input_image, frame} objects; frame is 0, "first", "last" or a frame number',
    ),
    FRAME_VIDEOS: (_list_of(_holds_url("video")), "a list of {video: URL} objects"),
    REFERENCE_IMAGES: (_list_of(_non_empty_str), "a list of strings (URLs or base64 data)"),
    REFERENCE_VIDEOS: (_list_of(_holds_url("video")), "a list of {video: URL} objects"),
    SOURCE_VIDEO: (
        lambda value: _is_url(value) or _holds_url("video")(value),
        "a URL or a {video: URL} object",
    ),
    AUDIO_INPUTS: (
        _list_of(lambda item: _is_url(item) or _holds_url("audio")(item)),
        "a list of URLs or {audio: URL} objects",
    ),
}


def media_urls(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The video and audio URLs of an accepted body, as (input name, URL), in body order.

    These are what Together fetches itself; images may be base64 and are not fetched here.
    """
    media = body.get("media") or {}
    urls: list[tuple[str, str]] = []
    for name, key in ((FRAME_VIDEOS, "video"), (REFERENCE_VIDEOS, "video")):
        for index, item in enumerate(media.get(name) or []):
            urls.append((f"media.{name}[{index}]", item[key]))
    source = media.get(SOURCE_VIDEO)
    if source is not None:
        url = source if isinstance(source, str) else source["video"]
        urls.append((f"media.{SOURCE_VIDEO}", url))
    for index, item in enumerate(media.get(AUDIO_INPUTS) or []):
        url = item if isinstance(item, str) else item["audio"]
        urls.append((f"media.{AUDIO_INPUTS}[{index}]", url))
    return urls


# -- prompt ------------------------------------------------------------------------------


def _has_frame_images(body: dict[str, Any]) -> bool:
    media = body.get("media")
    return isinstance(media, dict) and bool(media.get("frame_images"))


def _check_prompt(body: dict[str, Any]) -> Invalid | None:
    prompt = body.get("prompt")
    if prompt is None:
        # Keyframe-only requests are allowed (Kling animates an image without a prompt).
        if _has_frame_images(body):
            return None
        return Invalid("prompt is required.", "prompt")
    if not isinstance(prompt, str):
        return Invalid("prompt must be a string.", "prompt")
    if not 1 <= len(prompt) <= PROMPT_MAX_CHARS:
        return Invalid(f"prompt must be 1 to {PROMPT_MAX_CHARS} characters long.", "prompt")
    return None
