"""The modals that ask for words: Remix, Extend, Animate image and Edit video.

A modal's custom id carries what its submission needs (`form:<flow>:<ids>`), like a button's,
so a submission that arrives after a restart is still understood (cogs.forms handles them all;
nothing is kept in memory between the modal and its submission).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import discord

from bot.domain.options import NEGATIVE_PROMPT_MAX
from bot.i18n import translate

TEXT_INPUT_MAX = 4000  # Discord's limit for one text input
FORM_ID = re.compile(r"form:(?P<flow>remix|extend|animate|edit):(?P<id>\d+)$")


@dataclass(frozen=True, slots=True)
class Form:
    """A parsed modal custom id: the flow, and the job id (Remix, Extend) or the kept file's
    id (Animate image, Edit video)."""

    flow: str
    id: int


def parse_form(custom_id: str) -> Form | None:
    match = FORM_ID.match(custom_id)
    return Form(match["flow"], int(match["id"])) if match else None


class WordsModal(discord.ui.Modal):
    """Only a payload: its submission is handled by cogs.forms, which needs no instance."""

    def __init__(self, *, title: str, custom_id: str) -> None:
        # discord.py keeps a sent modal until it is submitted or times out; cogs.forms needs
        # none of them, so an abandoned form is dropped after the interaction's 15 minutes.
        super().__init__(title=title, custom_id=custom_id, timeout=15 * 60)

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        return None  # cogs.forms answers every form submission


def _prompt(label: str, default: str | None, placeholder: str) -> discord.ui.TextInput[Any]:
    return discord.ui.TextInput(
        label=label,
        custom_id="prompt",
        style=discord.TextStyle.paragraph,
        default=default[:TEXT_INPUT_MAX] if default else None,
        placeholder=placeholder,
        max_length=TEXT_INPUT_MAX,
        required=True,
    )


def remix_modal(
    job_id: int, prompt: str, negative_prompt: str | None, locale: str | None = None
) -> discord.ui.Modal:
    title = translate(locale, "modal.remix_title", job=job_id)
    modal = WordsModal(title=title, custom_id=f"form:remix:{job_id}")
    words = translate(locale, "modal.prompt")
    modal.add_item(_prompt(words, prompt, translate(locale, "modal.prompt_hint")))
    modal.add_item(
        discord.ui.TextInput(
            label=translate(locale, "modal.negative_prompt"),
            custom_id="negative_prompt",
            style=discord.TextStyle.paragraph,
            default=negative_prompt[:NEGATIVE_PROMPT_MAX] if negative_prompt else None,
            placeholder=translate(locale, "modal.negative_hint"),
            max_length=NEGATIVE_PROMPT_MAX,
            required=False,
        )
    )
    return modal


def extend_modal(job_id: int, prompt: str, locale: str | None = None) -> discord.ui.Modal:
    title = translate(locale, "modal.extend_title", job=job_id)
    modal = WordsModal(title=title, custom_id=f"form:extend:{job_id}")
    words = translate(locale, "modal.prompt")
    modal.add_item(_prompt(words, prompt, translate(locale, "modal.extend_hint")))
    return modal


def animate_modal(form_id: int, locale: str | None = None) -> discord.ui.Modal:
    """`form_id`: the picked file kept in pending_forms."""
    title = translate(locale, "modal.animate_title")
    modal = WordsModal(title=title, custom_id=f"form:animate:{form_id}")
    words = translate(locale, "modal.prompt")
    modal.add_item(_prompt(words, None, translate(locale, "modal.animate_hint")))
    return modal


def edit_modal(form_id: int, locale: str | None = None) -> discord.ui.Modal:
    """`form_id`: the picked file kept in pending_forms."""
    title = translate(locale, "modal.edit_title")
    modal = WordsModal(title=title, custom_id=f"form:edit:{form_id}")
    words = translate(locale, "modal.instruction")
    modal.add_item(_prompt(words, None, translate(locale, "modal.edit_hint")))
    return modal


def submitted(data: Any) -> dict[str, str]:
    """The text inputs of a modal submission: custom id -> value."""
    values: dict[str, str] = {}
    for row in data.get("components", []) if isinstance(data, dict) else []:
        for component in row.get("components", []):
            if isinstance(component.get("custom_id"), str):
                values[component["custom_id"]] = str(component.get("value") or "")
    return values
