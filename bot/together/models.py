"""The request and job models of Together's /v2/videos, parsed leniently (no I/O).

The API's documented shapes disagree with each other (numbers vs ISO timestamps, ``error`` vs
``info.errors``); everything Together sends is untrusted and cleaned here.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.together.limits import RateLimitHeaders

log = logging.getLogger(__name__)

VIDEOS_PATH = "/v2/videos"
# Together's texts (failure reasons, error bodies) are shown to members: at most this long.
REASON_LIMIT = 300
# One clip costs a few dollars at most on Together's dearest models; a reported cost above this
# is a bug or a unit mix-up, and a single such value would exhaust a server's budget. Capped.
MAX_VIDEO_COST_USD = 100.0
# Bidirectional overrides and isolates can reorder the text shown around them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Timestamps above this are taken as milliseconds (1e11 seconds is the year 5138).
_MS_THRESHOLD = 1e11
_COMPLETED_STATUSES = frozenset({"completed"})
_CANCELLED_STATUSES = frozenset({"cancelled", "canceled"})
_FAILED_STATUSES = frozenset({"failed", "error", "expired"}) | _CANCELLED_STATUSES
_RETRYABLE_STATUSES = frozenset({408, 429})


# --------------------------------------------------------------------------- request models


class FrameImage(BaseModel):
    """A keyframe: base64 image data (no ``data:`` prefix) or a URL, pinned to a frame."""

    model_config = ConfigDict(extra="forbid")

    input_image: str
    frame: int | Literal["first", "last"]


class VideoLink(BaseModel):
    """A video Together fetches: ``{"video": URL}``."""

    model_config = ConfigDict(extra="forbid")

    video: str


class AudioLink(BaseModel):
    """An audio file Together fetches: ``{"audio": URL}`` (WAV or MP3, 3 to 30 s, 15 MB)."""

    model_config = ConfigDict(extra="forbid")

    audio: str


class VideoMedia(BaseModel):
    """``media``: which fields a model takes depends on its kind (t2v, i2v, r2v, videoedit)."""

    model_config = ConfigDict(extra="forbid")

    frame_images: list[FrameImage] | None = None
    reference_images: list[str] | None = None
    frame_videos: list[VideoLink] | None = None  # clips to continue
    reference_videos: list[VideoLink] | None = None
    source_video: VideoLink | None = None  # the clip a videoedit model edits
    audio_inputs: list[AudioLink] | None = None


class CreateVideoRequest(BaseModel):
    """The POST body. Absent options are left out so Together applies its own defaults."""

    model_config = ConfigDict(extra="forbid")

    model: str
    prompt: str | None = None
    width: int | None = None
    height: int | None = None
    # Newer models (e.g. Wan 2.7) take these instead of width/height.
    resolution: str | None = None
    ratio: str | None = None
    seconds: str | None = None
    fps: int | None = None
    steps: int | None = None
    seed: int | None = None
    guidance_scale: float | None = None
    output_format: Literal["MP4", "WEBM"] | None = None
    output_quality: int | None = None
    negative_prompt: str | None = None
    generate_audio: bool | None = None
    media: VideoMedia | None = None

    @field_validator("seconds", mode="before")
    @classmethod
    def _seconds_as_str(cls, value: Any) -> Any:
        # The API wants a string; accept a number from callers for convenience.
        return _seconds_str(value) if isinstance(value, int | float) else value

    def to_body(self) -> dict[str, Any]:
        """The JSON body as sent: no null fields, and no empty ``media`` object."""
        body = self.model_dump(mode="json", exclude_none=True)
        if not body.get("media"):
            body.pop("media", None)
        return body


# --------------------------------------------------------------------------- the job


class VideoJob(BaseModel):
    """A job as Together reports it, flattened. Build it with ``VideoJob.model_validate(body)``.

    Parsing is lenient: unknown fields are ignored, malformed optional values become None,
    and ``status`` is an open (lower-cased) string. The original body is kept in ``raw``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1)
    status: str | None = None  # None when the POST answered with only an id
    model: str | None = None
    created_at: float | None = None  # epoch seconds
    completed_at: float | None = None
    seconds: str | None = None
    size: str | None = None
    video_url: str | None = None
    cost: float | None = None
    seed: int | None = None
    error_message: str | None = None
    error_code: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)
    # The answer's x-ratelimit-* headers, set by the client; not part of the body.
    limits: RateLimitHeaders | None = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        return _normalize_job(data) if isinstance(data, dict) else data

    @property
    def is_completed(self) -> bool:
        return self.status in _COMPLETED_STATUSES

    @property
    def is_failed(self) -> bool:
        """Ended without a video: failed, or cancelled at Together (see is_cancelled)."""
        return self.status in _FAILED_STATUSES

    @property
    def is_cancelled(self) -> bool:
        return self.status in _CANCELLED_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.is_completed or self.is_failed


def _normalize_job(data: dict[str, Any]) -> dict[str, Any]:
    """Map an API body (or an already-flattened dump of a VideoJob) to the model's fields."""
    raw = data["raw"] if isinstance(data.get("raw"), dict) else dict(data)
    outputs = _as_dict(data.get("outputs"))
    inputs = _as_dict(data.get("inputs"))
    return {
        "id": _to_str(data.get("id")),
        "status": _status(data.get("status")),
        "model": _to_str(_first(data.get("model"), inputs.get("model"))),
        "created_at": _to_epoch(data.get("created_at")),
        "completed_at": _to_epoch(_first(data.get("completed_at"), data.get("done_at"))),
        "seconds": _seconds_str(_first(data.get("seconds"), inputs.get("seconds"))),
        "size": _to_str(data.get("size")),
        "video_url": _to_str(_first(outputs.get("video_url"), data.get("video_url"))),
        "cost": _job_cost(_first(outputs.get("cost"), data.get("cost")), data.get("id")),
        "seed": _to_int(_first(data.get("seed"), inputs.get("seed"), outputs.get("seed"))),
        "error_message": _job_error_message(data),
        "error_code": _job_error_code(data),
        "raw": raw,
    }


def _job_error_message(data: dict[str, Any]) -> str | None:
    """Together's failure reason, cleaned and bounded here: it ends up in embeds and logs."""
    message = _raw_error_message(data)
    if message is None:
        return None
    return clean_text(message) or None


def _raw_error_message(data: dict[str, Any]) -> str | None:
    error = data.get("error")
    if isinstance(error, dict):
        message = _to_str(error.get("message"))
        if message:
            return message
    elif isinstance(error, str) and error.strip():
        return error.strip()
    info_errors = _join_errors(_as_dict(data.get("info")).get("errors"))
    return info_errors or _to_str(data.get("error_message"))


def _join_errors(errors: Any) -> str | None:
    """``info.errors`` may be a string, a list of strings, or a list of ``{message}``."""
    items = errors if isinstance(errors, list) else [errors]
    messages: list[str] = []
    for item in items:
        text = _to_str(item.get("message")) if isinstance(item, dict) else _to_str(item)
        if text:
            messages.append(text)
    return "; ".join(messages) or None


def _job_error_code(data: dict[str, Any]) -> str | None:
    error = _as_dict(data.get("error"))
    return _to_str(_first(error.get("code"), data.get("error_code")))


def _job_cost(value: Any, job_id: Any) -> float | None:
    """The reported cost in USD, or None when it cannot be believed (the catalog's estimate
    then counts instead). Storage sums these into budgets, so a negative or huge value would
    hand out or use up a server's whole quota."""
    if value is None:
        return None
    number = _to_float(value)
    if number is None or number < 0:
        log.warning(
            "Together job %s reported an unusable cost %s; using the catalog estimate",
            _loggable(job_id),
            _loggable(value),
        )
        return None
    if number > MAX_VIDEO_COST_USD:
        log.warning(
            "Together job %s reported a cost of %s USD; capped at %.2f",
            _loggable(job_id),
            _loggable(value),
            MAX_VIDEO_COST_USD,
        )
        return MAX_VIDEO_COST_USD
    return number


def _loggable(value: Any, limit: int = 60) -> str:
    """A short repr for log lines: the value came from the network."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- lenient coercion


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _to_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if _is_number(value):
        return str(value)
    return None


def _status(value: Any) -> str | None:
    text = _to_str(value)
    return text.lower() if text else None


def _to_float(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not _is_number(value) or not math.isfinite(value):
        return None
    return float(value)


def _to_int(value: Any) -> int | None:
    number = _to_float(value)
    return int(number) if number is not None and number.is_integer() else None


def _seconds_str(value: Any) -> str | None:
    number = _to_float(value) if _is_number(value) else None
    if number is not None:
        return str(int(number)) if number.is_integer() else str(number)
    return _to_str(value)


def _to_epoch(value: Any) -> float | None:
    """A number (seconds, or milliseconds if huge) or an ISO 8601 string -> epoch seconds."""
    number = _to_float(value)
    if number is not None:
        return number / 1000 if number > _MS_THRESHOLD else number
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:  # no zone given: the API speaks UTC
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def clean_text(text: str, limit: int = REASON_LIMIT) -> str:
    """Untrusted text made fit to show: control and bidi characters removed, whitespace
    collapsed to single spaces (one paragraph), and at most ``limit`` characters, cut at a
    word boundary when one is near, with an ellipsis."""
    visible = "".join(
        " " if unicodedata.category(char) == "Cc" else char
        for char in text
        if char not in _BIDI_CONTROLS
    )
    return _cut_at_word(" ".join(visible.split()), limit)


def _cut_at_word(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - 1)]
    space = head.rfind(" ")
    if space >= limit // 2:  # a word boundary not too far back; else a hard cut
        head = head[:space]
    return head.rstrip() + "…"
