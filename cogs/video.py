"""/video: read the options and images, and answer within Discord's 3 seconds.

The checks, the reservation and the hand-over to the engine are bot.intake's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.catalog import ModelSpec
from bot.domain.options import VideoOptions
from cogs.models import model_label
from cogs.start import start_job
from cogs.text import locale_of

if TYPE_CHECKING:
    from bot.client import VideoBot


class VideoCog(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(name="video", description="Generate a video from a text prompt")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What the video should show (for an edit model: what to change)",
        model="Which video model to use (start typing to search; /videomodels lists them)",
        size="Width x height, e.g. 1366x768 (each model has its own sizes)",
        resolution="720P or 1080P, for models that take it instead of size (Wan 2.7)",
        ratio="Aspect ratio such as 16:9 or 9:16, for models that take it (Wan 2.7)",
        seconds="Clip length in seconds (each model has its own choices)",
        audio="Generate sound with the video (models with sound only)",
        first_frame="An image the video starts from",
        last_frame="An image the video ends on (some models only)",
        reference="An image that guides the look of the video (some models only)",
        video="A clip to continue, follow or edit, as the model does (MP4, WebM or MOV)",
        soundtrack="Audio for the video: WAV or MP3, 3 to 30 seconds, 15 MB at most",
        seed="Seed for reproducible results (0 to 4294967295)",
        negative_prompt="What the video should avoid",
        steps="Diffusion steps, 10 to 50 (more is slower and finer)",
        guidance="How closely to follow the prompt, 1 to 20 (6 to 10 works best)",
        fps="Frames per second, 1 to 60",
        format="File format of the video",
        quality="Output quality, 1 to 50: lower is better (Together's default is 20)",
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
        resolution: str | None = None,
        ratio: str | None = None,
        seconds: int | None = None,
        audio: bool | None = None,
        first_frame: discord.Attachment | None = None,
        last_frame: discord.Attachment | None = None,
        reference: discord.Attachment | None = None,
        video: discord.Attachment | None = None,
        soundtrack: discord.Attachment | None = None,
        seed: int | None = None,
        negative_prompt: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        fps: int | None = None,
        format: str | None = None,
        quality: int | None = None,
    ) -> None:
        given = {
            "first_frame": first_frame,
            "last_frame": last_frame,
            "reference": reference,
            "video": video,
            "soundtrack": soundtrack,
        }
        attached = {name: file for name, file in given.items() if file is not None}
        async with self.bot.command_slot():
            await start_job(
                interaction,
                VideoOptions(
                    prompt=prompt,
                    model=model,
                    size=size,
                    resolution=resolution,
                    ratio=ratio,
                    audio=audio,
                    quality=quality,
                    attachments={name: file.size for name, file in attached.items()},
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

    @video.autocomplete("model")
    async def _model_autocomplete(
        self, interaction: discord.Interaction[VideoBot], current: str
    ) -> list[app_commands.Choice[str]]:
        """Display names of the models this server allows that match what was typed."""
        if interaction.guild_id is None:
            return []
        allowed = {m.id for m in await self.bot.gatekeeper.allowed_models(interaction.guild_id)}
        matches = [m for m in self.bot.catalog.search(current, limit=100) if m.id in allowed]
        locale = locale_of(interaction)
        return [
            app_commands.Choice(name=model_label(spec, locale), value=spec.id)
            for spec in matches[:25]
        ]

    def _chosen_model(self, interaction: discord.Interaction[VideoBot]) -> ModelSpec | None:
        chosen = getattr(interaction.namespace, "model", None)
        return self.bot.catalog.get(chosen or self.bot.settings.default_model)

    @video.autocomplete("size")
    async def _size_autocomplete(
        self, interaction: discord.Interaction[VideoBot], current: str
    ) -> list[app_commands.Choice[str]]:
        spec = self._chosen_model(interaction)
        return _choices(spec.sizes if spec else (), current, spec)

    @video.autocomplete("resolution")
    async def _resolution_autocomplete(
        self, interaction: discord.Interaction[VideoBot], current: str
    ) -> list[app_commands.Choice[str]]:
        spec = self._chosen_model(interaction)
        return _choices(spec.resolutions if spec else (), current, spec)

    @video.autocomplete("ratio")
    async def _ratio_autocomplete(
        self, interaction: discord.Interaction[VideoBot], current: str
    ) -> list[app_commands.Choice[str]]:
        spec = self._chosen_model(interaction)
        return _choices(spec.ratios if spec else (), current, spec)


def _choices(
    values: tuple[str, ...], typed: str, spec: ModelSpec | None
) -> list[app_commands.Choice[str]]:
    """The model's values that contain what was typed (none: the model takes another option)."""
    needle = typed.strip().lower()
    return [
        app_commands.Choice(name=f"{value} ({spec.name})"[:100] if spec else value, value=value)
        for value in values
        if needle in value.lower()
    ][:25]


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(VideoCog(bot))
