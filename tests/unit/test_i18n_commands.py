"""Command localizations: the Translator's answers, within Discord's rules, and in the payload
the bot syncs."""

from __future__ import annotations

import re
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.i18n import FALLBACK, catalog, language
from cogs.account import AccountCog
from cogs.admin import AdminCog
from cogs.forms import FormsCog
from cogs.models import ModelsCog
from cogs.translator import CatalogTranslator, translation_key
from cogs.video import VideoCog

# Discord's rule for slash command and option names (context menus may use spaces and capitals).
NAME = re.compile(r"^[-_\w\u0900-\u097F\u0E00-\u0E7F]{1,32}$")
# Every Discord locale: the shipped ones (es-ES and es-419 both Spanish) must be translated,
# the others (en-US, en-GB, ko, ...) left to the English default.
Where = app_commands.TranslationContextLocation


async def command_tree() -> app_commands.CommandTree[Any]:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    for cog in (VideoCog, AccountCog, ModelsCog, AdminCog, FormsCog):
        await bot.add_cog(cog(bot))  # type: ignore[arg-type]
    return bot.tree


def strings(tree: app_commands.CommandTree[Any]) -> list[tuple[str, Any]]:
    """Every (English string, translation context) of every command, as discord.py asks."""
    found: list[tuple[str, Any]] = []
    for command in tree.walk_commands():
        group = isinstance(command, app_commands.Group)
        name, desc = (
            (Where.group_name, Where.group_description)
            if group
            else (
                Where.command_name,
                Where.command_description,
            )
        )
        found.append((command.name, app_commands.TranslationContext(name, command)))
        found.append((command.description, app_commands.TranslationContext(desc, command)))
        if isinstance(command, app_commands.Command):
            for parameter in command.parameters:
                found.append(
                    (
                        parameter.name,
                        app_commands.TranslationContext(Where.parameter_name, parameter),
                    )
                )
                if parameter.description != "…":
                    found.append(
                        (
                            parameter.description,
                            app_commands.TranslationContext(Where.parameter_description, parameter),
                        )
                    )
                for choice in parameter.choices:
                    found.append(
                        (choice.name, app_commands.TranslationContext(Where.choice_name, choice))
                    )
    for menu in tree.get_commands(type=discord.AppCommandType.message):
        found.append((menu.name, app_commands.TranslationContext(Where.command_name, menu)))
    return found


async def test_the_english_catalog_holds_each_command_string_as_written() -> None:
    """A command's wording changed in code but not in the catalog would leave stale
    translations behind: the English entry must be the code's own text."""
    english = catalog(FALLBACK)
    for text, context in strings(await command_tree()):
        key = translation_key(context)
        assert key is not None and english.get(key) == text, key


@pytest.mark.parametrize("locale", list(discord.Locale), ids=str)
async def test_localizations_follow_discords_rules(locale: discord.Locale) -> None:
    translator = CatalogTranslator()
    tree = await command_tree()
    names_per_parent: dict[str, list[str]] = {}
    for text, context in strings(tree):
        translated = await translator.translate(app_commands.locale_str(text), locale, context)
        if language(locale.value) == FALLBACK:
            assert translated is None
            continue
        assert translated, (locale, text)
        where = context.location
        if where in (Where.command_name, Where.group_name, Where.parameter_name):
            if isinstance(context.data, app_commands.ContextMenu):
                assert 1 <= len(translated) <= 32
                continue
            assert NAME.match(translated) and translated == translated.lower(), translated
            parent = getattr(context.data, "command", None) or getattr(context.data, "parent", None)
            scope = f"{where.name}:{getattr(parent, 'qualified_name', '')}"
            names_per_parent.setdefault(scope, []).append(translated)
        elif where is Where.choice_name:
            assert 1 <= len(translated) <= 100
        else:
            assert 1 <= len(translated) <= 100, (locale, translated)
    for scope, names in names_per_parent.items():
        assert len(names) == len(set(names)), f"{locale}: two names alike under {scope}"


async def test_the_synced_payload_carries_the_localizations() -> None:
    tree = await command_tree()
    translator = CatalogTranslator()
    video = tree.get_command("video")
    assert isinstance(video, app_commands.Command)
    payload = await video.get_translated_payload(tree, translator)
    assert payload["description_localizations"]["de"] == catalog("de")["cmd.video.description"]
    prompt = next(option for option in payload["options"] if option["name"] == "prompt")
    assert prompt["name_localizations"]["de"] == "beschreibung"
    assert "en-US" not in payload.get("description_localizations", {})
