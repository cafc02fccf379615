"""HTTP answers shaped like Discord's.

discord.py parses a body as JSON only when ``Content-Type`` is exactly ``application/json``
(aiohttp's ``json_response`` appends ``; charset=utf-8``), so every JSON answer is built here.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from aiohttp import web

from .errors import DiscordError

_STATUS_MESSAGES = {
    400: "400: Bad Request",
    401: "401: Unauthorized",
    403: "403: Forbidden",
    404: "404: Not Found",
    405: "405: Method Not Allowed",
    429: "You are being rate limited.",
    500: "500: Internal Server Error",
    502: "502: Bad Gateway",
    503: "503: Service Unavailable",
    504: "504: Gateway Timeout",
}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    response = web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status, headers=headers
    )
    # Set after construction: aiohttp would otherwise add a charset parameter.
    response.headers["Content-Type"] = "application/json"
    return response


def no_content() -> web.Response:
    return web.Response(status=204)


def error_response(error: DiscordError) -> web.Response:
    return json_response(error.body(), error.status)


def server_error_response(status: int) -> web.Response:
    """A 5xx as Discord's edge sends it: JSON body and a ``Via`` header (discord.py retries)."""
    return json_response(status_error(status).body(), status, {"Via": "1.1 google"})


def status_error(status: int, code: int | None = None) -> DiscordError:
    """A generic Discord error for an injected status."""
    return DiscordError(status, code or 0, _STATUS_MESSAGES.get(status, f"{status}: Error"))


def rate_limited_response(
    retry_after: float, bucket: str, *, code: int = 0, is_global: bool = False
) -> web.Response:
    """A 429 discord.py waits out: JSON body with ``retry_after`` and a ``Via`` header.

    Without ``Via`` discord.py assumes a Cloudflare ban and raises instead of retrying.
    """
    body = {
        "message": _STATUS_MESSAGES[429],
        "retry_after": retry_after,
        "global": is_global,
        "code": code,
    }
    headers = {
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": bucket,
        "X-RateLimit-Scope": "global" if is_global else "user",
        "Via": "1.1 google",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    return json_response(body, 429, headers)
