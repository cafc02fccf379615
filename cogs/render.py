"""Embeds: a job's message, and /videos (a member's pages, one job in full). Pure functions of
the jobs and the time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import discord

from bot.domain.allowance import Allowance, allowance_text
from bot.engine import Progress
from bot.together.models import clean_text
from cogs.text import STATE_WORDS, message_link, money
from storage.models import Derivation, Job, JobState

PROMPT_SHOWN = 600
REASON_SHOWN = 1000  # an embed field holds at most 1024 characters
COLOR_PROGRESS = discord.Colour.blurple()
COLOR_DONE = discord.Colour.green()
COLOR_FAILED = discord.Colour.red()
COLOR_STOPPED = discord.Colour.dark_grey()

_STATUS_TEXT = {
    JobState.QUEUED: "⏳ Waiting for a free slot",
    JobState.SUBMITTING: "📨 Sending to Together",
    JobState.DELIVERING: "📥 Finished: uploading the video",
}
_PROVIDER_TEXT = {
    "queued": "⏳ Queued at Together",
    "in_progress": "🎬 Generating",
}


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_duration(seconds: float) -> str:
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def status_text(job: Job) -> str:
    if job.state is JobState.RUNNING:
        return _PROVIDER_TEXT.get(job.provider_status or "", "🎬 Generating")
    return _STATUS_TEXT.get(job.state, job.state.value)


def _base(job: Job, title: str, colour: discord.Colour, model_name: str) -> discord.Embed:
    # Markdown is escaped so a prompt cannot restyle the message; embeds never ping anyone.
    prompt = discord.utils.escape_markdown(shorten(job.params.prompt, PROMPT_SHOWN))
    embed = discord.Embed(title=title, description=prompt, colour=colour)
    embed.add_field(name="Model", value=model_name)
    embed.add_field(name="Size", value=job.params.size)
    embed.add_field(name="Length", value=f"{job.params.seconds} s")
    # The parent is shown by number (the message cannot look it up); the part is the chain's
    # length so far as this job knows it.
    origin = lineage_text(job, job.parent_id, job.chain_part or 1)
    embed.set_footer(text=f"Job #{job.id} · {origin}" if origin else f"Job #{job.id}")
    if job.thumbnail:
        # The first keyframe, uploaded with the first response and kept until the video replaces it.
        embed.set_thumbnail(url=f"attachment://{job.thumbnail}")
    return embed


def ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def progress_embed(
    job: Job, now: float, model_name: str, progress: Progress | None = None
) -> discord.Embed:
    embed = _base(job, "Making your video", COLOR_PROGRESS, model_name)
    status = status_text(job)
    if progress is not None and progress.place is not None and job.state is JobState.QUEUED:
        status = f"⏳ Waiting: {ordinal(progress.place)} in line"
    embed.add_field(name="Status", value=status)
    embed.add_field(name="Elapsed", value=format_duration(now - job.created_at))
    if progress is not None and progress.eta_seconds is not None:
        embed.add_field(name="Ready in", value=f"about {format_duration(progress.eta_seconds)}")
    return embed


def result_embed(job: Job, model_name: str, *, link_only: bool) -> discord.Embed:
    embed = _base(job, "Your video is ready", COLOR_DONE, model_name)
    if job.params.seed is not None:
        embed.add_field(name="Seed", value=str(job.params.seed))
    start = job.submitted_at or job.created_at
    if job.finished_at is not None:
        embed.add_field(name="Generated in", value=format_duration(job.finished_at - start))
    if job.cost_usd is not None:
        embed.add_field(name="Cost", value=f"${job.cost_usd:.2f}")
    if not link_only:
        embed.set_thumbnail(url=None)  # the upload replaces the keyframe attachment
    if link_only and job.video_url:
        embed.add_field(
            name="Download",
            value=f"The video is larger than this server's upload limit. [Download it from "
            f"Together]({job.video_url}): the link expires, so save it soon.",
            inline=False,
        )
    return embed


def failure_embed(job: Job, model_name: str) -> discord.Embed:
    if job.state is JobState.TIMED_OUT:
        title, colour = "The video took too long", COLOR_FAILED
    elif job.state is JobState.CANCELLED:
        title, colour = "Cancelled", COLOR_STOPPED
    else:
        title, colour = "The video could not be made", COLOR_FAILED
    embed = _base(job, title, colour, model_name)
    reason = job.failure_reason or "No reason was given."
    embed.add_field(name="Why", value=shown_reason(reason), inline=False)
    return embed


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
HISTORY_TITLE = "Your videos on this server"
# An embed's description holds at most 4096 characters and the whole embed 6000.
DESCRIPTION_LIMIT = 4096
EMBED_LIMIT = 6000
# A prompt in a page's list, tried in this order until the page fits (0: left out).
LIST_PROMPT_SHOWN = (150, 100, 60, 30, 0)
MODEL_NAME_SHOWN = 60
DETAIL_PROMPT_SHOWN = 2500
NEGATIVE_SHOWN = 800
_MEDIA_WORDS = {
    "first_frame": "first frame",
    "last_frame": "last frame",
    "reference": "reference image",
    "video": "video",
    "soundtrack": "soundtrack",
}


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of a member's jobs: newest first, with where it sits among all of them."""

    jobs: Sequence[Job]
    position: int  # of jobs[0], counted from the newest (1)
    total: int
    has_newer: bool
    has_older: bool


def history_entry(job: Job, model_name: str, prompt_shown: int) -> str:
    """'**#12** · Model · delivered · <t:…:R> · $0.28 · [message](…)', then the prompt quoted
    (the cost once Together has reported it)."""
    parts = [
        f"**#{job.id}**",
        _escaped(shorten(model_name, MODEL_NAME_SHOWN)),
        STATE_WORDS[job.state],
        f"<t:{int(job.created_at)}:R>",
    ]
    if job.cost_usd is not None:
        parts.append(money(job.cost_usd))
    link = message_link(job)
    if link:
        parts.append(f"[message]({link})")
    line = " · ".join(parts)
    prompt = shown_text(job.params.prompt, prompt_shown) if prompt_shown else ""
    return f"{line}\n> {prompt}" if prompt else line


def history_embed(
    page: HistoryPage, allowance: Allowance, model_name: Callable[[str], str]
) -> discord.Embed:
    """A page of /videos: what is left, then each job; within Discord's embed limits."""
    embed = discord.Embed(title=HISTORY_TITLE, colour=COLOR_PROGRESS)
    head = allowance_text(allowance)
    if not page.jobs:
        embed.description = f"{head}\n\nYou have not made any videos here yet. Try /video!"
        return embed
    last = page.position + len(page.jobs) - 1
    embed.set_footer(
        text=f"Videos {page.position}–{last} of {page.total} · /videos job:<number> shows one"
        " in full"
    )
    for prompt_shown in LIST_PROMPT_SHOWN:
        entries = [history_entry(job, model_name(job.model), prompt_shown) for job in page.jobs]
        embed.description = "\n\n".join([head, *entries])
        if len(embed.description) <= DESCRIPTION_LIMIT and len(embed) <= EMBED_LIMIT:
            break
    else:  # unreachable with names cut to MODEL_NAME_SHOWN; never send what Discord refuses
        embed.description = shorten(embed.description or "", DESCRIPTION_LIMIT)
    return embed


def lineage_text(job: Job, parent_number: int | None, chain_size: int) -> str | None:
    """Where a job comes from, in words ('Extended from #12 · part 2 of 3').

    ``parent_number`` is the parent's id when it is known on this server (None: it is not),
    ``chain_size`` the number of parts in the job's chain (or in the chain it starts).
    """
    of = f"#{parent_number}" if parent_number is not None else "an earlier video"
    match job.derivation:
        case Derivation.RETRY:
            return f"Retry of {of}"
        case Derivation.REMIX:
            return f"Remix of {of}"
        case Derivation.EXTEND:
            words = f"Extended from {of}"
            if job.chain_part is not None:
                words += f" · part {job.chain_part} of {max(chain_size, job.chain_part)}"
            return words
        case Derivation.JOIN:
            chain = job.chain_id if job.chain_id is not None else parent_number
            return f"Joined from #{chain}'s chain" if chain is not None else "Joined from a chain"
        case Derivation.ANIMATE:
            return "Animated from an image"
        case Derivation.EDIT:
            return "Edit of a video"
    return f"Part 1 of {chain_size}" if chain_size > 1 else None


def _or_default(value: object) -> str:
    return "model default" if value is None else str(value)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "not yet"
    return f"<t:{int(timestamp)}:f> (<t:{int(timestamp)}:R>)"


def job_detail_embed(job: Job, model_name: str, lineage: str | None) -> discord.Embed:
    """/videos job:<number>: every option of one job, where it stands, what it cost, where it
    comes from. Untrusted text is escaped and cut so the embed stays within 6000 characters."""
    params = job.params
    failed = job.state in (JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED)
    embed = discord.Embed(
        title=f"Video #{job.id}",
        description=shown_text(params.prompt, DETAIL_PROMPT_SHOWN),
        colour=COLOR_FAILED if failed else COLOR_DONE if job.state.is_final else COLOR_PROGRESS,
    )
    add = embed.add_field
    add(name="Model", value=_escaped(shorten(model_name, MODEL_NAME_SHOWN)))
    add(name="State", value=STATE_WORDS[job.state])
    add(name="By", value=f"<@{job.user_id}>")
    if job.failure_reason:
        add(name="Why", value=shown_reason(job.failure_reason), inline=False)
    if params.resolution is not None:
        add(name="Resolution", value=f"{params.resolution} · {params.ratio or 'model default'}")
    else:
        add(name="Size", value=params.size)
    add(name="Length", value=f"{params.seconds} s")
    add(name="Seed", value=str(params.seed) if params.seed is not None else "random")
    add(name="Steps", value=_or_default(params.steps))
    add(name="Guidance", value=_or_default(params.guidance_scale))
    add(name="Frames per second", value=_or_default(params.fps))
    add(name="Format", value=params.output_format)
    add(name="Quality", value=_or_default(params.output_quality))
    audio = {None: _or_default(None), True: "yes", False: "no"}[params.generate_audio]
    add(name="Sound", value=audio)
    negative = params.negative_prompt
    add(
        name="Negative prompt",
        value=shown_text(negative, NEGATIVE_SHOWN) if negative else "none",
        inline=False,
    )
    media = ", ".join(_MEDIA_WORDS.get(kind, kind) for kind in params.media)
    add(name="Steered by", value=media or "words only")
    reported = f"reported {money(job.cost_usd)}" if job.cost_usd is not None else "not reported"
    add(name="Cost", value=f"estimated {money(job.estimated_cost_usd)} · {reported}")
    add(name="Created", value=_when(job.created_at))
    add(name="Finished", value=_when(job.finished_at))
    link = message_link(job)
    add(name="Message", value=f"[jump to it]({link})" if link else "none")
    if lineage:
        add(name="Made from", value=lineage, inline=False)
    if len(embed) > EMBED_LIMIT:  # cannot happen with the limits above; keep Discord's anyway
        embed.description = shorten(embed.description or "", 500)
    return embed
