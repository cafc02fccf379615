"""JSON bodies the stand-in sends: job objects in each script shape, and error bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sandbox.together.models import MODELS, pixel_size
from sandbox.together.scripts import FETCH_ERROR_CODE, SandboxJob, Shape

TERMINAL = frozenset({"completed", "failed", "cancelled"})
SANDBOX_USER_ID = "sandbox-user"
# Go's zero time: the docs' example shows it for a claimed_at that never got set.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
}
_ERROR_MESSAGES = {
    401: "Invalid API key provided. You can find your API key at "
    "https://api.together.xyz/settings/api-keys.",
    404: "Not found.",
    429: "Rate limit exceeded. Please slow down and try again later.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "The service is temporarily unavailable. Please try again later.",
    504: "Gateway timeout.",
}
_INPUT_FIELDS = (
    "fps",
    "generate_audio",
    "guidance_scale",
    "height",
    "model",
    "output_quality",
    "prompt",
    "ratio",
    "resolution",
    "seconds",
    "seed",
    "steps",
    "width",
)


def error_body(
    status: int, message: str | None = None, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """Together's (OpenAI-style) error body."""
    return {
        "error": {
            "message": message or _ERROR_MESSAGES.get(status, f"HTTP {status}"),
            "type": _ERROR_TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }


def error_response(
    status: int,
    message: str | None = None,
    *,
    param: str | None = None,
    code: str | None = None,
    retry_after: int = 1,
) -> web.Response:
    """A JSON error; a 429 also carries the rate-limit headers clients back off on."""
    headers: dict[str, str] = {}
    if status == 429:
        headers = {
            "retry-after": str(retry_after),
            "x-ratelimit-limit": "60",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(retry_after),
        }
    body = error_body(status, message, param=param, code=code)
    return web.json_response(body, status=status, headers=headers)


def video_url(base_url: str, job_id: str) -> str:
    return f"{base_url}/shrt/{job_id}"


def job_object(job: SandboxJob, now: float, base_url: str, shape: Shape) -> dict[str, Any]:
    """The job as GET /v2/videos/{id} shows it at `now`, in the given shape."""
    status = job.status_at(now)
    stamp = _iso if shape == "iso_timestamps" else _unix
    ended = job.ended_after() if status in TERMINAL else None
    claimed = (
        status != "queued"
        and not job.script.fail_immediately
        and (ended is None or ended >= job.script.queue_seconds)
    )
    done_unix = job.unix_after(ended) if ended is not None else None
    claimed_unix = job.unix_after(job.script.queue_seconds) if claimed else None
    failure = _failure(job) if status in ("failed", "cancelled") else None
    info_errors = shape == "info_errors"
    return {
        "id": job.id,
        "object": "video",
        "model": job.model,
        "status": status,
        "created_at": stamp(job.created_unix),
        "claimed_at": _claimed_stamp(claimed_unix, shape),
        "completed_at": stamp(done_unix),
        "done_at": stamp(done_unix),
        "seconds": _seconds(job),
        "size": _size(job),
        "inputs": _inputs(job),
        "info": {
            "user_id": SANDBOX_USER_ID,
            "errors": [failure] if info_errors and failure else None,
        },
        "outputs": _outputs(job, base_url) if status == "completed" else None,
        "error": None if info_errors else failure,
    }


def _unix(value: float | None) -> int | None:
    return None if value is None else int(value)


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _claimed_stamp(claimed_unix: float | None, shape: Shape) -> int | str | None:
    if shape != "iso_timestamps":
        return _unix(claimed_unix)
    return _iso(claimed_unix) if claimed_unix is not None else GO_ZERO_TIME


def _failure(job: SandboxJob) -> dict[str, Any]:
    if job.fetch_error is not None and not job.script.fail_immediately:
        return {"message": job.fetch_error, "code": FETCH_ERROR_CODE}
    return {"message": job.script.error_message, "code": job.script.error_code}


def _outputs(job: SandboxJob, base_url: str) -> dict[str, Any]:
    outputs: dict[str, Any] = {"video_url": video_url(base_url, job.id)}
    if job.script.cost is not None:
        outputs["cost"] = job.script.cost
    return outputs


def _seconds(job: SandboxJob) -> str:
    seconds = job.body.get("seconds")
    return seconds if isinstance(seconds, str) else MODELS[job.model].seconds


def _size(job: SandboxJob) -> str:
    """WxH: as asked, else from resolution and ratio (a missing one at the model's default)."""
    body, default = job.body, MODELS[job.model].size
    width, height = body.get("width"), body.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return f"{width}x{height}"
    resolution, ratio = body.get("resolution"), body.get("ratio")
    if not isinstance(resolution, str) and not isinstance(ratio, str):
        return default
    default_width, default_height = (int(side) for side in default.split("x"))
    if not isinstance(resolution, str):
        resolution = f"{min(default_width, default_height)}P"
    if not isinstance(ratio, str):
        ratio = "16:9" if default_width >= default_height else "9:16"
    return pixel_size(resolution, ratio) or default


def _inputs(job: SandboxJob) -> dict[str, Any]:
    # Echo the request like the docs' example, without media (base64 images are huge).
    inputs = {name: job.body.get(name) for name in _INPUT_FIELDS}
    inputs["metadata"] = {}
    return inputs
