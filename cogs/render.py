"""Embeds for a job's message: pure functions of the job and the time."""

from __future__ import annotations

import discord

from bot.engine import Progress
from bot.together.models import clean_text
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
    embed.set_footer(text=" · ".join([f"Job #{job.id}", *lineage(job)]))
    if job.thumbnail:
        # The first keyframe, uploaded with the first response and kept until the video replaces it.
        embed.set_thumbnail(url=f"attachment://{job.thumbnail}")
    return embed


def lineage(job: Job) -> list[str]:
    """Where a job comes from, in words: ["Extended from #12", "part 2"]."""
    parent = f"#{job.parent_id}" if job.parent_id is not None else "another video"
    if job.derivation is Derivation.EXTEND:
        return [f"Extended from {parent}", f"part {job.chain_part or 2}"]
    if job.derivation is Derivation.JOIN:
        return [f"Parts 1 to {job.chain_part or 2} of #{job.chain_id or job.parent_id} joined"]
    words = {
        Derivation.RETRY: f"Retry of {parent}",
        Derivation.REMIX: f"Remix of {parent}",
        Derivation.ANIMATE: "Animated from an image",
        Derivation.EDIT: "Edit of a video",
    }
    return [words[job.derivation]] if job.derivation is not None else []


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
    text = clean_text(reason, limit)
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
