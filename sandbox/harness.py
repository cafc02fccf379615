"""Run the real bot against both stand-ins, in this process: for e2e tests, bench/ and the demo.

The bot is assembled exactly as `python -m bot` does (bot.app.assemble), with settings that
point it at the stand-ins over loopback; nothing in the bot knows it is in a sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import yarl

from bot.app import assemble
from bot.client import VideoBot
from bot.settings import Settings
from sandbox.discord_api import DiscordSandbox, Member
from sandbox.together import TogetherSandbox

TOGETHER_KEY = "sandbox-together-key"
READY_TIMEOUT = 20.0


@dataclass
class Stack:
    """The running stand-ins, the bot, and a member to act as."""

    discord: DiscordSandbox
    together: TogetherSandbox
    bot: VideoBot
    settings: Settings
    member: Member
    _task: asyncio.Task[None] = field(repr=False)

    async def video(self, member: Member | None = None, **options: Any) -> Any:
        """Send /video as a member would; returns the sandbox's interaction record."""
        return await self.discord.slash_command("video", options, member=member or self.member)


def sandbox_settings(
    discord_sb: DiscordSandbox, together_sb: TogetherSandbox, workdir: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "discord_token": discord_sb.bot_token,
        "together_api_key": TOGETHER_KEY,
        "database_path": workdir / "bot.sqlite3",
        "together_base_url": together_sb.base_url,
        "discord_api_base": discord_sb.api_base,
        "discord_gateway_url": discord_sb.gateway_url,
        "progress_edit_interval": 1.0,
        "poll_interval": 0.2,
        # Sandbox jobs take seconds, not the catalog's minutes: poll at a fixed pace.
        "poll_strategy": "fixed",
        "together_requests_per_second": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def run_bot(
    discord_sb: DiscordSandbox,
    together_sb: TogetherSandbox,
    workdir: Path,
    **overrides: Any,
) -> AsyncIterator[tuple[VideoBot, asyncio.Task[None]]]:
    """Start the bot against running stand-ins; wait until it is connected and synced."""
    settings = sandbox_settings(discord_sb, together_sb, workdir, **overrides)
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        async with assemble(settings) as bot:
            task = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()))
            try:
                await _wait_ready(bot, task, discord_sb)
                yield bot, task
            finally:
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        discord.http.Route.BASE = saved[0]
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(saved[1])


async def _wait_ready(bot: VideoBot, task: asyncio.Task[None], discord_sb: DiscordSandbox) -> None:
    ready = asyncio.create_task(bot.wait_until_ready())
    done, _ = await asyncio.wait(
        {ready, task}, timeout=READY_TIMEOUT, return_when="FIRST_COMPLETED"
    )
    if task in done:
        ready.cancel()
        task.result()  # raises the bot's start-up error
        raise RuntimeError("the bot stopped before it was ready")
    if ready not in done:
        ready.cancel()
        raise TimeoutError(f"the bot was not ready within {READY_TIMEOUT:.0f} s")
    await discord_sb.wait_for(lambda: bool(discord_sb.commands), timeout=READY_TIMEOUT)


@contextlib.asynccontextmanager
async def running_stack(
    workdir: Path,
    *,
    discord_options: dict[str, Any] | None = None,
    together_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """Both stand-ins and the bot, started; everything is stopped on exit."""
    async with (
        DiscordSandbox(**(discord_options or {})) as discord_sb,
        TogetherSandbox(api_key=TOGETHER_KEY, **(together_options or {})) as together_sb,
        run_bot(discord_sb, together_sb, workdir, **overrides) as (bot, task),
    ):
        member = discord_sb.add_member(discord_sb.guild, "member")
        yield Stack(
            discord=discord_sb,
            together=together_sb,
            bot=bot,
            settings=bot.settings,
            member=member,
            _task=task,
        )
