"""/video: check the options, store the job, answer within Discord's 3 seconds, hand it over."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.options import VideoOptions, VideoRequest, validate_options
from cogs.render import progress_embed
from storage.models import Job, JobState, NewJob

if TYPE_CHECKING:
    from bot.client import VideoBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


class VideoCog(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(name="video", description="Generate a video from a text prompt")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What the video should show",
        model="Which video model to use (start typing to search)",
        seconds="Clip length in seconds (each model has its own choices)",
        seed="Seed for reproducible results (0 to 4294967295)",
        negative_prompt="What the video should avoid",
        steps="Diffusion steps, 10 to 50 (more is slower and finer)",
        guidance="How closely to follow the prompt, 1 to 20 (6 to 10 works best)",
        fps="Frames per second, 1 to 60",
        format="File format of the video",
    )
    @app_commands.choices(
        format=[
            app_commands.Choice(name="MP4", value="MP4"),
            app_commands.Choice(name="WEBM", value="WEBM"),
        ]
    )
    async def video(
        self,
        interaction: discord.Interaction[VideoBot],
        prompt: str,
        model: str | None = None,
        seconds: int | None = None,
        seed: int | None = None,
        negative_prompt: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        fps: int | None = None,
        format: str | None = None,
    ) -> None:
        if not self.bot.engine.accepting:
            raise UserFacingError("The bot is restarting; please try again in a minute.")
        options = VideoOptions(
            prompt=prompt,
            model=model,
            seconds=seconds,
            seed=seed,
            negative_prompt=negative_prompt,
            steps=steps,
            guidance=guidance,
            fps=fps,
            format=format,
        )
        request = validate_options(options, self.bot.catalog, self.bot.settings.default_model)
        job = await self.bot.jobs.create(self._new_job(interaction, request))
        log.info(
            "Job %d accepted: %s %s %ds for member %d in server %d",
            job.id,
            job.model,
            job.size,
            job.seconds,
            job.user_id,
            job.guild_id,
        )
        await self._answer(interaction, job)

    def _new_job(self, interaction: discord.Interaction[VideoBot], request: VideoRequest) -> NewJob:
        now = time.time()
        assert interaction.guild_id is not None and interaction.channel_id is not None
        return NewJob(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            application_id=interaction.application_id,
            interaction_id=interaction.id,
            interaction_token=interaction.token,
            upload_limit=interaction.filesize_limit or DEFAULT_UPLOAD_LIMIT,
            model=request.model.id,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            width=request.width,
            height=request.height,
            seconds=request.seconds,
            fps=request.fps,
            steps=request.steps,
            seed=request.seed,
            guidance_scale=request.guidance,
            output_format=request.output_format,
            estimated_cost_usd=request.model.price_usd,
            created_at=now,
            deadline_at=now + request.model.timeout_minutes * 60,
        )

    async def _answer(self, interaction: discord.Interaction[VideoBot], job: Job) -> None:
        """The public first response becomes the progress message; then the engine takes over."""
        embed = progress_embed(job, time.time(), self.bot.model_name(job.model))
        try:
            callback = await interaction.response.send_message(
                embed=embed, allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException:
            # Nobody saw the job: cancel it so it is neither generated nor counted.
            await self.bot.jobs.transition(
                job.id,
                JobState.QUEUED,
                JobState.CANCELLED,
                time.time(),
                failure_reason="Discord did not accept the bot's answer in time.",
            )
            raise
        updated = await self.bot.jobs.update(
            job.id, JobState.QUEUED, time.time(), message_id=callback.message_id
        )
        self.bot.engine.enqueue(updated or job)

    @video.autocomplete("model")
    async def _model_autocomplete(
        self, interaction: discord.Interaction[VideoBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=f"{spec.name} ({spec.id})"[:100], value=spec.id)
            for spec in self.bot.catalog.search(current, limit=25)
        ]


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(VideoCog(bot))
