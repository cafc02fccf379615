"""/videomodels: what each model on this server does and what it costs, privately."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.catalog import Catalog, ModelSpec
from bot.i18n import translate
from cogs.text import locale_of

if TYPE_CHECKING:
    from bot.client import VideoBot

DESCRIPTION_LIMIT = 4096


def kind_key(model: ModelSpec) -> str:
    """The catalog key for what the model makes ('text or image to video', ...)."""
    return "kind.t2v_i2v" if model.kind == "t2v" and model.first_frame else f"kind.{model.kind}"


def price_label(model: ModelSpec, locale: str | None) -> str:
    usd = f"${model.price.usd:.2f}"
    per = "per_second" if model.price.per == "second" else "per_video"
    return translate(locale, f"price.{per}", usd=usd)


def model_label(model: ModelSpec, locale: str | None = None) -> str:
    """One line for the model autocomplete: name, kind, lengths, sound, price (<= 100)."""
    parts = [model.name, translate(locale, kind_key(model)), model.seconds_label()]
    if model.audio != "none":
        parts.append(translate(locale, "models.sound"))
    parts.append(price_label(model, locale))
    return " · ".join(parts)[:100]


def model_line(model: ModelSpec, locale: str | None = None) -> str:
    """'**Veo 3.0** (`google/veo-3.0`): text or image to video · 8 s · 1280x720 … · $3.20/video'"""

    def say(key: str, **params: object) -> str:
        return translate(locale, key, **params)

    frames = model.frame_choices()
    shown = ", ".join(frames[:3]) + (f" +{len(frames) - 3}" if len(frames) > 3 else "")
    takes = ", ".join(say(f"input.{i}") for i in model.inputs)
    sound = {
        "none": [],
        "optional": [say("models.sound_optional")],
        "built_in": [say("models.sound_built_in")],
    }
    parts = [
        f"**{model.name}** (`{model.id}`): {say(kind_key(model))}",
        model.seconds_label(),
        shown,
        *([say("models.takes", inputs=takes)] if takes else []),
        *sound[model.audio],
        price_label(model, locale),
    ]
    return " · ".join(parts)


def models_listing(
    allowed: Iterable[ModelSpec], catalog: Catalog, default_model: str, locale: str | None = None
) -> discord.Embed:
    def say(key: str, **params: object) -> str:
        return translate(locale, key, **params)

    allowed = list(allowed)
    allowed_ids = {m.id for m in allowed}
    default = f" · {say('models.default')}"
    lines = [model_line(m, locale) + (default if m.id == default_model else "") for m in allowed]
    if not lines:
        lines = [say("models.none_allowed")]
    denied = [m.name for m in catalog if m.id not in allowed_ids]
    off = [m.name for m in catalog.all_models() if not m.enabled]
    if denied:
        lines.append("\n" + say("models.not_allowed", models=", ".join(denied)))
    if off:
        lines.append(say("models.switched_off", models=", ".join(off)))
    text = "\n".join(lines)
    if len(text) > DESCRIPTION_LIMIT:
        text = text[: DESCRIPTION_LIMIT - 1] + "…"
    embed = discord.Embed(
        title=say("models.title"), description=text, colour=discord.Colour.blurple()
    )
    date = catalog.updated or say("models.unknown_date")
    embed.set_footer(text=say("models.footer", date=date))
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
        embed = models_listing(
            allowed, self.bot.catalog, self.bot.settings.default_model, locale_of(interaction)
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(ModelsCog(bot))
