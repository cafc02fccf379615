"""Embeds: a job's message, and /videos (a member's pages, one job in full). Pure functions of
the jobs, the time and the reader's language (a job's message speaks its `locale`; /videos the
member's)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import discord

from bot.domain.allowance import Allowance, allowance_text
from bot.engine import Progress
from bot.i18n import Text, translate
from bot.together.models import clean_text
from cogs.text import message_link, money, state_word
from storage.models import Derivation, Job, JobState

PROMPT_SHOWN = 600
REASON_SHOWN = 1000  # an embed field holds at most 1024 characters
COLOR_PROGRESS = discord.Colour.blurple()
COLOR_DONE = discord.Colour.green()
COLOR_FAILED = discord.Colour.red()
COLOR_STOPPED = discord.Colour.dark_grey()

_STATUS_TEXT = {
    JobState.QUEUED: "status.queued",
    JobState.SUBMITTING: "status.submitting",
    JobState.DELIVERING: "status.delivering",
}
_PROVIDER_TEXT = {
    "queued": "status.queued_at_together",
    "in_progress": "status.generating",
}


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_duration(seconds: float, locale: str | None = None) -> str:
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return translate(locale, "duration.hours", hours=hours, minutes=f"{minutes:02d}")
    if minutes:
        return translate(locale, "duration.minutes", minutes=minutes, seconds=f"{secs:02d}")
    return translate(locale, "duration.seconds", seconds=secs)


def status_text(job: Job) -> str:
    if job.state is JobState.RUNNING:
        key = _PROVIDER_TEXT.get(job.provider_status or "", "status.generating")
    else:
        key = _STATUS_TEXT.get(job.state, f"state.{job.state.value}")
    return translate(job.locale, key)


def _base(job: Job, title_key: str, colour: discord.Colour, model_name: str) -> discord.Embed:
    locale = job.locale
    # Markdown is escaped so a prompt cannot restyle the message; embeds never ping anyone.
    prompt = discord.utils.escape_markdown(shorten(job.params.prompt, PROMPT_SHOWN))
    embed = discord.Embed(title=translate(locale, title_key), description=prompt, colour=colour)
    embed.add_field(name=translate(locale, "field.model"), value=model_name)
    embed.add_field(name=translate(locale, "field.size"), value=job.params.size)
    seconds = translate(locale, "value.seconds", seconds=job.params.seconds)
    embed.add_field(name=translate(locale, "field.length"), value=seconds)
    # The parent is shown by number (the message cannot look it up); the part is the chain's
    # length so far as this job knows it.
    origin = lineage_text(job, job.parent_id, job.chain_part or 1, locale)
    footer = (
        translate(locale, "embed.footer_origin", job=job.id, origin=origin)
        if origin
        else translate(locale, "embed.footer", job=job.id)
    )
    embed.set_footer(text=footer)
    if job.thumbnail:
        # The first keyframe, uploaded with the first response and kept until the video replaces it.
        embed.set_thumbnail(url=f"attachment://{job.thumbnail}")
    return embed


def progress_embed(
    job: Job, now: float, model_name: str, progress: Progress | None = None
) -> discord.Embed:
    locale = job.locale
    embed = _base(job, "embed.making", COLOR_PROGRESS, model_name)
    status = status_text(job)
    if progress is not None and progress.place is not None and job.state is JobState.QUEUED:
        status = translate(locale, "status.place", place=progress.place)
    embed.add_field(name=translate(locale, "field.status"), value=status)
    elapsed = format_duration(now - job.created_at, locale)
    embed.add_field(name=translate(locale, "field.elapsed"), value=elapsed)
    if progress is not None and progress.eta_seconds is not None:
        about = translate(
            locale, "value.about", duration=format_duration(progress.eta_seconds, locale)
        )
        embed.add_field(name=translate(locale, "field.ready_in"), value=about)
    return embed


def result_embed(job: Job, model_name: str, *, link_only: bool) -> discord.Embed:
    locale = job.locale
    embed = _base(job, "embed.ready", COLOR_DONE, model_name)
    if job.params.seed is not None:
        embed.add_field(name=translate(locale, "field.seed"), value=str(job.params.seed))
    start = job.submitted_at or job.created_at
    if job.finished_at is not None:
        took = format_duration(job.finished_at - start, locale)
        embed.add_field(name=translate(locale, "field.generated_in"), value=took)
    if job.cost_usd is not None:
        embed.add_field(name=translate(locale, "field.cost"), value=f"${job.cost_usd:.2f}")
    if not link_only:
        embed.set_thumbnail(url=None)  # the upload replaces the keyframe attachment
    if link_only and job.video_url:
        embed.add_field(
            name=translate(locale, "field.download"),
            value=translate(locale, "embed.download", url=job.video_url),
            inline=False,
        )
    return embed


def failure_embed(job: Job, model_name: str) -> discord.Embed:
    if job.state is JobState.TIMED_OUT:
        title, colour = "embed.too_long", COLOR_FAILED
    elif job.state is JobState.CANCELLED:
        title, colour = "embed.cancelled", COLOR_STOPPED
    else:
        title, colour = "embed.failed", COLOR_FAILED
    embed = _base(job, title, colour, model_name)
    reason = failure_reason(job, job.locale) or translate(job.locale, "embed.no_reason")
    embed.add_field(
        name=translate(job.locale, "field.why"), value=shown_reason(reason), inline=False
    )
    return embed


def failure_reason(job: Job, locale: str | None) -> str | None:
    """Why the job failed, in the reader's language when it is the bot's own reason (its
    failure_text); Together's own words, and older jobs' reasons, as they were stored."""
    stored = Text.from_json(job.failure_text)
    return stored.render(locale) if stored is not None else job.failure_reason


def shown_reason(reason: str, limit: int = REASON_SHOWN) -> str:
    """A failure reason as shown: one paragraph, Markdown and mentions escaped, within ``limit``
    characters once escaped. Plain links stay intact (``ignore_links``): the bot's own reasons
    may carry Together's download link."""
    return shown_text(reason, limit)


def shown_text(untrusted: str, limit: int) -> str:
    """A member's or Together's text made inert (see shown_reason), within ``limit`` (>= 2)."""
    text = clean_text(untrusted, limit)
    shown = _escaped(text)
    while len(shown) > limit:  # escaping added characters: cut the text in proportion
        keep = min(len(text) - 1, len(text) * limit // len(shown))
        text = shorten(text, max(1, keep))
        shown = _escaped(text)
    return shown


def _escaped(text: str) -> str:
    markdown_safe = discord.utils.escape_markdown(text, ignore_links=True)
    return discord.utils.escape_mentions(markdown_safe)


def job_embed(
    job: Job, now: float, model_name: str, progress: Progress | None = None
) -> discord.Embed:
    """The embed for any state but a successful delivery (which carries the video)."""
    if job.state in (JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED):
        return failure_embed(job, model_name)
    if job.state is JobState.DELIVERED:
        return result_embed(job, model_name, link_only=job.delivery == "link")
    return progress_embed(job, now, model_name, progress)


# --- /videos --------------------------------------------------------------------------------

HISTORY_PAGE = 10
# An embed's description holds at most 4096 characters and the whole embed 6000.
DESCRIPTION_LIMIT = 4096
EMBED_LIMIT = 6000
# A prompt in a page's list, tried in this order until the page fits (0: left out).
LIST_PROMPT_SHOWN = (150, 100, 60, 30, 0)
MODEL_NAME_SHOWN = 60
DETAIL_PROMPT_SHOWN = 2500
NEGATIVE_SHOWN = 800


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of a member's jobs: newest first, with where it sits among all of them."""

    jobs: Sequence[Job]
    position: int  # of jobs[0], counted from the newest (1)
    total: int
    has_newer: bool
    has_older: bool


def history_entry(job: Job, model_name: str, prompt_shown: int, locale: str | None = None) -> str:
    """'**#12** · Model · delivered · <t:…:R> · $0.28 · [message](…)', then the prompt quoted
    (the cost once Together has reported it)."""
    parts = [
        f"**#{job.id}**",
        _escaped(shorten(model_name, MODEL_NAME_SHOWN)),
        state_word(job.state, locale),
        f"<t:{int(job.created_at)}:R>",
    ]
    if job.cost_usd is not None:
        parts.append(money(job.cost_usd))
    link = message_link(job)
    if link:
        parts.append(translate(locale, "link.message", link=link))
    line = " · ".join(parts)
    prompt = shown_text(job.params.prompt, prompt_shown) if prompt_shown else ""
    return f"{line}\n> {prompt}" if prompt else line


def history_embed(
    page: HistoryPage,
    allowance: Allowance,
    model_name: Callable[[str], str],
    locale: str | None = None,
) -> discord.Embed:
    """A page of /videos: what is left, then each job; within Discord's embed limits."""
    embed = discord.Embed(title=translate(locale, "history.title"), colour=COLOR_PROGRESS)
    head = allowance_text(allowance, locale)
    if not page.jobs:
        embed.description = f"{head}\n\n{translate(locale, 'history.empty')}"
        return embed
    last = page.position + len(page.jobs) - 1
    embed.set_footer(
        text=translate(locale, "history.footer", first=page.position, last=last, total=page.total)
    )
    for prompt_shown in LIST_PROMPT_SHOWN:
        entries = [
            history_entry(job, model_name(job.model), prompt_shown, locale) for job in page.jobs
        ]
        embed.description = "\n\n".join([head, *entries])
        if len(embed.description) <= DESCRIPTION_LIMIT and len(embed) <= EMBED_LIMIT:
            break
    else:  # unreachable with names cut to MODEL_NAME_SHOWN; never send what Discord refuses
        embed.description = shorten(embed.description or "", DESCRIPTION_LIMIT)
    return embed


def lineage_text(
    job: Job, parent_number: int | None, chain_size: int, locale: str | None = None
) -> str | None:
    """Where a job comes from, in words ('Extended from #12 · part 2 of 3').

    ``parent_number`` is the parent's id when it is known on this server (None: it is not),
    ``chain_size`` the number of parts in the job's chain (or in the chain it starts).
    """

    def say(key: str, **params: object) -> str:
        return translate(locale, f"lineage.{key}", **params)

    of = f"#{parent_number}" if parent_number is not None else say("earlier")
    match job.derivation:
        case Derivation.RETRY:
            return say("retry", of=of)
        case Derivation.REMIX:
            return say("remix", of=of)
        case Derivation.EXTEND:
            if job.chain_part is None:
                return say("extend", of=of)
            total = max(chain_size, job.chain_part)
            return say("extend_part", of=of, part=job.chain_part, total=total)
        case Derivation.JOIN:
            chain = job.chain_id if job.chain_id is not None else parent_number
            return say("join", chain=chain) if chain is not None else say("join_unknown")
        case Derivation.ANIMATE:
            return say("animate")
        case Derivation.EDIT:
            return say("edit")
    return say("first_part", total=chain_size) if chain_size > 1 else None


def _when(timestamp: float | None, locale: str | None) -> str:
    if timestamp is None:
        return translate(locale, "value.not_yet")
    return f"<t:{int(timestamp)}:f> (<t:{int(timestamp)}:R>)"


def job_detail_embed(
    job: Job, model_name: str, lineage: str | None, locale: str | None = None
) -> discord.Embed:
    """/videos job:<number>: every option of one job, where it stands, what it cost, where it
    comes from. Untrusted text is escaped and cut so the embed stays within 6000 characters."""

    def say(key: str, **params: object) -> str:
        return translate(locale, key, **params)

    def or_default(value: object) -> str:
        return say("value.model_default") if value is None else str(value)

    params = job.params
    failed = job.state in (JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED)
    embed = discord.Embed(
        title=say("detail.title", job=job.id),
        description=shown_text(params.prompt, DETAIL_PROMPT_SHOWN),
        colour=COLOR_FAILED if failed else COLOR_DONE if job.state.is_final else COLOR_PROGRESS,
    )

    def add(key: str, value: str, *, inline: bool = True) -> None:
        embed.add_field(name=say(key), value=value, inline=inline)

    add("field.model", _escaped(shorten(model_name, MODEL_NAME_SHOWN)))
    add("field.state", state_word(job.state, locale))
    add("field.by", f"<@{job.user_id}>")
    reason = failure_reason(job, locale)
    if reason:
        add("field.why", shown_reason(reason), inline=False)
    if params.resolution is not None:
        add("field.resolution", f"{params.resolution} · {params.ratio or or_default(None)}")
    else:
        add("field.size", params.size)
    add("field.length", say("value.seconds", seconds=params.seconds))
    add("field.seed", str(params.seed) if params.seed is not None else say("value.random"))
    add("field.steps", or_default(params.steps))
    add("field.guidance", or_default(params.guidance_scale))
    add("field.fps", or_default(params.fps))
    add("field.format", params.output_format)
    add("field.quality", or_default(params.output_quality))
    audio = params.generate_audio
    add(
        "field.sound",
        or_default(None) if audio is None else say(f"value.{'yes' if audio else 'no'}"),
    )
    negative = params.negative_prompt
    negative_shown = shown_text(negative, NEGATIVE_SHOWN) if negative else say("value.none")
    add("field.negative_prompt", negative_shown, inline=False)
    media = ", ".join(say(f"media.{kind}") for kind in params.media)
    add("field.steered_by", media or say("value.words_only"))
    reported = (
        say("value.reported", cost=money(job.cost_usd))
        if job.cost_usd is not None
        else say("value.not_reported")
    )
    add(
        "field.cost",
        say("value.estimated", estimated=money(job.estimated_cost_usd), reported=reported),
    )
    add("field.created", _when(job.created_at, locale))
    add("field.finished", _when(job.finished_at, locale))
    link = message_link(job)
    add("field.message", say("value.jump", link=link) if link else say("value.none"))
    if lineage:
        add("field.made_from", lineage, inline=False)
    if len(embed) > EMBED_LIMIT:  # cannot happen with the limits above; keep Discord's anyway
        embed.description = shorten(embed.description or "", 500)
    return embed
