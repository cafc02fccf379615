"""What the metrics learn from the bot's HTTP traffic with Discord, without touching discord.py.

discord.py handles 429s and 5xx inside discord.http (and its webhook adapter, which carries
interaction responses): it waits, retries and only logs, so the bot never sees most of them.
Both share one aiohttp session, and discord.py takes an ``aiohttp.TraceConfig`` for it
(``Client(http_trace=...)``): its end-of-request signal sees every answer's status, retries
included, and every interaction callback (the one first response an interaction gets), whose
URL carries the interaction's id, a snowflake that says when the interaction was created.
"""

from __future__ import annotations

import re
import time
from types import SimpleNamespace
from typing import Protocol

import aiohttp

DISCORD_EPOCH_MS = 1_420_070_400_000
# POST /interactions/{id}/{token}/callback: the interaction's first response.
CALLBACK_PATH = re.compile(r"/interactions/(\d+)/[^/]+/callback$")


class DiscordRecorder(Protocol):
    def discord_answered(self, status: int) -> None: ...

    def first_response(self, seconds: float) -> None: ...


def created_at(snowflake: int) -> float:
    """When the snowflake was made (Unix time, seconds)."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


def discord_trace(recorder: DiscordRecorder) -> aiohttp.TraceConfig:
    """A TraceConfig for discord.py's session that reports to ``recorder``."""

    async def on_request_end(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        status = params.response.status
        recorder.discord_answered(status)
        if params.method != "POST" or not 200 <= status < 300:
            return
        callback = CALLBACK_PATH.search(params.url.path)
        if callback is not None:
            # The two clocks are Discord's and ours: a skew could make it negative.
            recorder.first_response(max(0.0, time.time() - created_at(int(callback[1]))))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    return trace
