"""No text breaks Discord's limits in any language, with placeholders filled with realistic
worst-case values: message content 2000, button labels 80, modal titles and labels 45 (text
input placeholders 100), embed titles 256, descriptions 4096, field names 256 and values
1024, footers 2048, a whole embed 6000. Command names and descriptions: test_i18n_commands."""

from __future__ import annotations

import dataclasses
import string
from typing import Any

import discord
import pytest

from bot.domain.allowance import Allowance
from bot.domain.catalog import load_catalog
from bot.domain.quota import QuotaDefaults
from bot.domain.safety import HAZARDS, MAX_ENTRY_CHARS, Verdict
from bot.engine import Progress
from bot.i18n import LANGUAGES, Text, catalog, translate
from cogs.buttons import BUTTONS
from cogs.modals import animate_modal, edit_modal, extend_modal, remix_modal
from cogs.models import models_listing
from cogs.render import (
    HISTORY_PAGE,
    HistoryPage,
    history_embed,
    job_detail_embed,
    job_embed,
    lineage_text,
    result_embed,
)
from cogs.text import limits_text
from storage.models import Derivation, GuildLimits, JobState
from tests.unit.fakes import make_job

CATALOG = load_catalog()
BIG_ID = 2**53  # /videos accepts job numbers up to this
SNOWFLAKE = 18446744073709551615
MODEL_NAME = "M" * 100  # the autocomplete shows 100 characters of a model's name
LONG_URL = "https://api.together.ai/v1/videos/" + "a" * 566  # a long signed download link
COMMAND_KEYS = ("cmd.", "opt.", "menu.", "choice.")


def longest_option(lang: str) -> str:
    return max((v for k, v in catalog(lang).items() if k.startswith("opt.")), key=len)


def worst(lang: str) -> dict[str, object]:
    """The longest realistic value of every placeholder, in this language where it is text."""
    names = ", ".join(m.name for m in CATALOG.all_models())
    listed = ", ".join(["1920x1080"] * 12)
    option = Text("opt.negative_prompt") if lang == "en" else longest_option(lang)
    money = "$1,000,000.00"
    values: dict[str, object] = {
        "allowed": listed,
        "budget": money,
        "cap": 100_000,
        "chain": BIG_ID,
        "channels": ", ".join([f"<#{SNOWFLAKE}>"] * 5),
        "concurrent": 100_000,
        "cost": money,
        "count": 100_000,
        "daily": 100_000,
        "date": "2026-12-31",
        "duration": translate(lang, "duration.hours", hours=99, minutes="59"),
        "estimated": money,
        "first": BIG_ID,
        "format": "MP4",
        "got": "'" + "x" * 40 + "'",
        "height": 100_000,
        "high": 4294967295,
        "hours": 99,
        "inputs": ", ".join(
            translate(lang, f"input.{i}")
            for i in (
                "first_frame",
                "last_frame",
                "reference_images",
                "frame_videos",
                "audio_inputs",
            )
        ),
        "job": BIG_ID,
        "kind": Text("kind.t2v_i2v"),
        "last": BIG_ID,
        "left": 100_000,
        "length": 32_000,
        "limit": 100_000,
        "link": f"https://discord.com/channels/{SNOWFLAKE}/{SNOWFLAKE}/{SNOWFLAKE}",
        "low": 4294967295,
        "made": 100_000,
        "megapixels": 40,
        "minutes": "59",
        "model": MODEL_NAME,
        "models": names,
        "name": option,
        "of": translate(lang, "lineage.earlier"),
        "offer": Text("model.offer", {"models": names}),
        "option": option,
        "origin": translate(lang, "lineage.extend_part", of=f"#{BIG_ID}", part=1000, total=1000),
        "owner": f"<@{SNOWFLAKE}>",
        "part": 1000,
        "place": 10_000,
        # A failure reason's parts: Together's words, its status, the engine's inner reason
        # (the whole reason is cut to 1000 characters where it is shown).
        "message": "m" * 500,
        "status": "s" * 40,
        "reason": "r" * 300,
        "ratios": listed,
        "reported": translate(lang, "value.reported", cost=money),
        "resolutions": listed,
        "role": f"<@&{SNOWFLAKE}>",
        "seconds": 600,
        "size": "9999.9",
        "sizes": listed,
        "spent": money,
        "total": BIG_ID,
        "unfinished": 100_000,
        "url": LONG_URL,
        "usd": "$100.00",
        "used": 100_000,
        "user": f"<@{SNOWFLAKE}>",
        "value": "'" + "x" * 100 + "'",
        "what": Text("takes.reference"),
        "when": "<t:9999999999:R>",
        "width": 100_000,
    }
    values["frees"] = Text("quota.budget_frees", {"when": values["when"]})
    # /videoadmin safety, status and usage.
    values |= {
        "categories": Verdict(safe=False, categories=tuple(HAZARDS)).categories_text(),
        "code": "S99",
        "problem": Text("safety.entry_no_letter"),
        "entry": "w" * MAX_ENTRY_CHARS,
        "choice": Text("safety.down_refuse"),
        "state": Text("safety.screening_model", {"state": Text("safety.off"), "model": "m" * 100}),
        "version": "1.2.3.dev45+g0123456789ab",
        "uptime": translate(lang, "duration.days", days=9999, hours=23),
        "rate": "1000.00",
        "ceiling": "1000.00",
        "spend": money,
        "member": f"<@{SNOWFLAKE}>",
        "rank": 10,
        "days": 9999,
        "all": 100_000,
        "here": 100_000,
        "shards": ", ".join(["99988-99989"] * 6 + ["…"]),
        "processes": 1000,
        "share": "1000.00",
    }

    # Option names inside a text are the command's localized names.
    for placeholder in (
        "audio",
        "first_frame",
        "negative_prompt",
        "prompt",
        "ratio",
        "reference",
        "resolution",
        "seconds_option",
        "size",
        "video",
        "screening",
        "if_screen_down",
        "block",
        "unblock",
    ):
        values.setdefault(placeholder, Text(f"opt.{placeholder}"))
    return values


def rendered(lang: str, key: str) -> str:
    entry = catalog("en")[key]
    forms = entry.values() if isinstance(entry, dict) else [entry]
    wanted = {n for form in forms for _, n, _, _ in string.Formatter().parse(str(form)) if n}
    values = worst(lang)
    params = {name: values[name] for name in wanted}
    if key.startswith("option.seconds") or key.startswith("quota.seconds"):
        params["seconds"] = Text("opt.seconds") if key == "option.seconds" else 600
    return translate(lang, key, **params)


# Texts with a limit stricter than a message's 2000 characters, by key prefix.
LIMITS = {
    "button.": 80,
    "modal.remix_title": 45,
    "modal.extend_title": 45,
    "modal.animate_title": 45,
    "modal.edit_title": 45,
    "modal.prompt": 45,
    "modal.negative_prompt": 45,
    "modal.instruction": 45,
    "modal.": 100,  # text input placeholders
    "field.": 256,
    "embed.footer": 2048,
    "embed.download": 1024,
    "status.": 1024,
    "value.": 1024,
    "lineage.": 1024,
    "state.": 1024,
}


def limit_of(key: str) -> int:
    return next((limit for prefix, limit in LIMITS.items() if key.startswith(prefix)), 2000)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_fits_where_it_is_shown(lang: str) -> None:
    too_long = {}
    for key in catalog("en"):
        if key.startswith(COMMAND_KEYS):
            continue
        text = rendered(lang, key)
        if not 1 <= len(text) <= limit_of(key):
            too_long[key] = len(text)
    assert too_long == {}


def check_embed(embed: discord.Embed) -> None:
    assert len(embed.title or "") <= 256
    assert len(embed.description or "") <= 4096
    for field in embed.fields:
        assert 1 <= len(field.name or "") <= 256, field.name
        assert 1 <= len(field.value or "") <= 1024, (field.name, len(field.value or ""))
    assert len(embed.footer.text or "") <= 2048
    assert len(embed) <= 6000


def worst_job(lang: str, state: JobState, **changes: Any) -> Any:
    job = make_job(
        BIG_ID,
        0.0,
        state=state,
        prompt="p" * 32000,
        negative_prompt="n" * 2000,
        locale=lang,
        parent_id=BIG_ID - 1,
        derivation=Derivation.EXTEND,
        chain_id=BIG_ID - 2,
        chain_part=1000,
        cost_usd=100.0,
        video_url=LONG_URL,
        failure_reason="r" * 5000,
        finished_at=99 * 3600.0,
        seed=4294967295,
        steps=50,
        guidance_scale=20.0,
        fps=60,
        output_quality=50,
        generate_audio=True,
        media=("first_frame", "last_frame", "reference", "video", "soundtrack"),
    )
    return dataclasses.replace(job, **changes)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("state", list(JobState))
def test_a_jobs_message_fits_in_every_state(lang: str, state: JobState) -> None:
    job = worst_job(lang, state)
    check_embed(
        job_embed(job, 99 * 3600.0, MODEL_NAME, Progress(place=10_000, eta_seconds=99 * 3600))
    )
    check_embed(result_embed(job, MODEL_NAME, link_only=True))
    check_embed(job_detail_embed(job, MODEL_NAME, lineage_text(job, BIG_ID, 1000, lang), lang))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_full_videos_page_fits(lang: str) -> None:
    jobs = [worst_job(lang, JobState.DELIVERED, id=BIG_ID - n) for n in range(HISTORY_PAGE)]
    page = HistoryPage(
        jobs=jobs, position=BIG_ID - 20, total=BIG_ID, has_newer=True, has_older=True
    )
    # Every line of the summary shown, with the widest figures.
    allowance = Allowance(
        left_today=0,
        daily=100_000,
        made_today=100_000,
        server_left_today=0,
        server_daily=100_000,
        next_free_at=9_999_999_999,
        unfinished=100_000,
        concurrent=100_000,
        budget_usd=1_000_000.0,
        budget_left_usd=0.0,
        budget_binds=True,
        budget_frees_at=9_999_999_999,
    )
    check_embed(history_embed(page, allowance, lambda _: MODEL_NAME, lang))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_videomodels_fits(lang: str) -> None:
    check_embed(models_listing(list(CATALOG), CATALOG, "minimax/hailuo-02", lang))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_buttons_and_modals_fit(lang: str) -> None:
    for button in BUTTONS:
        assert 1 <= len(button(BIG_ID, lang).item.label or "") <= 80
    modals = [
        remix_modal(BIG_ID, "p" * 5000, "n" * 5000, lang),
        extend_modal(BIG_ID, "p" * 5000, lang),
        animate_modal(BIG_ID, lang),
        edit_modal(BIG_ID, lang),
    ]
    for modal in modals:
        assert 1 <= len(modal.title) <= 45, modal.title
        for item in modal.children:
            assert isinstance(item, discord.ui.TextInput)
            assert 1 <= len(item.label) <= 45, item.label
            assert len(item.placeholder or "") <= 100


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_limits_report_fits_a_message(lang: str) -> None:
    limits = GuildLimits(100_000, 100_000, 100_000, 1_000_000.0, 600)
    defaults = QuotaDefaults(100_000, 100_000, 100_000, 1_000_000.0)
    roles = {SNOWFLAKE - n: 100_000 for n in range(25)}
    # /videoadmin's reply puts one line before it; the reply is cut at 2000 only as a last resort.
    assert len(limits_text(limits, defaults, roles, lang)) <= 1900
