"""/videomodels: what each model on this server does and what it costs, privately."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.catalog import Catalog, ModelSpec

if TYPE_CHECKING:
    from bot.client import VideoBot

DESCRIPTION_LIMIT = 4096
INPUT_WORDS = {
    "first_frame": "first frame",
    "last_frame": "last frame",
    "reference_images": "reference image",
    "frame_videos": "clip to continue",
    "reference_videos": "reference clip",
    "source_video": "clip to edit",
    "audio_inputs": "soundtrack",
}


def model_line(model: ModelSpec) -> str:
    """'**Veo 3.0** (`google/veo-3.0`): text or image to video · 8 s · 1280x720 … · $3.20/video'"""
    frames = model.frame_choices()
    shown = ", ".join(frames[:3]) + (f" +{len(frames) - 3}" if len(frames) > 3 else "")
    takes = ", ".join(INPUT_WORDS[i] for i in model.inputs)
    sound = {"none": "", "optional": " · sound on request", "built_in": " · with sound"}
    parts = [
        f"**{model.name}** (`{model.id}`): {model.kind_name}",
        model.seconds_label(),
        shown,
        *([f"takes {takes}"] if takes else []),
    ]
    return " · ".join(parts) + sound[model.audio] + f" · {model.price.label()}"


def models_listing(
    allowed: Iterable[ModelSpec], catalog: Catalog, default_model: str
) -> discord.Embed:
    allowed = list(allowed)
    allowed_ids = {m.id for m in allowed}
    lines = [model_line(m) + (" · default" if m.id == default_model else "") for m in allowed]
    if not lines:
        lines = ["No model is allowed on this server. A moderator can allow some with /videoadmin."]
    denied = [m.name for m in catalog if m.id not in allowed_ids]
    off = [m.name for m in catalog.all_models() if not m.enabled]
    if denied:
        lines.append(f"\nNot allowed on this server: {', '.join(denied)}.")
    if off:
        lines.append(f"Switched off on this bot (no published sizes or lengths): {', '.join(off)}.")
    text = "\n".join(lines)
    if len(text) > DESCRIPTION_LIMIT:
        text = text[: DESCRIPTION_LIMIT - 1] + "…"
    embed = discord.Embed(title="Video models", description=text, colour=discord.Colour.blurple())
    embed.set_footer(
        text="Prices are estimates (per video or per second); what Together reports is what "
        f"counts. Catalog of {catalog.updated or 'unknown date'}."
    )
    return embed


class ModelsCog(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="videomodels", description="What each video model does and what it costs"
    )
    @app_commands.guild_only()
    async def videomodels(self, interaction: discord.Interaction[VideoBot]) -> None:
        assert interaction.guild_id is not None
        allowed = await self.bot.gatekeeper.allowed_models(interaction.guild_id)
        embed = models_listing(allowed, self.bot.catalog, self.bot.settings.default_model)
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(ModelsCog(bot))
