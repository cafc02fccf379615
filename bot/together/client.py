"""Thin async client for Together AI's video API (``/v2/videos``).

Only two calls exist: create a job (POST, never retried) and read a job (GET, retried on
transient failures). Responses are parsed leniently because the API's documented shapes
disagree with each other (numbers vs ISO timestamps, ``error`` vs ``info.errors``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from bot.together.errors import (
    TogetherAuthError,
    TogetherBadRequest,
    TogetherConnectionError,
    TogetherError,
    TogetherProtocolError,
    TogetherRateLimited,
    TogetherServerError,
)
from bot.together.limits import parse_rate_limit_headers
from bot.together.models import (
    _RETRYABLE_STATUSES,
    VIDEOS_PATH,
    CreateVideoRequest,
    VideoJob,
    _first,
    _to_float,
    _to_str,
    clean_text,
)

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"


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

    ``base_url`` is the API root (``https://api.together.ai``, or the old ``https://api.together.xyz``),
    with or without a trailing slash.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.together.ai",
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

    async def chat_completion(
        self, body: dict[str, Any], *, http_timeout: float | None = None
    ) -> dict[str, Any]:
        """POST /v1/chat/completions once (a moderation check: nothing to retry within its
        deadline); the answer's JSON object. TogetherError as for the video calls."""
        response = await self._request("POST", CHAT_PATH, json=body, http_timeout=http_timeout)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise TogetherProtocolError(
                "the answer is not a JSON object", status=response.status_code
            )
        return answer

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        http_timeout: float | None = None,
    ) -> httpx.Response:
        # None: the client's own timeout.
        options: dict[str, Any] = (
            {} if http_timeout is None else {"timeout": httpx.Timeout(http_timeout)}
        )
        try:
            response = await self._http.request(method, path, json=json, **options)
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
            limits=parse_rate_limit_headers(response.headers, time.time()),
        )

    def _parse_job(self, response: httpx.Response) -> VideoJob:
        try:
            job = VideoJob.model_validate(response.json())
        except (ValueError, ValidationError):
            # ValidationError text could echo the body; keep the message short and fixed.
            raise TogetherProtocolError(
                "the answer is not a video job (no id, or not JSON)",
                status=response.status_code,
                type="invalid_response",
            ) from None
        limits = parse_rate_limit_headers(response.headers, time.time())
        return job if limits is None else job.model_copy(update={"limits": limits})

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***")


def _quote_id(job_id: str) -> str:
    quoted = quote(job_id.strip(), safe="")
    if quoted in ("", ".", ".."):
        raise ValueError(f"invalid video job id: {job_id!r}")
    return quoted
