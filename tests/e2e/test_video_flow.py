"""/video end to end: the real bot, discord.py, httpx and SQLite, against both stand-ins."""

from __future__ import annotations

import asyncio
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from sandbox.discord_api import Interaction, Message, RecordedRequest
from sandbox.harness import Stack
from sandbox.together import JobScript
from storage.jobs import JobRepository
from storage.models import Job, JobState
from tests.e2e.conftest import StackFactory

FIXTURE = Path(__file__).resolve().parents[2] / "sandbox" / "fixtures" / "sample.mp4"
DELIVERY_TIMEOUT = 30.0
EPHEMERAL = 64


def fields(message: Message) -> dict[str, str]:
    embed = message.embeds[0]
    return {f["name"]: f["value"] for f in embed.get("fields", [])}


async def answered(stack: Stack, interaction: Interaction) -> Message:
    await stack.discord.wait_for(lambda: interaction.original_message is not None)
    assert interaction.original_message is not None
    return interaction.original_message


async def finished(stack: Stack, message: Message) -> dict[str, Any]:
    """Wait until the message shows a final state; return its embed."""
    finals = ("Your video is ready", "The video could not be made", "The video took too long")
    await stack.discord.wait_for(
        lambda: message.embeds[0].get("title") in finals, timeout=DELIVERY_TIMEOUT
    )
    return message.embeds[0]


async def stored(jobs: JobRepository, job_id: int, state: JobState) -> Job:
    """The job once SQLite has it in `state` (the upload is written after it happens)."""
    job = None
    for _ in range(int(DELIVERY_TIMEOUT / 0.05)):
        job = await jobs.get(job_id)
        if job is not None and job.state is state:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {state} (last seen: {job})")


def edits_of(stack: Stack, message: Message) -> list[RecordedRequest]:
    return [
        r
        for r in stack.discord.requests
        if r.method == "PATCH" and r.path.endswith(f"/messages/{message.id}") and r.status == 200
    ]


async def test_member_flow_from_command_to_video(stack: Stack) -> None:
    interaction = await stack.video(
        prompt="a cat surfing a wave at sunset", model="minimax/hailuo-02"
    )
    message = await answered(stack, interaction)
    # The first response is public (the stand-in refuses one later than 3 s with 10062).
    assert interaction.responded == 4 and not interaction.ephemeral
    first = fields(message)
    assert message.embeds[0]["description"] == "a cat surfing a wave at sunset"
    assert first["Model"] == "MiniMax Hailuo 02"
    assert (first["Size"], first["Length"]) == ("1366x768", "6 s")
    assert "Status" in first and "Elapsed" in first

    embed = await finished(stack, message)
    assert embed["title"] == "Your video is ready"
    result = {f["name"]: f["value"] for f in embed["fields"]}
    assert result["Cost"] == "$0.28"
    assert [a.filename for a in message.attachments] == ["video-1.mp4"]
    assert message.attachments[0].data == FIXTURE.read_bytes()

    upload = next(r for r in stack.discord.requests if r.files)
    assert upload.route.startswith("PATCH /webhooks/")
    assert upload.files[0].filename == "video-1.mp4"
    assert upload.files[0].size <= 10 * 1024 * 1024

    job = await stored(stack.bot.jobs, 1, JobState.DELIVERED)
    assert job.delivery == "attachment"
    posts = stack.together.posts()
    assert len(posts) == 1
    assert posts[0].body == {
        "model": "minimax/hailuo-02",
        "prompt": "a cat surfing a wave at sunset",
        "width": 1366,
        "height": 768,
        "seconds": "6",
        "output_format": "MP4",
    }


async def test_progress_edits_follow_status_and_respect_the_interval(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(progress_edit_interval=1.0)
    stack.together.script_next(JobScript(queue_seconds=1.0, run_seconds=4.0))
    interaction = await stack.video(prompt="a slow sunrise over mountains")
    message = await answered(stack, interaction)
    await finished(stack, message)

    edits = edits_of(stack, message)
    statuses = [
        next((f["value"] for f in r.json["embeds"][0]["fields"] if f["name"] == "Status"), None)
        for r in edits
        if r.json and r.json.get("embeds")
    ]
    assert "⏳ Queued at Together" in statuses
    assert "🎬 Generating" in statuses
    # Edits: one per state change, plus at most one per interval while nothing changes.
    start = interaction.sent_at
    span = edits[-1].time - start
    state_changes = 5  # running, in_progress, delivering, delivered, plus provider queued
    assert len(edits) <= state_changes + math.ceil(span / 1.0) + 1


async def test_provider_failure_shows_its_reason(stack: Stack) -> None:
    stack.together.script_next(
        JobScript(
            queue_seconds=0.2,
            run_seconds=0.5,
            outcome="failed",
            error_message="The prompt was flagged by the safety system.",
        )
    )
    message = await answered(stack, await stack.video(prompt="something forbidden"))
    embed = await finished(stack, message)
    assert embed["title"] == "The video could not be made"
    why = {f["name"]: f["value"] for f in embed["fields"]}["Why"]
    assert why == "The prompt was flagged by the safety system."
    assert not message.attachments
    await stored(stack.bot.jobs, 1, JobState.FAILED)


async def test_rate_limited_edit_is_waited_out_and_retried(stack: Stack) -> None:
    stack.discord.fail_next("PATCH", "/webhooks/*", 429, retry_after=0.3, times=1)
    message = await answered(stack, await stack.video(prompt="a paper boat in the rain"))
    embed = await finished(stack, message)
    assert embed["title"] == "Your video is ready"
    statuses = [r.status for r in stack.discord.requests if r.route.startswith("PATCH /webhooks")]
    assert statuses[0] == 429
    assert 200 in statuses[1:]
    assert message.attachments


async def test_job_outliving_its_token_is_delivered_through_the_channel(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(discord_options={"token_ttl": 1.5})
    stack.together.script_next(JobScript(queue_seconds=0.2, run_seconds=3.0))
    message = await answered(stack, await stack.video(prompt="a long journey"))
    embed = await finished(stack, message)
    assert embed["title"] == "Your video is ready"
    upload = next(r for r in stack.discord.requests if r.files)
    assert upload.route == "PATCH /channels/{channel}/messages/{message}"
    assert [a.filename for a in message.attachments] == ["video-1.mp4"]
    # Once Discord said the token is dead, the bot stopped using it.
    dead = [r for r in stack.discord.requests if r.error_code == 50027]
    assert len(dead) == 1


async def test_video_over_the_upload_limit_is_posted_as_a_link(make_stack: StackFactory) -> None:
    stack = await make_stack(discord_options={"attachment_size_limit": 4096})
    message = await answered(stack, await stack.video(prompt="a big video"))
    embed = await finished(stack, message)
    assert embed["title"] == "Your video is ready"
    assert not message.attachments
    download = {f["name"]: f["value"] for f in embed["fields"]}["Download"]
    assert stack.together.base_url in download and "expires" in download
    assert not any(r.files for r in stack.discord.requests)
    job = await stored(stack.bot.jobs, 1, JobState.DELIVERED)
    assert job.delivery == "link"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"prompt": "   "}, "`prompt` is empty"),
        ({"prompt": "x", "steps": 5}, "`steps` must be between 10 and 50"),
        ({"prompt": "x", "steps": 500}, "`steps`"),
        ({"prompt": "x", "model": "acme/unknown"}, "no model called `acme/unknown`"),
        ({"prompt": "x", "model": "minimax/hailuo-02", "seconds": 7}, "`seconds`"),
    ],
)
async def test_invalid_options_are_refused_privately(
    stack: Stack, options: dict[str, Any], named: str
) -> None:
    interaction = await stack.video(**options)
    reply = await answered(stack, interaction)
    assert interaction.responded == 4 and interaction.ephemeral
    assert reply.flags & EPHEMERAL
    assert named in reply.content
    assert stack.together.posts() == []
    assert await stack.bot.jobs.get(1) is None


async def test_prompt_with_mentions_pings_nobody(stack: Stack) -> None:
    interaction = await stack.video(prompt="@everyone look at <@123> and <@&456> surfing")
    message = await answered(stack, interaction)
    await finished(stack, message)
    bodies = [
        r.json
        for r in stack.discord.requests
        if r.interaction_id == interaction.id and isinstance(r.json, dict) and "data" in r.json
    ]
    bodies += [r.json for r in edits_of(stack, message)]
    assert bodies
    for body in bodies:
        payload = body.get("data", body)
        assert payload["allowed_mentions"] == {"parse": []}


async def test_model_autocomplete(stack: Stack) -> None:
    choices = await stack.discord.autocomplete(
        "video", {"prompt": "x", "model": "kling"}, "model", member=stack.member
    )
    assert {c["value"] for c in choices} == {
        "kwaivgI/kling-2.1-master",
        "kwaivgI/kling-2.1-standard",
        "kwaivgI/kling-2.1-pro",
    }
    everything = await stack.discord.autocomplete(
        "video", {"prompt": "x", "model": ""}, "model", member=stack.member
    )
    assert 1 <= len(everything) <= 25


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
async def test_video_over_the_limit_is_reencoded_to_fit(make_stack: StackFactory) -> None:
    stack = await make_stack(discord_options={"attachment_size_limit": 100_000})
    stack.together.script_next(JobScript(queue_seconds=0.2, run_seconds=0.5, video_bytes=300_000))
    message = await answered(stack, await stack.video(prompt="a detailed video"))
    embed = await finished(stack, message)
    assert embed["title"] == "Your video is ready"
    assert [a.filename for a in message.attachments] == ["video-1.mp4"]
    video = message.attachments[0]
    assert video.size <= 100_000 and video.data[4:8] == b"ftyp"
    job = await stored(stack.bot.jobs, 1, JobState.DELIVERED)
    assert job.delivery == "attachment"
