"""The least a discord.py bot can do for /video: answer at once, store nothing, call nothing.

`python -m bench.floor` runs it next to the real bot to show what discord.py alone costs on this
machine: the floor under any first-response figure. Reads DISCORD_TOKEN, DISCORD_API_BASE and
DISCORD_GATEWAY_URL from the environment, like the bot.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import discord
from discord import app_commands

from bot.client import point_discord_at

log = logging.getLogger("bench.floor_bot")


class FloorBot(discord.AutoShardedClient):
    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.none())
        self.tree: app_commands.CommandTree[Any] = app_commands.CommandTree(self)

        @self.tree.command(name="video", description="Answer at once")
        async def video(interaction: discord.Interaction[Any], prompt: str, model: str) -> None:
            await interaction.response.send_message("ok")

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def on_ready(self) -> None:
        log.info("Logged in as %s", self.user)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    point_discord_at(os.environ["DISCORD_API_BASE"], os.environ["DISCORD_GATEWAY_URL"])
    FloorBot().run(os.environ["DISCORD_TOKEN"], log_handler=None)


if __name__ == "__main__":
    main()
