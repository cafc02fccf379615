"""/video: check the options, store the job, answer within Discord's 3 seconds, hand it over."""

from __future__ import annotations

import io
import logging
import random
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.keyframes import prepare_keyframe_async
from bot.options import VideoOptions, VideoRequest, validate_options
from cogs.buttons import view_for
from cogs.render import progress_embed
from storage.models import Job, JobState, NewJob

if TYPE_CHECKING:
    from bot.client import VideoBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
THUMBNAIL_NAME = "first_frame.jpg"
IMAGES_GONE = (
    "The images this video was made from are no longer kept, so Retry cannot make it again. "
    "Use /video with the images instead."
)


def _attached(
    first_frame: discord.Attachment | None,
    last_frame: discord.Attachment | None,
    reference: discord.Attachment | None,
) -> dict[str, discord.Attachment]:
    given = {"first_frame": first_frame, "last_frame": last_frame, "reference": reference}
    return {name: file for name, file in given.items() if file is not None}


class VideoCog(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(name="video", description="Generate a video from a text prompt")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What the video should show",
        model="Which video model to use (start typing to search)",
        size="Width x height, e.g. 1366x768 (each model has its own sizes)",
        first_frame="An image the video starts from",
        last_frame="An image the video ends on (some models only)",
        reference="An image that guides the look of the video (some models only)",
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
        size: str | None = None,
        first_frame: discord.Attachment | None = None,
        last_frame: discord.Attachment | None = None,
        reference: discord.Attachment | None = None,
        seconds: int | None = None,
        seed: int | None = None,
        negative_prompt: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        fps: int | None = None,
        format: str | None = None,
    ) -> None:
        attached = _attached(first_frame, last_frame, reference)
        async with self.bot.command_slot():
            await self._video(
                interaction,
                VideoOptions(
                    prompt=prompt,
                    model=model,
                    size=size,
                    images={name: file.size for name, file in attached.items()},
                    seconds=seconds,
                    seed=seed,
                    negative_prompt=negative_prompt,
                    steps=steps,
                    guidance=guidance,
                    fps=fps,
                    format=format,
                ),
                attached,
            )

    async def _video(
        self,
        interaction: discord.Interaction[VideoBot],
        options: VideoOptions,
        images: dict[str, discord.Attachment],
    ) -> None:
        assert interaction.guild_id is not None and interaction.channel_id is not None
        gate = self.bot.gatekeeper
        await gate.admit(interaction.guild_id, interaction.channel_id, interaction.user.id)
        request = validate_options(options, self.bot.catalog, self.bot.settings.default_model)
        await gate.check_model(interaction.guild_id, request.model)
        role_ids = [role.id for role in getattr(interaction.user, "roles", [])]
        limits = await gate.limits_for(interaction.guild_id, role_ids)
        media: dict[str, bytes] = {}
        if images:
            # Refuse before the slow part; without images the reservation alone decides.
            await gate.precheck(
                interaction.guild_id,
                interaction.user.id,
                limits,
                cost=request.model.price_usd,
                seconds=request.seconds,
            )
            # Downloading and resizing can take longer than Discord's 3 seconds: answer first.
            await interaction.response.defer(thinking=True)
            try:
                media = await self._prepare_images(images, request)
            except UserFacingError as exc:
                await self._refuse_after_defer(interaction, exc.message)
                return
        thumbnail = THUMBNAIL_NAME if "first_frame" in media else None
        new_job = self._new_job(interaction, request, thumbnail)
        try:
            job = await gate.reserve(new_job, limits, media)
        except UserFacingError as exc:
            if not images:
                raise
            await self._refuse_after_defer(interaction, exc.message)
            return
        log.info(
            "Job %d accepted: %s %s %ds for member %d in server %d",
            job.id,
            job.model,
            job.size,
            job.seconds,
            job.user_id,
            job.guild_id,
        )
        await self._answer(interaction, job, media.get("first_frame"))

    async def _prepare_images(
        self, images: dict[str, discord.Attachment], request: VideoRequest
    ) -> dict[str, bytes]:
        prepared = {}
        for option, attachment in images.items():
            try:
                data = await attachment.read()
            except discord.HTTPException:
                raise UserFacingError(
                    f"`{option}` could not be downloaded from Discord; please try again."
                ) from None
            prepared[option] = await prepare_keyframe_async(
                option, data, request.width, request.height
            )
        return prepared

    async def _refuse_after_defer(
        self, interaction: discord.Interaction[VideoBot], text: str
    ) -> None:
        """The deferred answer was public: remove it and tell the member privately."""
        await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    def _new_job(
        self,
        interaction: discord.Interaction[VideoBot],
        request: VideoRequest,
        thumbnail: str | None,
    ) -> NewJob:
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
            thumbnail=thumbnail,
            created_at=now,
            deadline_at=now + request.model.timeout_minutes * 60,
        )

    async def _answer(
        self, interaction: discord.Interaction[VideoBot], job: Job, keyframe: bytes | None
    ) -> None:
        """The public first response becomes the progress message; then the engine takes over."""
        embed = progress_embed(job, time.time(), self.bot.model_name(job.model))
        files = [discord.File(io.BytesIO(keyframe), THUMBNAIL_NAME)] if keyframe else []
        view = view_for(job)
        try:
            if interaction.response.is_done():  # deferred while the images were prepared
                message = await interaction.edit_original_response(
                    embed=embed, attachments=files, view=view, allowed_mentions=NO_MENTIONS
                )
                message_id: int | None = message.id
            elif files:
                callback = await interaction.response.send_message(
                    embed=embed, files=files, view=view, allowed_mentions=NO_MENTIONS
                )
                message_id = callback.message_id
            else:
                callback = await interaction.response.send_message(
                    embed=embed, view=view, allowed_mentions=NO_MENTIONS
                )
                message_id = callback.message_id
        except Exception:
            # Nobody saw the job (Discord refused, timed out or could not be reached): cancel
            # it, or the next start would submit it, and bill it, with no message to show it.
            await self.bot.jobs.transition(
                job.id,
                JobState.QUEUED,
                JobState.CANCELLED,
                time.time(),
                failure_reason="Discord did not accept the bot's answer in time.",
                interaction_token="",
            )
            raise
        updated = await self.bot.jobs.update(
            job.id, JobState.QUEUED, time.time(), message_id=message_id
        )
        self.bot.engine.enqueue(updated or job)

    async def retry(self, interaction: discord.Interaction[VideoBot], job: Job) -> None:
        """The Retry button: the same options with a new seed, counted like a new /video."""
        async with self.bot.command_slot():
            await self._retry(interaction, job)

    async def _retry(self, interaction: discord.Interaction[VideoBot], job: Job) -> None:
        assert interaction.guild_id is not None and interaction.channel_id is not None
        gate = self.bot.gatekeeper
        await gate.admit(interaction.guild_id, interaction.channel_id, interaction.user.id)
        if job.media_pruned_at is not None:
            # Retrying without them would make a different video, and bill for it.
            raise UserFacingError(IMAGES_GONE)
        spec = self.bot.catalog.get(job.model)
        if spec is None:
            raise UserFacingError(f"The model {job.model} is no longer available.")
        await gate.check_model(interaction.guild_id, spec)
        role_ids = [role.id for role in getattr(interaction.user, "roles", [])]
        limits = await gate.limits_for(interaction.guild_id, role_ids)
        media = await self.bot.jobs.media(job.id)
        request = VideoRequest(
            model=spec,
            prompt=job.prompt,
            width=job.width,
            height=job.height,
            seconds=job.seconds,
            seed=random.randrange(2**32),
            negative_prompt=job.negative_prompt,
            steps=job.steps,
            guidance=job.guidance_scale,
            fps=job.fps,
            output_format=job.output_format,
        )
        thumbnail = job.thumbnail if "first_frame" in media else None
        again = self._new_job(interaction, request, thumbnail)
        new_job = await gate.reserve(again, limits, media)
        log.info("Job %d accepted: a retry of job %d", new_job.id, job.id)
        await self._answer(interaction, new_job, media.get("first_frame"))

    @video.autocomplete("model")
    async def _model_autocomplete(
        self, interaction: discord.Interaction[VideoBot], current: str
    ) -> list[app_commands.Choice[str]]:
        """Display names of the models this server allows that match what was typed."""
        if interaction.guild_id is None:
            return []
        allowed = {m.id for m in await self.bot.gatekeeper.allowed_models(interaction.guild_id)}
        matches = [m for m in self.bot.catalog.search(current, limit=100) if m.id in allowed]
        return [
            app_commands.Choice(name=f"{spec.name} ({spec.id})"[:100], value=spec.id)
            for spec in matches[:25]
        ]

    @video.autocomplete("size")
    async def _size_autocomplete(
        self, interaction: discord.Interaction[VideoBot], current: str
    ) -> list[app_commands.Choice[str]]:
        chosen = getattr(interaction.namespace, "model", None)
        spec = self.bot.catalog.get(chosen or self.bot.settings.default_model)
        if spec is None:
            return []
        typed = current.strip().lower()
        return [
            app_commands.Choice(name=f"{size} ({spec.name})"[:100], value=size)
            for size in spec.sizes
            if typed in size
        ][:25]


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(VideoCog(bot))
