"""Embeds: a failure reason (Together's text or the bot's own) is shown short and inert;
/videos' pages and one job in full, escaped and within Discord's limits."""

from __future__ import annotations

import discord
import pytest

from bot.domain.allowance import Allowance
from bot.i18n import Text, catalog
from cogs.render import (
    DESCRIPTION_LIMIT,
    EMBED_LIMIT,
    REASON_SHOWN,
    HistoryPage,
    failure_embed,
    history_embed,
    history_entry,
    job_detail_embed,
    lineage_text,
    shown_reason,
)
from storage.models import Derivation, Job, JobState
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


# --- /videos ----------------------------------------------------------------------------------

ALLOWANCE = Allowance(
    left_today=3,
    daily=5,
    made_today=2,
    server_left_today=40,
    server_daily=50,
    next_free_at=None,
    unfinished=1,
    concurrent=2,
    budget_usd=20.0,
    budget_left_usd=15.0,
    budget_binds=False,
    budget_frees_at=None,
)
EVERYONE = "@" + "\u200beveryone"
HOSTILE_PROMPT = (
    "**bold** @everyone [free nitro](https://evil.example/x) see https://ok.example/a_b"
)


def name_of(model_id: str) -> str:
    return "MiniMax Hailuo 02"


def page_of(jobs: list[Job], **overrides: object) -> HistoryPage:
    values: dict[str, object] = dict(
        jobs=jobs, position=1, total=len(jobs), has_newer=False, has_older=False
    )
    values.update(overrides)
    return HistoryPage(**values)  # type: ignore[arg-type]


def test_history_entry_escapes_the_prompt_and_links_the_message() -> None:
    job = make_job(
        12, 1_700_000_000.5, state=JobState.DELIVERED, prompt=HOSTILE_PROMPT, cost_usd=0.28
    )

    entry = history_entry(job, "MiniMax Hailuo 02", 150)

    head, prompt = entry.split("\n")
    assert head == (
        "**#12** · MiniMax Hailuo 02 · delivered · <t:1700000000:R> · $0.28 · "
        "[message](https://discord.com/channels/10/20/1012)"
    )
    assert prompt.startswith(r"> \*\*bold\*\* " + EVERYONE + r" \[free nitro](")
    assert "@everyone" not in prompt and "**" not in prompt
    assert prompt.endswith("https://ok.example/a_b"), "a plain link stays usable"


def test_history_entry_shortens_a_long_prompt_and_drops_it_at_zero() -> None:
    job = make_job(3, 0.0, prompt="word " * 500, message_id=None)
    entry = history_entry(job, "Hailuo", 100)
    head, prompt = entry.split("\n")
    assert "[message]" not in head, "no message yet: no link"
    assert len(prompt) <= len("> ") + 100 and prompt.endswith("…")
    assert history_entry(job, "Hailuo", 0) == head


def test_history_page_shows_allowance_jobs_and_position() -> None:
    jobs = [make_job(n, 1_700_000_000.0 + n) for n in range(12, 2, -1)]

    embed = history_embed(page_of(jobs, position=11, total=20), ALLOWANCE, name_of)

    description = embed.description or ""
    assert description.startswith(
        "Videos left today: **3** of 5 (2 made in the last 24 hours)\n"
        "Unfinished: 1 of 2 at once\n\n"
    )
    assert [line.split(" · ")[0] for line in description.split("\n") if line.startswith("**#")] == [
        f"**#{n}**" for n in range(12, 2, -1)
    ]
    assert embed.footer.text is not None and embed.footer.text.startswith("Videos 11–20 of 20")


def test_empty_history_invites_a_first_video() -> None:
    embed = history_embed(page_of([]), ALLOWANCE, name_of)
    assert (embed.description or "").endswith("You have not made any videos here yet. Try /video!")


def test_an_over_long_page_stays_within_discords_limits() -> None:
    # Every prompt needs a backslash per character, and each model name is as long as allowed.
    jobs = [
        make_job(
            10**15 + n,
            1e9,
            state=JobState.RUNNING,
            prompt="*_@" * 2000,
            message_id=10**18 + n,
            guild_id=10**18,
            channel_id=10**18,
            cost_usd=99_999.99,
        )
        for n in range(10)
    ]

    embed = history_embed(page_of(jobs, total=10**6), ALLOWANCE, lambda _: "M" * 500)

    assert len(embed.description or "") <= DESCRIPTION_LIMIT
    assert len(embed) <= EMBED_LIMIT
    assert (embed.description or "").count("[message](") == 10, "every job is still listed"


@pytest.mark.parametrize(
    ("derivation", "parent", "chain_part", "chain_size", "words"),
    [
        (Derivation.EXTEND, 12, 2, 3, "Extended from #12 · part 2 of 3"),
        (Derivation.REMIX, 5, None, 0, "Remix of #5"),
        (Derivation.RETRY, 3, None, 0, "Retry of #3"),
        (Derivation.RETRY, None, None, 0, "Retry of an earlier video"),
        (Derivation.ANIMATE, None, None, 0, "Animated from an image"),
        (Derivation.EDIT, None, None, 0, "Edit of a video"),
        (None, None, None, 3, "Part 1 of 3"),
        (None, None, None, 1, None),
    ],
)
def test_lineage_words(
    derivation: Derivation | None,
    parent: int | None,
    chain_part: int | None,
    chain_size: int,
    words: str | None,
) -> None:
    job = make_job(20, 0.0, derivation=derivation, parent_id=parent, chain_part=chain_part)
    assert lineage_text(job, parent, chain_size) == words


def test_a_join_names_its_chain() -> None:
    job = make_job(20, 0.0, derivation=Derivation.JOIN, parent_id=9, chain_id=7)
    assert lineage_text(job, 9, 0) == "Joined from #7's chain"


def fields_of(embed: discord.Embed) -> dict[str, str]:
    return {str(field.name): str(field.value) for field in embed.fields}


def test_one_job_in_full_shows_every_option() -> None:
    job = make_job(
        8,
        1_700_000_000.0,
        state=JobState.FAILED,
        failure_reason="Together said **no** to @everyone",
        prompt=HOSTILE_PROMPT,
        negative_prompt="blurry @here",
        resolution="720P",
        ratio="16:9",
        seconds=5,
        seed=42,
        steps=30,
        guidance_scale=7.5,
        fps=24,
        output_format="WEBM",
        output_quality=80,
        generate_audio=True,
        media=("first_frame", "soundtrack"),
        estimated_cost_usd=0.49,
        cost_usd=0.28,
        finished_at=1_700_000_100.0,
    )

    embed = job_detail_embed(job, "MiniMax Hailuo 02", "Remix of #5")

    assert embed.title == "Video #8"
    assert (embed.description or "").startswith(r"\*\*bold\*\* " + EVERYONE)
    fields = fields_of(embed)
    assert fields["Model"] == "MiniMax Hailuo 02"
    assert fields["State"] == "failed"
    assert fields["Why"] == r"Together said \*\*no\*\* to " + EVERYONE
    assert fields["Resolution"] == "720P · 16:9" and "Size" not in fields
    assert fields["Length"] == "5 s"
    assert (fields["Seed"], fields["Steps"], fields["Guidance"]) == ("42", "30", "7.5")
    assert (fields["Frames per second"], fields["Format"], fields["Quality"]) == (
        "24",
        "WEBM",
        "80",
    )
    assert fields["Sound"] == "yes"
    assert fields["Negative prompt"] == "blurry @\u200bhere"
    assert fields["Steered by"] == "first frame, soundtrack"
    assert fields["Cost"] == "estimated $0.49 · reported $0.28"
    assert fields["Created"] == "<t:1700000000:f> (<t:1700000000:R>)"
    assert fields["Finished"] == "<t:1700000100:f> (<t:1700000100:R>)"
    assert fields["Message"] == "[jump to it](https://discord.com/channels/10/20/1008)"
    assert fields["Made from"] == "Remix of #5"


def test_one_job_with_defaults_and_nothing_reported() -> None:
    embed = job_detail_embed(make_job(2, 0.0, message_id=None), "Hailuo", None)
    fields = fields_of(embed)
    assert fields["Size"] == "1366x768"
    assert (fields["Seed"], fields["Steps"], fields["Sound"]) == (
        "random",
        "model default",
        "model default",
    )
    assert fields["Negative prompt"] == "none" and fields["Steered by"] == "words only"
    assert fields["Cost"] == "estimated $0.49 · not reported"
    assert fields["Finished"] == "not yet" and fields["Message"] == "none"
    assert "Why" not in fields and "Made from" not in fields


def test_one_job_in_full_stays_within_the_limit_at_its_longest() -> None:
    job = make_job(
        10**15,
        0.0,
        state=JobState.FAILED,
        failure_reason="*" * 5000,
        prompt="*" * 6000,
        negative_prompt="_" * 2000,
        media=("first_frame", "last_frame", "reference", "video", "soundtrack"),
    )
    embed = job_detail_embed(job, "M" * 500, "Extended from #123456789 · part 99 of 99")
    assert len(embed) <= EMBED_LIMIT
    assert all(len(str(field.value)) <= 1024 for field in embed.fields)


def test_the_bots_own_reason_shows_in_the_jobs_language_and_older_ones_as_stored() -> None:
    cancelled = Text("reason.cancelled_by_member")
    job = make_job(
        1,
        0.0,
        state=JobState.CANCELLED,
        locale="de",
        failure_reason=cancelled.render(None),
        failure_text=cancelled.to_json(),
    )
    embed = failure_embed(job, "Hailuo")
    assert embed.title == "Abgebrochen"
    [why] = [field.value for field in embed.fields if field.name == "Grund"]
    assert why == catalog("de")["reason.cancelled_by_member"]
    # A job failed before failure_text existed (or with Together's own words) shows those.
    older = make_job(1, 0.0, state=JobState.FAILED, locale="de", failure_reason="flagged")
    [why] = [
        field.value for field in failure_embed(older, "Hailuo").fields if field.name == "Grund"
    ]
    assert why == "flagged"
