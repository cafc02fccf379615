"""Embeds: a failure reason (Together's text or the bot's own) is shown short and inert."""

from __future__ import annotations

import discord

from cogs.render import REASON_SHOWN, failure_embed, shown_reason
from storage.models import JobState
from tests.unit.fakes import make_job

HOSTILE_REASON = (
    "**bold** __underline__ @everyone @here <@123456789012345678> "
    + "\n" * 3000
    + "\x00\x07\x1b[2J\u202e"
    + "spam " * 1400
)
DOWNLOAD_LINK = "https://api.together.ai/shrt/a_b*c~d|e_f"


def why_of(embed: discord.Embed) -> str:
    [value] = [field.value for field in embed.fields if field.name == "Why"]
    assert value is not None
    return value


def test_hostile_reason_is_short_escaped_and_one_paragraph() -> None:
    assert len(HOSTILE_REASON) > 10_000
    job = make_job(1, 0.0, state=JobState.FAILED, failure_reason=HOSTILE_REASON)

    why = why_of(failure_embed(job, "Hailuo"))

    assert len(why) <= REASON_SHOWN and why.endswith("…")
    assert why.startswith(r"\*\*bold\*\* \_\_underline\_\_ @" + "\u200beveryone @\u200bhere")
    assert "<@\u200b123456789012345678>" in why
    assert "\n" not in why and "  " not in why
    assert not any(ord(char) < 32 or char == "\u202e" for char in why)


def test_bots_own_reason_keeps_its_link_intact() -> None:
    reason = (
        "The video was generated but could not be posted here. It can be downloaded from "
        f"Together for a short while: {DOWNLOAD_LINK}"
    )
    job = make_job(1, 0.0, state=JobState.FAILED, failure_reason=reason)

    assert why_of(failure_embed(job, "Hailuo")) == reason


def test_escaping_never_pushes_the_reason_over_the_limit() -> None:
    # Every character needs a backslash: the escaped text would be twice the limit.
    shown = shown_reason("*_" * 2000)
    assert len(shown) <= REASON_SHOWN and shown.endswith("…")
    assert shown.startswith(r"\*\_\*\_")


def test_masked_links_and_quotes_are_escaped() -> None:
    assert shown_reason("[free nitro](https://evil.example)").startswith(r"\[free nitro]")
    assert shown_reason("> quoted").startswith("\\>")


def test_missing_reason_has_a_default() -> None:
    job = make_job(1, 0.0, state=JobState.FAILED)
    assert why_of(failure_embed(job, "Hailuo")) == "No reason was given."
