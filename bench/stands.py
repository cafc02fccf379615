"""The stand-ins as the bench sets them up: planned job lengths, Discord's rate limits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bench.compression import TimeScale
from bench.scenarios import NEW_ACCOUNT_BASE, QUEUE_SECONDS, PlannedJob, job_index
from sandbox.discord_api import DiscordSandbox
from sandbox.together import JobScript, TogetherSandbox
from sandbox.together.app import VIDEOS_PATH, Handler
from sandbox.together.limits import DynamicLimit

# (method, templated route, requests, window in virtual seconds). Discord publishes no numbers;
# these follow shared/discord-facts.md: 50 requests/s overall, about 5 edits per 5 s.
DISCORD_LIMITS: tuple[tuple[str, str, int, float], ...] = (
    ("*", "*", 50, 1.0),
    ("POST", "/channels/*/messages", 5, 5.0),
    ("PATCH", "/channels/*/messages/*", 5, 5.0),
    ("PATCH", "/webhooks/*/*/messages/*", 5, 5.0),
    ("POST", "/webhooks/*/*", 5, 5.0),
)


def limit_discord(discord_sb: DiscordSandbox, scale: TimeScale) -> None:
    """Discord's limits in virtual time: the same counts in windows `scale` times shorter."""
    # set_limit puts each rule first, so the catch-all goes in before the specific ones.
    for method, route, limit, window in DISCORD_LIMITS:
        discord_sb.rate_limits.set_limit(method, route, limit, scale.real(window))


def new_account_limit(scale: TimeScale) -> DynamicLimit:
    """Together's dynamic limit for a new account, in virtual time: 60 requests a minute,
    later twice the past hour's successful rate."""
    return DynamicLimit(base=NEW_ACCOUNT_BASE, window=scale.real(60.0), history=scale.real(3600.0))


def job_script(job: PlannedJob, scale: TimeScale) -> JobScript:
    return JobScript(
        queue_seconds=scale.real(QUEUE_SECONDS),
        run_seconds=scale.real(job.length - QUEUE_SECONDS),
        # Fractional timestamps: whole seconds would be `scale` virtual seconds coarse.
        shape="iso_timestamps",
    )


class PlannedTogether(TogetherSandbox):
    """Together's stand-in where each job runs for the length planned for it.

    The job is found by the tag in its prompt, so the length follows the job whatever order
    the bot submits in. Only public hooks are used: an extra middleware queues the job's
    script (`script_next`) just before the stand-in takes it.
    """

    def __init__(self, scripts: Mapping[int, JobScript], **options: Any) -> None:
        super().__init__(**options)
        self._planned = dict(scripts)

    def build_app(self) -> web.Application:
        app = super().build_app()
        app.middlewares.append(self._assign_script)
        return app

    @web.middleware
    async def _assign_script(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and request.path == VIDEOS_PATH:
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
            index = job_index(body.get("prompt") if isinstance(body, dict) else None)
            # No await between here and the handler taking the script: no other POST can
            # take it first. (The bot's requests are valid, so none is refused and left over.)
            if index in self._planned:
                self.script_next(self._planned[index])
        return await handler(request)
