"""Command names, options, descriptions and choices in each shipped language (bot.i18n).

discord.py asks a Translator for every string of every command in every Discord locale when
the tree is synced; the answers become the payload's `name_localizations` and
`description_localizations`. The catalog key is derived from where the string sits, so the
decorators keep their plain English (see ARCHITECTURE.md, "Languages"):

    cmd.<command path with dots>.name / .description      cmd.videoadmin.models.allow.description
    cmd.<command path>.<option>                           cmd.video.prompt (an option's description)
    opt.<option>                                          opt.negative_prompt (an option's name)
    menu.<menu name in snake case>                        menu.animate_image (a message menu)
    choice.<choice name>                                  choice.MP4
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where
from discord.ext import commands

from bot.i18n import FALLBACK, catalog, language


def translation_key(context: app_commands.TranslationContextTypes) -> str | None:
    """The catalog key for a string of a command, by where it sits (None: not translated)."""
    data: Any = context.data
    location = context.location
    if location in (Where.command_name, Where.group_name):
        if isinstance(data, app_commands.ContextMenu):
            return "menu." + data.name.lower().replace(" ", "_")
        return f"cmd.{_path(data)}.name"
    if location in (Where.command_description, Where.group_description):
        return f"cmd.{_path(data)}.description"
    if location is Where.parameter_name:
        return f"opt.{data.name}"
    if location is Where.parameter_description:
        return f"cmd.{_path(data.command)}.{data.name}"
    if location is Where.choice_name:
        return f"choice.{data.name}"
    return None


def _path(command: Any) -> str:
    return str(command.qualified_name).replace(" ", ".")


class CatalogTranslator(app_commands.Translator):
    """Answers from the language's catalog; English locales and unshipped ones get None, so
    Discord shows the command's own English."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        lang = language(locale.value)
        if lang == FALLBACK:
            return None
        key = translation_key(context)
        if key is None:
            return None
        translated = catalog(lang).get(key)
        return translated if isinstance(translated, str) else None


async def setup(bot: commands.Bot) -> None:
    # Before the first sync (bot.client loads this extension first): the payloads then carry
    # the localizations.
    await bot.tree.set_translator(CatalogTranslator())
