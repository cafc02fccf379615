"""Checks a POST /v2/videos body the way Together's API does (the documented rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.together.models import MODELS

PROMPT_MAX_CHARS = 32_000
STEPS_RANGE = (10, 50)
OUTPUT_FORMATS = ("MP4", "WEBM")
FRAME_NAMES = ("first", "last")

# Optional fields checked only for their JSON type.
_INT_FIELDS = ("width", "height", "fps", "steps", "seed", "output_quality")
_STR_FIELDS = ("seconds", "negative_prompt")


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


def validate_create(body: Any) -> Invalid | None:
    """Return the first problem with a create-video body, or None when it is acceptable."""
    if not isinstance(body, dict):
        return Invalid("Request body must be a JSON object.", None)
    for check in (_check_model, _check_types, _check_steps, _check_format, _check_media):
        problem = check(body)
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
        if name in body and body[name] is not None and not _is_int(body[name]):
            return Invalid(f"{name} must be an integer.", name)
    for name in _STR_FIELDS:
        if name in body and body[name] is not None and not isinstance(body[name], str):
            return Invalid(f"{name} must be a string.", name)
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


def _check_media(body: dict[str, Any]) -> Invalid | None:
    media = body.get("media")
    if media is None:
        return None
    if not isinstance(media, dict):
        return Invalid("media must be an object.", "media")
    frames = media.get("frame_images")
    if frames is not None and not _valid_frame_images(frames):
        return Invalid(
            "frame_images must be a list of {input_image, frame} objects; frame is 0, "
            '"first", "last" or a frame number.',
            "media.frame_images",
        )
    refs = media.get("reference_images")
    if refs is not None and not (
        isinstance(refs, list) and all(isinstance(ref, str) and ref for ref in refs)
    ):
        return Invalid("reference_images must be a list of strings.", "media.reference_images")
    return None


def _valid_frame_images(frames: Any) -> bool:
    return isinstance(frames, list) and all(_valid_frame_image(item) for item in frames)


def _valid_frame_image(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    image, frame = item.get("input_image"), item.get("frame")
    if not isinstance(image, str) or not image:
        return False
    if isinstance(frame, str):
        return frame in FRAME_NAMES
    return isinstance(frame, int) and not isinstance(frame, bool) and frame >= 0


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
