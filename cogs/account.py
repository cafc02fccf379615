"""/videos: a member's recent jobs and what they have left, privately (like Midjourney's /info)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.quota import remaining_today
from cogs.text import job_line, money

if TYPE_CHECKING:
    from bot.client import VideoBot

RECENT = 10


class AccountCog(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(name="videos", description="Your recent videos and what you have left")
    @app_commands.guild_only()
    async def videos(self, interaction: discord.Interaction[VideoBot]) -> None:
        assert interaction.guild_id is not None
        guild_id, user_id = interaction.guild_id, interaction.user.id
        role_ids = [role.id for role in getattr(interaction.user, "roles", [])]
        limits = await self.bot.gatekeeper.limits_for(guild_id, role_ids)
        usage = await self.bot.usage.member_usage(guild_id, user_id, time.time())
        jobs = await self.bot.jobs.recent_for_member(guild_id, user_id, limit=RECENT)
        left = remaining_today(limits, usage)
        lines = [
            "**Your videos on this server**",
            f"Left today: {left} of {limits.user_daily} "
            f"(made {usage.user_day} in the last 24 hours)",
            f"Unfinished: {usage.user_active} of {limits.user_concurrent} at once",
        ]
        if jobs:
            lines.append("Recent:")
            for job in jobs:
                line = job_line(job, self.bot.model_name(job.model))
                cost = job.cost_usd if job.cost_usd is not None else None
                lines.append(f"{line}{f' · {money(cost)}' if cost is not None else ''}")
        else:
            lines.append("You have not made any videos here yet. Try /video!")
        await interaction.response.send_message(
            "\n".join(lines)[:2000], ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(AccountCog(bot))
