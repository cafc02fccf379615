"""The request pipeline: parse the body, record, refuse during outages, inject faults,
rate-limit, render errors.

Every API and CDN request is recorded as a ``RecordedRequest`` with interaction tokens
replaced by ``{token}``; the bot token is never stored (headers are not kept).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .errors import DiscordError, not_found
from .faults import FaultPlan, Outage, RandomFaults
from .models import RecordedFile, RecordedRequest
from .multipart import RequestBody, read_body
from .ratelimits import RateLimiter
from .request_utils import BODY_KEY, Handler
from .responses import (
    error_response,
    rate_limited_response,
    server_error_response,
    status_error,
)
from .state import SandboxState

_log = logging.getLogger("sandbox.discord_api")

API_PREFIX = "/api/v10"
CDN_PREFIX = "/attachments/"


class Pipeline:
    def __init__(
        self,
        state: SandboxState,
        faults: FaultPlan,
        limiter: RateLimiter,
        record: Callable[[RecordedRequest], None],
        random_faults: RandomFaults | None = None,
        outage: Outage | None = None,
    ) -> None:
        self.state = state
        self.faults = faults
        self.limiter = limiter
        self.record = record
        self.random_faults = random_faults or RandomFaults()
        self.outage = outage or Outage()

    def middleware(self) -> Any:
        @web.middleware
        async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not request.path.startswith((API_PREFIX + "/", CDN_PREFIX)):
                return await handler(request)  # the gateway websocket
            return await self._handle(request, handler)

        return pipeline

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived = time.monotonic()
        template = _template(request)
        if request.path.startswith(API_PREFIX) and self.outage.active:
            body, response = await self._refused(request)
        else:
            body, response = await self._served(request, handler, template)
        self.record(self._recorded(request, template, body, response, arrived))
        return response

    async def _served(
        self, request: web.Request, handler: Handler, template: str | None
    ) -> tuple[RequestBody, web.StreamResponse]:
        body = RequestBody()
        try:
            body = await read_body(request)
            request[BODY_KEY] = body
            response = await self._answer(request, handler, template)
        except DiscordError as error:
            response = error_response(error)
        return body, response

    async def _refused(self, request: web.Request) -> tuple[RequestBody, web.StreamResponse]:
        """An outage's answer, before routing, rate limits and handlers: nothing happens.
        The body is still read, so the record shows what the bot tried to send."""
        body = RequestBody()
        with contextlib.suppress(DiscordError):
            body = await read_body(request)
        status = await self.outage.refusal_status()
        return body, server_error_response(status)

    async def _answer(
        self, request: web.Request, handler: Handler, template: str | None
    ) -> web.StreamResponse:
        path = _strip_prefix(request.path)
        if template is None:
            _log.warning("discord sandbox: no route for %s %s", request.method, self._redact(path))
            allowed = request.match_info.http_exception
            if isinstance(allowed, web.HTTPMethodNotAllowed):
                raise status_error(405)
            raise not_found()
        fault = self.faults.take(request.method, [template, path])
        is_api = request.path.startswith(API_PREFIX)
        verdict = self.limiter.take(request.method, template, self._major(request))
        if fault is not None:
            if fault.status == 429:
                return rate_limited_response(
                    fault.retry_after, verdict.bucket, code=fault.code or 0
                )
            raise status_error(fault.status, fault.code)
        if is_api and not verdict.allowed:
            return rate_limited_response(verdict.retry_after, verdict.bucket)
        random_status = self.random_faults.roll(request.method, template)
        if random_status is not None:
            # Before the handler: the request has no effect, as when Discord's edge fails.
            return server_error_response(random_status)
        response = await handler(request)
        if is_api:
            response.headers.update(verdict.headers)
        return response

    @staticmethod
    def _major(request: web.Request) -> str:
        """Discord's major parameters: a bucket is per channel, guild or webhook."""
        keys = ("channel", "guild", "app", "interaction", "token")
        return "+".join(request.match_info.get(key, "") for key in keys)

    def _redact(self, path: str) -> str:
        for interaction in self.state.interactions.values():
            if interaction.token in path:
                path = path.replace(interaction.token, "{token}")
        return path

    def _recorded(
        self,
        request: web.Request,
        template: str | None,
        body: RequestBody,
        response: web.StreamResponse,
        arrived: float,
    ) -> RecordedRequest:
        path = _strip_prefix(request.path)
        files = [
            RecordedFile(u.part_name, u.filename, u.size, u.content_type) for u in body.uploads
        ]
        return RecordedRequest(
            method=request.method,
            path=self._redact(path),
            route=f"{request.method} {template or path}",
            json=body.json,
            files=files,
            status=response.status,
            time=arrived,
            query={k: self._redact(v) for k, v in request.query.items()},
            interaction_id=self._interaction_id(request),
            error_code=_error_code(response),
        )

    def _interaction_id(self, request: web.Request) -> int | None:
        raw_id = request.match_info.get("interaction", "")
        if raw_id.isdigit():
            return int(raw_id)
        token = request.match_info.get("token")
        interaction = self.state.interaction_by_token(token) if token else None
        return None if interaction is None else interaction.id


def _template(request: web.Request) -> str | None:
    """The matched route with placeholders, without the API prefix: "/channels/{channel}"."""
    route = request.match_info.route
    resource = route.resource
    if request.match_info.http_exception is not None or resource is None:
        return None
    return _strip_prefix(resource.canonical)


def _strip_prefix(path: str) -> str:
    return path.removeprefix(API_PREFIX)


def _error_code(response: web.StreamResponse) -> int | None:
    if response.status < 400 or not isinstance(response, web.Response):
        return None
    if response.content_type != "application/json" or not isinstance(response.body, bytes):
        return None
    try:
        code = json.loads(response.body).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None
