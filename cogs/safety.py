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
from storage.models import SafetyRules
from storage.safety_settings import WordChange

if TYPE_CHECKING:
    from bot.client import VideoBot

NO_MENTIONS = discord.AllowedMentions.none()

# Moderators' texts, gathered here.
SCREENING_OFF_HERE = (
    "`screening`: prompt screening is switched off on this bot (whoever runs it has left "
    "SAFETY_MODEL empty)."
)
BAD_POLICY = "`if_screen_down` must be `refuse` or `allow`."
LIST_FULL = f"`block`: the list already has {MAX_ENTRIES} entries; unblock one first."
ADDED = "`{entry}` is now blocked."
ALREADY = "`{entry}` was already blocked."
REMOVED = "`{entry}` is no longer blocked."
NOT_THERE = "`{entry}` was not on the list."
UPDATED = "Updated."
NOTHING = "Nothing given to change; the safety settings are:"
WORDS_TITLE = "Blocked words and phrases"
NO_WORDS = "None."


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
        raise InvalidOptionError(f"`{option}`: {exc}") from None


async def run_safety(
    bot: VideoBot, interaction: discord.Interaction[VideoBot], change: SafetyChange
) -> None:
    """Check every option first (a bad one changes nothing), then apply and show."""
    assert interaction.guild_id is not None
    guild_id, actor, now = interaction.guild_id, interaction.user.id, time.time()
    block, unblock = _entry("block", change.block), _entry("unblock", change.unblock)
    if change.screening and not bot.settings.safety_model:
        raise InvalidOptionError(SCREENING_OFF_HERE)
    if change.if_screen_down not in (None, "refuse", "allow"):
        raise InvalidOptionError(BAD_POLICY)
    settings = {
        name: value
        for name, value in (
            ("age_restricted_only", change.age_restricted_only),
            ("screening", change.screening),
            ("screen_unavailable", change.if_screen_down),
        )
        if value is not None
    }
    done: list[str] = []
    store = bot.server_settings
    if unblock is not None:
        removed = await store.change_blocked_word(guild_id, unblock, False, MAX_ENTRIES, actor, now)
        done.append((REMOVED if removed is WordChange.DONE else NOT_THERE).format(entry=unblock))
    if block is not None:
        added = await store.change_blocked_word(guild_id, block, True, MAX_ENTRIES, actor, now)
        if added is WordChange.FULL:
            raise InvalidOptionError(LIST_FULL)
        done.append((ADDED if added is WordChange.DONE else ALREADY).format(entry=block))
    if settings:
        await store.set_safety(guild_id, actor, now, **settings)
    rules = (await store.rules(guild_id)).safety
    heading = [UPDATED, *done] if done or settings else [NOTHING]
    text = "\n".join([*heading, summary(rules, bot.settings.safety_model)])
    await interaction.response.send_message(
        text[:2000], embed=words_embed(rules), ephemeral=True, allowed_mentions=NO_MENTIONS
    )


def _onoff(value: bool) -> str:
    return "on" if value else "off"


def summary(rules: SafetyRules, model: str) -> str:
    """The settings in a few lines (the words are in `words_embed`)."""
    if model:
        screening = f"{_onoff(rules.screening)} (model `{model}`)"
    else:
        screening = "switched off on this bot (SAFETY_MODEL is empty)"
    down = "refuse the video" if rules.screen_unavailable == "refuse" else "let it through"
    return "\n".join(
        [
            f"Age-restricted channels only: {_onoff(rules.age_restricted_only)}",
            f"Blocked words and phrases: {len(rules.blocked_words)} of {MAX_ENTRIES}",
            f"Prompt screening: {screening}",
            f"When the screen cannot answer: {down}",
        ]
    )


def words_embed(rules: SafetyRules) -> discord.Embed:
    """The blocked list, one entry a line (bounded: MAX_ENTRIES short entries fit)."""
    lines = [discord.utils.escape_markdown(entry) for entry in rules.blocked_words]
    return discord.Embed(title=WORDS_TITLE, description="\n".join(lines)[:4096] or NO_WORDS)
