"""Small helpers shared by the route handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .errors import DiscordError, invalid_form, not_found, unauthorized
from .multipart import RequestBody

BODY_KEY = web.RequestKey("sandbox_body", RequestBody)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def body_of(request: web.Request) -> RequestBody:
    """The parsed body (the middleware reads it once, before faults and handlers)."""
    return request.get(BODY_KEY) or RequestBody()


def payload_of(request: web.Request) -> dict[str, Any]:
    payload = body_of(request).json
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise invalid_form("_", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    return payload


def list_payload_of(request: web.Request) -> list[dict[str, Any]]:
    payload = body_of(request).json
    if not isinstance(payload, list):
        raise invalid_form("_", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    return payload


def snowflake_param(request: web.Request, name: str, error: DiscordError | None = None) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise error or not_found()
    return int(raw)


def requires_bot_token(token: str, handler: Handler) -> Handler:
    """Bot-token routes answer 401 (code 0) unless ``Authorization: Bot <token>``."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bot {token}":
            raise unauthorized()
        return await handler(request)

    return guarded
