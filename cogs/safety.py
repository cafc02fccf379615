"""/videoadmin safety: age-restricted channels only, blocked words and phrases, prompt screening.

AdminCog declares the command (and checks Manage Server); this module does the work. Every
change is audited by storage.server_settings; the reply (private) shows the settings after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from bot.domain.errors import InvalidOptionError
from bot.domain.safety import MAX_ENTRIES, EntryProblem, normalize_entry
from bot.i18n import Text, option_name, text, translate
from cogs.text import locale_of
from storage.models import SafetyRules
from storage.safety_settings import WordChange

if TYPE_CHECKING:
    from bot.client import VideoBot

NO_MENTIONS = discord.AllowedMentions.none()

# The moderator's texts are keys in bot/i18n's catalogs (`safety.*`), read in their language;
# the audit log's entries (storage.server_settings) stay English records.


@dataclass(frozen=True, slots=True)
class SafetyChange:
    """The options of /videoadmin safety; None: left as it is."""

    age_restricted_only: bool | None = None
    screening: bool | None = None
    if_screen_down: str | None = None
    block: str | None = None
    unblock: str | None = None


def _entry(option: str, raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        return normalize_entry(raw)
    except EntryProblem as exc:
        raise InvalidOptionError(
            "safety.entry_problem", option=option_name(option), problem=exc.text
        ) from None


async def run_safety(
    bot: VideoBot, interaction: discord.Interaction[VideoBot], change: SafetyChange
) -> None:
    """Check every option first (a bad one changes nothing), then apply and show."""
    assert interaction.guild_id is not None
    guild_id, actor, now = interaction.guild_id, interaction.user.id, time.time()
    block, unblock = _entry("block", change.block), _entry("unblock", change.unblock)
    if change.screening and not bot.settings.safety_model:
        raise InvalidOptionError("safety.screening_off_here", screening=option_name("screening"))
    if change.if_screen_down not in (None, "refuse", "allow"):
        raise InvalidOptionError("safety.bad_policy", if_screen_down=option_name("if_screen_down"))
    settings = {
        name: value
        for name, value in (
            ("age_restricted_only", change.age_restricted_only),
            ("screening", change.screening),
            ("screen_unavailable", change.if_screen_down),
        )
        if value is not None
    }
    done: list[Text] = []
    store = bot.server_settings
    if unblock is not None:
        removed = await store.change_blocked_word(guild_id, unblock, False, MAX_ENTRIES, actor, now)
        key = "safety.removed" if removed is WordChange.DONE else "safety.not_there"
        done.append(text(key, entry=unblock))
    if block is not None:
        added = await store.change_blocked_word(guild_id, block, True, MAX_ENTRIES, actor, now)
        if added is WordChange.FULL:
            raise InvalidOptionError(
                "safety.list_full",
                block=option_name("block"),
                unblock=option_name("unblock"),
                limit=MAX_ENTRIES,
            )
        key = "safety.added" if added is WordChange.DONE else "safety.already"
        done.append(text(key, entry=block))
    if settings:
        await store.set_safety(guild_id, actor, now, **settings)
    rules = (await store.rules(guild_id)).safety
    locale = locale_of(interaction)
    heading = [text("admin.updated"), *done] if done or settings else [text("safety.nothing")]
    lines = [said.render(locale) for said in heading]
    reply = "\n".join([*lines, summary(rules, bot.settings.safety_model, locale)])
    await interaction.response.send_message(
        reply[:2000],
        embed=words_embed(rules, locale),
        ephemeral=True,
        allowed_mentions=NO_MENTIONS,
    )


def summary(rules: SafetyRules, model: str, locale: str | None = None) -> str:
    """The settings in a few lines (the words are in `words_embed`)."""

    def say(key: str, **params: object) -> str:
        return translate(locale, f"safety.{key}", **params)

    def onoff(value: bool) -> Text:
        return text("safety.on" if value else "safety.off")

    if model:
        screening = say("screening_model", state=onoff(rules.screening), model=model)
    else:
        screening = say("screening_unavailable")
    down = "down_refuse" if rules.screen_unavailable == "refuse" else "down_allow"
    return "\n".join(
        [
            say("summary_age", state=onoff(rules.age_restricted_only)),
            say("summary_words", used=len(rules.blocked_words), limit=MAX_ENTRIES),
            say("summary_screening", state=screening),
            say("summary_down", choice=text(f"safety.{down}")),
        ]
    )


def words_embed(rules: SafetyRules, locale: str | None = None) -> discord.Embed:
    """The blocked list, one entry a line (bounded: MAX_ENTRIES short entries fit)."""
    lines = [discord.utils.escape_markdown(entry) for entry in rules.blocked_words]
    return discord.Embed(
        title=translate(locale, "safety.words_title"),
        description="\n".join(lines)[:4096] or translate(locale, "safety.no_words"),
    )
