"""Thin async client for Together AI's video API (``/v2/videos``).

Only two calls exist: create a job (POST, never retried) and read a job (GET, retried on
transient failures). Responses are parsed leniently because the API's documented shapes
disagree with each other (numbers vs ISO timestamps, ``error`` vs ``info.errors``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
_FAILED_STATUSES = frozenset({"failed", "cancelled", "canceled", "error", "expired"})
_RETRYABLE_STATUSES = frozenset({408, 429})


# --------------------------------------------------------------------------- request models


class FrameImage(BaseModel):
    """A keyframe: base64 image data (no ``data:`` prefix) or a URL, pinned to a frame."""

    model_config = ConfigDict(extra="forbid")

    input_image: str
    frame: int | Literal["first", "last"]


class VideoMedia(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frame_images: list[FrameImage] | None = None
    reference_images: list[str] | None = None


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

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        return _normalize_job(data) if isinstance(data, dict) else data

    @property
    def is_completed(self) -> bool:
        return self.status in _COMPLETED_STATUSES

    @property
    def is_failed(self) -> bool:
        return self.status in _FAILED_STATUSES

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


# --------------------------------------------------------------------------- errors


class TogetherError(Exception):
    """A failed call. ``message`` is the API's own text (truncated), never the API key."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.type = type
        self.param = param
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        head = f"Together API HTTP {self.status}" if self.status else "Together API error"
        label = self.code or self.type
        return f"{head} ({label}): {self.message}" if label else f"{head}: {self.message}"

    @property
    def request_not_created(self) -> bool:
        """True only when it is certain a POST created no job (so no cost and no retry risk).

        A 4xx answer means the server refused the request. Anything else (5xx, a timeout
        while waiting for the answer, a garbled answer) may hide a created, billed job.
        """
        return self.status is not None and 400 <= self.status < 500


class TogetherAuthError(TogetherError):
    """401/403: the API key is missing, wrong or not allowed this model."""


class TogetherRateLimited(TogetherError):
    """429: slow down; ``retry_after`` holds the server's hint when it gave one."""


class TogetherBadRequest(TogetherError):
    """Any other 4xx: the request itself was refused."""


class TogetherServerError(TogetherError):
    """5xx: the job may or may not have been created."""


class TogetherProtocolError(TogetherError):
    """A 2xx (or unexpected 1xx/3xx) answer that could not be used, e.g. a body without an id."""


# Transport failures that happen before any byte of the request can reach the server.
_NOT_SENT_KINDS = frozenset({"connect", "connect_timeout", "pool_timeout"})


class TogetherConnectionError(TogetherError):
    """The HTTP exchange failed: ``kind`` says where (``connect``, ``read_timeout``, ...)."""

    def __init__(self, message: str, *, kind: str) -> None:
        self.kind = kind
        super().__init__(message, code=kind)

    def _describe(self) -> str:
        return f"Together API connection error ({self.kind}): {self.message}"

    @property
    def request_not_created(self) -> bool:
        return self.kind in _NOT_SENT_KINDS


def _transport_kind(exc: httpx.RequestError) -> str:
    # Order matters: ConnectTimeout is a TimeoutException, not a ConnectError.
    kinds: list[tuple[type[httpx.RequestError], str]] = [
        (httpx.ConnectTimeout, "connect_timeout"),
        (httpx.PoolTimeout, "pool_timeout"),
        (httpx.ReadTimeout, "read_timeout"),
        (httpx.WriteTimeout, "write_timeout"),
        (httpx.TimeoutException, "timeout"),
        (httpx.ConnectError, "connect"),
        (httpx.ReadError, "read"),
        (httpx.WriteError, "write"),
        (httpx.ProtocolError, "protocol"),
    ]
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), "transport")


def _error_class(status: int) -> type[TogetherError]:
    if status in (401, 403):
        return TogetherAuthError
    if status == 429:
        return TogetherRateLimited
    if 400 <= status < 500:
        return TogetherBadRequest
    if status >= 500:
        return TogetherServerError
    return TogetherProtocolError


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


def _error_fields(response: httpx.Response) -> dict[str, str | None]:
    """Pull message/type/code/param out of an error body, JSON or plain text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    fields: dict[str, str | None] = {"message": None, "type": None, "code": None, "param": None}
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            fields.update({key: _to_str(error.get(key)) for key in fields})
        else:
            fields["message"] = _to_str(error) or _to_str(
                _first(body.get("message"), body.get("detail"))
            )
    if not fields["message"]:
        fields["message"] = _to_str(response.text) or response.reason_phrase or "no details"
    return fields


def parse_retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait per ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``."""
    millis = _to_float(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _to_float(value)
    if seconds is None:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


def _is_retryable(exc: TogetherError) -> bool:
    if isinstance(exc, TogetherConnectionError):
        return True
    return exc.status is not None and (exc.status in _RETRYABLE_STATUSES or exc.status >= 500)


# --------------------------------------------------------------------------- the client


class TogetherClient:
    """Async client for ``/v2/videos``. Use as an async context manager or call ``aclose``.

    ``base_url`` is the API root (``https://api.together.xyz`` or ``https://api.together.ai``),
    with or without a trailing slash.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.together.xyz",
        *,
        timeout: float = 30.0,
        get_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        user_agent: str = "video-bot/0.1",
    ) -> None:
        api_key = api_key.strip()
        if not api_key:
            raise ValueError("Together API key is empty")
        if get_retries < 0 or backoff_base < 0 or backoff_max < 0:
            raise ValueError("get_retries, backoff_base and backoff_max must not be negative")
        self._api_key = api_key
        self._base_url = base_url
        self._get_retries = get_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"TogetherClient(base_url={self._base_url!r}, api_key='***')"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_video(self, request: CreateVideoRequest) -> VideoJob:
        """Submit a job. Never retried: the API has no idempotency key, so repeating a POST
        whose answer was lost could create a second, billed job. Check
        ``TogetherError.request_not_created`` before telling anyone nothing was spent.

        The answer may be just ``{"id"}`` (``status`` is then None) or a whole job, possibly
        already finished.
        """
        response = await self._request("POST", VIDEOS_PATH, json=request.to_body())
        job = self._parse_job(response)
        log.info(
            "Together accepted video job %s (model %s, status %s)",
            job.id,
            request.model,
            job.status,
        )
        return job

    async def get_video(self, job_id: str) -> VideoJob:
        """Read a job, retrying 408, 429, 5xx and transport failures with backoff."""
        path = f"{VIDEOS_PATH}/{_quote_id(job_id)}"
        attempt = 0
        while True:
            try:
                return self._parse_job(await self._request("GET", path))
            except TogetherError as exc:
                if attempt >= self._get_retries or not _is_retryable(exc):
                    raise
                delay = self._retry_delay(attempt, exc.retry_after)
                attempt += 1
                log.warning(
                    "GET video job %s failed (%s); retry %d/%d in %.2fs",
                    job_id,
                    exc.status if exc.status is not None else exc.code,
                    attempt,
                    self._get_retries,
                    delay,
                )
                await self._sleep(delay)

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._backoff_max)
        ceiling = min(self._backoff_max, self._backoff_base * 2**attempt)
        # "Equal jitter": at least half the backoff, so retries still spread out.
        return random.uniform(ceiling / 2, ceiling)

    async def _request(
        self, method: str, path: str, *, json: dict[str, Any] | None = None
    ) -> httpx.Response:
        try:
            response = await self._http.request(method, path, json=json)
        except httpx.RequestError as exc:
            message = clean_text(self._redact(str(exc) or type(exc).__name__))
            raise TogetherConnectionError(message, kind=_transport_kind(exc)) from exc
        if response.is_success:
            return response
        raise self._error_from_response(response)

    def _error_from_response(self, response: httpx.Response) -> TogetherError:
        fields = _error_fields(response)
        return _error_class(response.status_code)(
            clean_text(self._redact(fields["message"] or "")),
            status=response.status_code,
            code=fields["code"],
            type=fields["type"],
            param=fields["param"],
            retry_after=parse_retry_after(response.headers),
        )

    def _parse_job(self, response: httpx.Response) -> VideoJob:
        try:
            return VideoJob.model_validate(response.json())
        except (ValueError, ValidationError):
            # ValidationError text could echo the body; keep the message short and fixed.
            raise TogetherProtocolError(
                "the answer is not a video job (no id, or not JSON)",
                status=response.status_code,
                type="invalid_response",
            ) from None

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***")


def _quote_id(job_id: str) -> str:
    quoted = quote(job_id.strip(), safe="")
    if quoted in ("", ".", ".."):
        raise ValueError(f"invalid video job id: {job_id!r}")
    return quoted
