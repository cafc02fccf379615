"""Unit tests for bot.together: request body, lenient parsing, typed errors, retry policy."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from bot.together.client import TogetherClient
from bot.together.errors import (
    TogetherAuthError,
    TogetherBadRequest,
    TogetherConnectionError,
    TogetherError,
    TogetherProtocolError,
    TogetherRateLimited,
    TogetherServerError,
)
from bot.together.limits import RateLimitHeaders, parse_rate_limit_headers
from bot.together.models import (
    MAX_VIDEO_COST_USD,
    REASON_LIMIT,
    CreateVideoRequest,
    FrameImage,
    VideoJob,
    VideoMedia,
    clean_text,
)

API_KEY = "tgp_v1_SECRET-test-key-0123456789"
BASE = "https://api.together.test"

Handler = Callable[[httpx.Request], httpx.Response]

# The job shape from shared/together-facts.md, plus fields the docs' example shows.
FULL_JOB: dict[str, Any] = {
    "id": "019a0068-794a-7213-90f6-0a7ab6e4e3ba",
    "object": "video",
    "model": "minimax/video-01-director",
    "status": "completed",
    "created_at": 1729407438,
    "completed_at": 1729407612,
    "seconds": "5",
    "size": "1366x768",
    "outputs": {"video_url": "https://api.together.ai/shrt/abc123", "cost": 0.28},
    "error": None,
    "inputs": {"prompt": "a cat", "seed": 42},
    "claimed_at": "2024-10-20T06:57:20Z",
}


class Recorder:
    """A MockTransport handler that answers from a script and remembers every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.calls.append(delay)


def make_client(handler: Handler, sleeps: Sleeps | None = None, **kwargs: Any) -> TogetherClient:
    return TogetherClient(
        API_KEY,
        BASE,
        transport=httpx.MockTransport(handler),
        sleep=sleeps or Sleeps(),
        **kwargs,
    )


def error_response(
    status: int, message: str = "boom", headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    body = {"error": {"message": message, "type": extra.get("type"), "param": None}}
    body["error"]["code"] = extra.get("code")
    return httpx.Response(status, json=body, headers=headers)


# --------------------------------------------------------------------------- request body


async def test_post_sends_exact_body_without_nulls() -> None:
    recorder = Recorder(httpx.Response(200, json={"id": "job-1"}))
    request = CreateVideoRequest(
        model="google/veo-2.0",
        prompt="a lighthouse at dusk",
        width=1280,
        height=720,
        seconds="5",
        seed=7,
        guidance_scale=8.0,
        media=VideoMedia(
            frame_images=[
                FrameImage(input_image="aGVsbG8=", frame=0),
                FrameImage(input_image="https://img.test/last.png", frame="last"),
            ]
        ),
    )
    async with make_client(recorder) as client:
        await client.create_video(request)

    [sent] = recorder.requests
    assert sent.method == "POST"
    assert str(sent.url) == f"{BASE}/v2/videos"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"] == "video-bot/0.1"
    assert json.loads(sent.content) == {
        "model": "google/veo-2.0",
        "prompt": "a lighthouse at dusk",
        "width": 1280,
        "height": 720,
        "seconds": "5",
        "seed": 7,
        "guidance_scale": 8.0,
        "media": {
            "frame_images": [
                {"input_image": "aGVsbG8=", "frame": 0},
                {"input_image": "https://img.test/last.png", "frame": "last"},
            ]
        },
    }


def test_body_drops_empty_media_and_takes_resolution_ratio() -> None:
    request = CreateVideoRequest(
        model="wan/wan-2.7", prompt="x", resolution="720p", ratio="16:9", media=VideoMedia()
    )
    assert request.to_body() == {
        "model": "wan/wan-2.7",
        "prompt": "x",
        "resolution": "720p",
        "ratio": "16:9",
    }


def test_body_reference_images_and_numeric_seconds() -> None:
    request = CreateVideoRequest.model_validate(
        {"model": "vidu/vidu-2.0", "seconds": 8, "media": {"reference_images": ["https://a"]}}
    )
    assert request.to_body() == {
        "model": "vidu/vidu-2.0",
        "seconds": "8",
        "media": {"reference_images": ["https://a"]},
    }


@pytest.mark.parametrize("base_url", [BASE, BASE + "/"])
async def test_base_url_with_or_without_slash(base_url: str) -> None:
    recorder = Recorder(httpx.Response(200, json={"id": "j"}))
    client = TogetherClient(API_KEY, base_url, transport=httpx.MockTransport(recorder))
    async with client:
        await client.create_video(CreateVideoRequest(model="m"))
        await client.get_video("j")
    assert [str(r.url) for r in recorder.requests] == [
        f"{BASE}/v2/videos",
        f"{BASE}/v2/videos/j",
    ]


# --------------------------------------------------------------------------- POST answers


async def test_post_answered_with_id_only() -> None:
    async with make_client(Recorder(httpx.Response(200, json={"id": "job-1"}))) as client:
        job = await client.create_video(CreateVideoRequest(model="m", prompt="p"))
    assert job.id == "job-1"
    assert job.status is None
    assert not job.is_finished
    assert job.raw == {"id": "job-1"}


async def test_post_answered_with_completed_job() -> None:
    async with make_client(Recorder(httpx.Response(200, json=FULL_JOB))) as client:
        job = await client.create_video(CreateVideoRequest(model="m", prompt="p"))
    assert job.is_completed and job.is_finished and not job.is_failed
    assert job.video_url == "https://api.together.ai/shrt/abc123"


async def test_post_answered_with_failed_job() -> None:
    body = {"id": "job-2", "status": "failed", "error": {"message": "NSFW prompt", "code": "c1"}}
    async with make_client(Recorder(httpx.Response(200, json=body))) as client:
        job = await client.create_video(CreateVideoRequest(model="m", prompt="p"))
    assert job.is_failed and job.is_finished and not job.is_completed
    assert job.error_message == "NSFW prompt"
    assert job.error_code == "c1"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"status": "queued"}),
        httpx.Response(200, json=["id"]),
        httpx.Response(200, text="<html>ok</html>"),
    ],
)
async def test_post_unusable_success_answer_is_protocol_error(answer: httpx.Response) -> None:
    recorder = Recorder(answer)
    async with make_client(recorder) as client:
        with pytest.raises(TogetherProtocolError) as info:
            await client.create_video(CreateVideoRequest(model="m"))
    # A 2xx means the job may well exist: never claim otherwise.
    assert info.value.request_not_created is False
    assert len(recorder.requests) == 1


# --------------------------------------------------------------------------- job parsing


def test_full_job_shape() -> None:
    job = VideoJob.model_validate(FULL_JOB)
    assert job.id == FULL_JOB["id"]
    assert job.status == "completed"
    assert job.model == "minimax/video-01-director"
    assert job.created_at == 1729407438.0
    assert job.completed_at == 1729407612.0
    assert job.seconds == "5"
    assert job.size == "1366x768"
    assert job.video_url == "https://api.together.ai/shrt/abc123"
    assert job.cost == pytest.approx(0.28)
    assert job.seed == 42
    assert job.error_message is None
    assert job.error_code is None
    assert job.raw == FULL_JOB


def test_raw_excluded_from_repr() -> None:
    job = VideoJob.model_validate({**FULL_JOB, "secret_field": "hidden-value"})
    assert "hidden-value" not in repr(job)
    assert "raw" not in repr(job)


def test_unknown_fields_ignored() -> None:
    job = VideoJob.model_validate(
        {"id": "j", "status": "in_progress", "new_thing": {"x": 1}, "outputs": {"extra": 1}}
    )
    assert job.status == "in_progress"
    assert job.raw["new_thing"] == {"x": 1}
    assert not job.is_finished


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-10-20T06:57:18Z", datetime(2024, 10, 20, 6, 57, 18, tzinfo=UTC).timestamp()),
        (
            "2024-10-20T06:57:18.500000+02:00",
            datetime(2024, 10, 20, 4, 57, 18, 500000, tzinfo=UTC).timestamp(),
        ),
        ("2024-10-20T06:57:18", datetime(2024, 10, 20, 6, 57, 18, tzinfo=UTC).timestamp()),
        (1729407438, 1729407438.0),
        (1729407438.5, 1729407438.5),
        ("1729407438", 1729407438.0),
        (1729407438000, 1729407438.0),  # milliseconds
        ("yesterday", None),
        (None, None),
    ],
)
def test_timestamps_numbers_or_iso(value: Any, expected: float | None) -> None:
    job = VideoJob.model_validate({"id": "j", "created_at": value, "done_at": value})
    assert job.created_at == expected
    assert job.completed_at == expected  # done_at is the docs' name for it


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ("model overloaded", "model overloaded"),
        (["first problem", "second problem"], "first problem; second problem"),
        ([{"message": "bad keyframe"}, {"message": "bad size"}], "bad keyframe; bad size"),
        ([{"code": "x"}, "", None], None),
        ([], None),
    ],
)
def test_info_errors_failure_reason(errors: Any, expected: str | None) -> None:
    job = VideoJob.model_validate({"id": "j", "status": "failed", "info": {"errors": errors}})
    assert job.is_failed
    assert job.error_message == expected


def test_error_message_prefers_error_object_then_plain_string() -> None:
    both = {"id": "j", "error": {"message": "primary"}, "info": {"errors": ["secondary"]}}
    assert VideoJob.model_validate(both).error_message == "primary"
    plain = {"id": "j", "error": "just a string"}
    assert VideoJob.model_validate(plain).error_message == "just a string"
    no_message = {"id": "j", "error": {"code": 500}, "info": {"errors": ["fallback"]}}
    job = VideoJob.model_validate(no_message)
    assert job.error_message == "fallback"
    assert job.error_code == "500"


@pytest.mark.parametrize(
    ("cost", "expected"),
    [(0.28, 0.28), (1, 1.0), ("0.28", 0.28), (" 2.5 ", 2.5), ("n/a", None), (True, None)],
)
def test_cost_number_or_string(cost: Any, expected: float | None) -> None:
    job = VideoJob.model_validate({"id": "j", "outputs": {"cost": cost}})
    assert job.cost == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("cost", "expected", "warned"),
    [
        (-500, None, True),  # a refund would hand the server budget back
        ("-0.01", None, True),
        (1e308, MAX_VIDEO_COST_USD, True),  # would use up every budget at once
        (150, MAX_VIDEO_COST_USD, True),
        ("NaN", None, True),
        ("inf", None, True),
        ("0.28", 0.28, False),
        (0, 0.0, False),
        (MAX_VIDEO_COST_USD, MAX_VIDEO_COST_USD, False),
        (None, None, False),  # not reported: nothing to warn about
    ],
)
def test_untrusted_cost_is_clamped(
    cost: Any, expected: float | None, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.together"):
        job = VideoJob.model_validate({"id": "job-77", "outputs": {"cost": cost}})
    assert job.cost == (pytest.approx(expected) if expected is not None else None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warnings) is warned
    assert all("job-77" in message for message in warnings)


FLOOD_REASON = (
    "**bold** @everyone <@123456789012345678> "
    + "\n" * 500
    + "\x00\x07\x1b[31m\u202eevil\r\t"
    + "word " * 2000
)


def test_failure_reason_is_cleaned_and_bounded_at_the_source() -> None:
    job = VideoJob.model_validate(
        {"id": "j", "status": "failed", "error": {"message": FLOOD_REASON}}
    )
    reason = job.error_message
    assert reason is not None
    assert len(reason) <= REASON_LIMIT and reason.endswith("word…")  # cut between words
    assert reason.startswith("**bold** @everyone <@123456789012345678> [31mevil word word")
    assert not any(ord(char) < 32 or char == "\u202e" for char in reason)
    assert "  " not in reason
    info = {"id": "j", "status": "failed", "info": {"errors": ["a\n\nb", {"message": "c\x00d"}]}}
    assert VideoJob.model_validate(info).error_message == "a b; c d"


def test_clean_text_cuts_a_long_word_hard() -> None:
    assert clean_text("x" * 1000, 10) == "x" * 9 + "…"
    assert clean_text("short\nenough", 10) == "short…"  # at the space
    assert clean_text("fits", 10) == "fits"
    assert clean_text("\x00\x01", 10) == ""


async def test_error_body_is_cleaned_too() -> None:
    handler = Recorder(httpx.Response(400, json={"error": {"message": "bad\x00\n\nprompt"}}))
    async with make_client(handler) as client:
        with pytest.raises(TogetherBadRequest) as info:
            await client.get_video("j")
    assert info.value.message == "bad prompt"


def test_seconds_number_and_seed_top_level() -> None:
    job = VideoJob.model_validate({"id": "j", "seconds": 5, "seed": "123"})
    assert job.seconds == "5"
    assert job.seed == 123
    assert VideoJob.model_validate({"id": "j", "seconds": 5.5}).seconds == "5.5"


@pytest.mark.parametrize(
    ("status", "completed", "failed"),
    [
        ("queued", False, False),
        ("in_progress", False, False),
        ("some_new_status", False, False),
        ("completed", True, False),
        ("COMPLETED", True, False),
        ("failed", False, True),
        ("cancelled", False, True),
        ("error", False, True),
        ("expired", False, True),
    ],
)
def test_status_properties(status: str, completed: bool, failed: bool) -> None:
    job = VideoJob.model_validate({"id": "j", "status": status})
    assert job.is_completed is completed
    assert job.is_failed is failed
    assert job.is_finished is (completed or failed)


def test_dump_round_trips() -> None:
    job = VideoJob.model_validate(FULL_JOB)
    assert VideoJob.model_validate(job.model_dump()) == job


def test_missing_id_is_invalid() -> None:
    with pytest.raises(ValueError):
        VideoJob.model_validate({"status": "queued"})


# --------------------------------------------------------------------------- typed errors


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, TogetherBadRequest),
        (401, TogetherAuthError),
        (403, TogetherAuthError),
        (404, TogetherBadRequest),
        (422, TogetherBadRequest),
        (429, TogetherRateLimited),
        (500, TogetherServerError),
        (503, TogetherServerError),
    ],
)
async def test_error_bodies_become_typed_errors(
    status: int, error_class: type[TogetherError]
) -> None:
    answer = error_response(
        status, "width must be one of 1280, 720", type="invalid_request_error", code="bad_width"
    )
    async with make_client(Recorder(answer)) as client:
        with pytest.raises(error_class) as info:
            await client.create_video(CreateVideoRequest(model="m"))
    error = info.value
    assert error.status == status
    assert error.message == "width must be one of 1280, 720"
    assert error.code == "bad_width"
    assert error.type == "invalid_request_error"
    assert "width must be one of 1280, 720" in str(error)


async def test_plain_text_error_body_is_truncated() -> None:
    answer = httpx.Response(502, text="Bad gateway " + "x" * 5000)
    async with make_client(Recorder(answer)) as client:
        with pytest.raises(TogetherServerError) as info:
            await client.create_video(CreateVideoRequest(model="m"))
    assert info.value.message.startswith("Bad gateway x")
    assert len(info.value.message) <= 300


async def test_empty_error_body_uses_reason_phrase() -> None:
    async with make_client(Recorder(httpx.Response(503))) as client:
        with pytest.raises(TogetherServerError) as info:
            await client.create_video(CreateVideoRequest(model="m"))
    assert info.value.message == "Service Unavailable"


async def test_rate_limited_carries_retry_after() -> None:
    answer = error_response(429, "slow down", headers={"Retry-After": "12"})
    async with make_client(Recorder(answer)) as client:
        with pytest.raises(TogetherRateLimited) as info:
            await client.create_video(CreateVideoRequest(model="m"))
    assert info.value.retry_after == 12.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"X-RateLimit-Limit": "1"}, RateLimitHeaders(limit=1.0)),
        (
            {"x-ratelimit-limit": "0.5", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "7"},
            RateLimitHeaders(limit=0.5, remaining=0.0, reset=7.0),
        ),
        ({"x-ratelimit-reset": "1m30s"}, RateLimitHeaders(reset=90.0)),
        ({"x-ratelimit-reset": "250ms"}, RateLimitHeaders(reset=0.25)),
        # A Unix time: seconds from the wall clock passed in.
        ({"x-ratelimit-reset": "1700000042"}, RateLimitHeaders(reset=42.0)),
        ({"x-ratelimit-limit": "lots", "x-ratelimit-remaining": "-3"}, None),
        ({"x-ratelimit-limit": "0", "x-ratelimit-remaining": "2"}, RateLimitHeaders(remaining=2)),
    ],
)
def test_rate_limit_headers_parsed(
    headers: dict[str, str], expected: RateLimitHeaders | None
) -> None:
    assert parse_rate_limit_headers(headers, wall_now=1_700_000_000.0) == expected


async def test_rate_limit_headers_reach_the_engine_on_answers_and_errors() -> None:
    limits = {"x-ratelimit-limit": "1", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "3"}
    ok = httpx.Response(200, json={"id": "j1", "status": "queued"}, headers=limits)
    refused = error_response(
        429, "over", headers={**limits, "retry-after": "3"}, code="dynamic_request_limited"
    )
    async with make_client(Recorder(ok, refused), get_retries=0) as client:
        job = await client.get_video("j1")
        with pytest.raises(TogetherRateLimited) as info:
            await client.get_video("j1")
    assert job.limits == RateLimitHeaders(limit=1.0, remaining=0.0, reset=3.0)
    assert "limits" not in job.model_dump()  # not part of the job
    assert info.value.limits == RateLimitHeaders(limit=1.0, remaining=0.0, reset=3.0)
    assert info.value.code == "dynamic_request_limited" and info.value.retry_after == 3.0


# --------------------------------------------------------------------------- POST is never retried


@pytest.mark.parametrize(
    ("answer", "error_class", "not_created"),
    [
        (httpx.Response(500), TogetherServerError, False),
        (httpx.Response(503), TogetherServerError, False),
        (error_response(429, "slow", headers={"Retry-After": "1"}), TogetherRateLimited, True),
        (error_response(400, "bad"), TogetherBadRequest, True),
        (error_response(401, "who"), TogetherAuthError, True),
        (error_response(422, "no"), TogetherBadRequest, True),
        (httpx.ConnectError("refused"), TogetherConnectionError, True),
        (httpx.ConnectTimeout("slow connect"), TogetherConnectionError, True),
        (httpx.PoolTimeout("pool"), TogetherConnectionError, True),
        (httpx.ReadTimeout("slow answer"), TogetherConnectionError, False),
        (httpx.WriteTimeout("slow upload"), TogetherConnectionError, False),
        (httpx.RemoteProtocolError("dropped"), TogetherConnectionError, False),
        (httpx.ReadError("reset"), TogetherConnectionError, False),
    ],
)
async def test_post_fails_at_once_with_one_request(
    answer: httpx.Response | Exception, error_class: type[TogetherError], not_created: bool
) -> None:
    recorder = Recorder(answer)
    sleeps = Sleeps()
    async with make_client(recorder, sleeps) as client:
        with pytest.raises(error_class) as info:
            await client.create_video(CreateVideoRequest(model="m", prompt="p"))
    assert len(recorder.requests) == 1
    assert sleeps.calls == []
    assert info.value.request_not_created is not_created


async def test_connection_error_keeps_its_kind() -> None:
    async with make_client(Recorder(httpx.ReadTimeout("late"))) as client:
        with pytest.raises(TogetherConnectionError) as info:
            await client.create_video(CreateVideoRequest(model="m"))
    assert info.value.kind == "read_timeout"
    assert info.value.status is None
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


# --------------------------------------------------------------------------- GET retries


async def test_get_retried_on_503_then_200() -> None:
    recorder = Recorder(httpx.Response(503), httpx.Response(200, json=FULL_JOB))
    sleeps = Sleeps()
    async with make_client(recorder, sleeps, backoff_base=0.5) as client:
        job = await client.get_video(FULL_JOB["id"])
    assert job.is_completed
    assert len(recorder.requests) == 2
    assert all(r.method == "GET" for r in recorder.requests)
    [delay] = sleeps.calls
    assert 0.25 <= delay <= 0.5


@pytest.mark.parametrize(
    "first",
    [
        httpx.Response(408),
        httpx.Response(500),
        httpx.Response(502),
        error_response(429, "slow"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("late"),
    ],
)
async def test_get_retries_transient_failures(first: httpx.Response | Exception) -> None:
    recorder = Recorder(first, httpx.Response(200, json={"id": "j", "status": "queued"}))
    async with make_client(recorder) as client:
        job = await client.get_video("j")
    assert job.status == "queued"
    assert len(recorder.requests) == 2


async def test_get_honours_retry_after_seconds() -> None:
    recorder = Recorder(
        error_response(429, "slow", headers={"Retry-After": "7"}),
        httpx.Response(503, headers={"Retry-After": "2.5"}),
        httpx.Response(200, json={"id": "j"}),
    )
    sleeps = Sleeps()
    async with make_client(recorder, sleeps) as client:
        await client.get_video("j")
    assert sleeps.calls == [7.0, 2.5]


async def test_get_honours_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=20)
    answer = httpx.Response(503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    recorder = Recorder(answer, httpx.Response(200, json={"id": "j"}))
    sleeps = Sleeps()
    async with make_client(recorder, sleeps) as client:
        await client.get_video("j")
    [delay] = sleeps.calls
    assert 17.0 <= delay <= 20.0


async def test_get_retry_after_capped_at_backoff_max() -> None:
    answer = error_response(429, "slow", headers={"Retry-After": "3600"})
    recorder = Recorder(answer, httpx.Response(200, json={"id": "j"}))
    sleeps = Sleeps()
    async with make_client(recorder, sleeps, backoff_max=12.0) as client:
        await client.get_video("j")
    assert sleeps.calls == [12.0]


async def test_get_gives_up_after_retries_and_raises_last_error() -> None:
    recorder = Recorder(
        *[error_response(503, f"attempt {n}") for n in range(1, 5)],
        error_response(502, "last straw"),
    )
    sleeps = Sleeps()
    async with make_client(
        recorder, sleeps, get_retries=4, backoff_base=1.0, backoff_max=5.0
    ) as client:
        with pytest.raises(TogetherServerError) as info:
            await client.get_video("j")
    assert info.value.status == 502
    assert info.value.message == "last straw"
    assert len(recorder.requests) == 5
    assert len(sleeps.calls) == 4
    # Exponential ceilings 1, 2, 4, then capped at 5; equal jitter keeps at least half.
    for delay, ceiling in zip(sleeps.calls, [1.0, 2.0, 4.0, 5.0], strict=True):
        assert ceiling / 2 <= delay <= ceiling


async def test_get_with_zero_retries_tries_once() -> None:
    recorder = Recorder(httpx.Response(503))
    async with make_client(recorder, get_retries=0) as client:
        with pytest.raises(TogetherServerError):
            await client.get_video("j")
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_get_client_errors_not_retried(status: int) -> None:
    recorder = Recorder(error_response(status, "no such job"))
    sleeps = Sleeps()
    async with make_client(recorder, sleeps) as client:
        with pytest.raises(TogetherError) as info:
            await client.get_video("missing")
    assert info.value.status == status
    assert len(recorder.requests) == 1
    assert sleeps.calls == []


async def test_get_url_encodes_id() -> None:
    recorder = Recorder(httpx.Response(200, json={"id": "a/b c?d"}))
    async with make_client(recorder) as client:
        job = await client.get_video("a/b c?d")
        with pytest.raises(ValueError):
            await client.get_video("..")
        with pytest.raises(ValueError):
            await client.get_video(" ")
    assert job.id == "a/b c?d"
    [sent] = recorder.requests
    assert sent.url.raw_path == b"/v2/videos/a%2Fb%20c%3Fd"


async def test_retry_logged_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(
        httpx.Response(503, headers={"Retry-After": "3"}), httpx.Response(200, json={"id": "j"})
    )
    caplog.set_level(logging.DEBUG)
    async with make_client(recorder) as client:
        await client.get_video("j")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "503" in text and "3.00s" in text and "1/4" in text


# --------------------------------------------------------------------------- the key stays secret


async def test_api_key_never_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"Invalid API key: {API_KEY}"
    scripts = [
        Recorder(error_response(401, echo)),
        Recorder(httpx.Response(500, text=echo)),
        Recorder(httpx.ConnectError(f"cannot reach host with {API_KEY}")),
        Recorder(httpx.Response(503, text=echo)),  # GET: retried, then raised
    ]
    errors: list[TogetherError] = []
    for recorder in scripts[:3]:
        async with make_client(recorder) as client:
            with pytest.raises(TogetherError) as info:
                await client.create_video(CreateVideoRequest(model="m"))
            errors.append(info.value)
    async with make_client(scripts[3], get_retries=2) as client:
        with pytest.raises(TogetherError) as info:
            await client.get_video("j")
        errors.append(info.value)
        assert API_KEY not in repr(client)

    for error in errors:
        assert API_KEY not in str(error)
        assert API_KEY not in repr(error)
        assert API_KEY not in error.message
        assert "***" in error.message
    assert caplog.records, "expected retry warnings"
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert "Bearer" not in record.getMessage()


def test_empty_api_key_refused() -> None:
    with pytest.raises(ValueError):
        TogetherClient("  ")


async def test_aclose_closes_http_client() -> None:
    recorder = Recorder(httpx.Response(200, json={"id": "j"}))
    client = make_client(recorder)
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.get_video("j")
