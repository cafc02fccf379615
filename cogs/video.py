"""/video: read the options and images, and answer within Discord's 3 seconds.

The checks, the reservation and the hand-over to the engine are bot.intake's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.errors import UserFacingError
from bot.domain.options import VideoOptions, VideoRequest
from bot.media.keyframes import prepare_keyframe_async
from cogs.answer import NO_MENTIONS, answer, requester
from cogs.buttons import view_for

if TYPE_CHECKING:
    from bot.client import VideoBot


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
        intake = self.bot.intake
        admission = await intake.check(requester(interaction), options)
        media: dict[str, bytes] = {}
        if images:
            # Refuse before the slow part; without images the reservation alone decides.
            await intake.precheck(admission)
            # Downloading and resizing can take longer than Discord's 3 seconds: answer first.
            await interaction.response.defer(thinking=True)
            try:
                media = await self._prepare_images(images, admission.request)
            except UserFacingError as exc:
                await self._refuse_after_defer(interaction, exc.message)
                return
        try:
            job = await intake.reserve(admission, media)
        except UserFacingError as exc:
            if not images:
                raise
            await self._refuse_after_defer(interaction, exc.message)
            return
        await answer(interaction, intake, job, media.get("first_frame"), view_for(job))

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
                option, data, request.params.width, request.params.height
            )
        return prepared

    async def _refuse_after_defer(
        self, interaction: discord.Interaction[VideoBot], text: str
    ) -> None:
        """The deferred answer was public: remove it and tell the member privately."""
        await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

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
