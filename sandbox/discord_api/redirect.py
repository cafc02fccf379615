"""Pointing an unmodified discord.py at the sandbox, and back.

``Route.BASE`` covers REST, callbacks and webhooks. ``DEFAULT_GATEWAY`` matters only after a
non-resumable reconnect: discord.py then drops ``resume_gateway_url`` and dials the default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from .server import DiscordSandbox


@contextmanager
def point_discord_at(sandbox: DiscordSandbox) -> Iterator[None]:
    """Within the block, discord.py talks to ``sandbox`` (start it first)."""
    if not sandbox.api_base:
        raise RuntimeError("start the sandbox before pointing discord.py at it")
    saved_base, saved_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = sandbox.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sandbox.gateway_url)
    try:
        yield
    finally:
        Route.BASE = saved_base
        DiscordWebSocket.DEFAULT_GATEWAY = saved_gateway
