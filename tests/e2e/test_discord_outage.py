"""Discord's REST API down while a paid video is ready, and hostile or broken downloads.

The real bot (discord.py, httpx, SQLite) against both stand-ins over loopback.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.discord_api import DiscordSandbox, RecordedRequest
from sandbox.harness import TOGETHER_KEY, Stack, run_bot
from sandbox.together import JobScript, TogetherSandbox
from storage.models import JobState
from tests.e2e.conftest import FAST_JOB, StackFactory
from tests.e2e.test_video_flow import answered, finished, stored

OUTAGE_SECONDS = 8.0


def video_uploads(stack: Stack, job_id: int) -> list[RecordedRequest]:
    name = f"video-{job_id}.mp4"
    return [
        r
        for r in stack.discord.requests
        if r.status == 200 and any(f.filename == name for f in r.files)
    ]


async def test_a_discord_outage_as_the_video_finishes_delays_it_and_uploads_it_once(
    stack: Stack,
) -> None:
    interaction = await stack.video(prompt="a lighthouse in a storm")
    message = await answered(stack, interaction)
    job_id = (await stack.bot.jobs.recent_for_member(stack.discord.guild.id, stack.member.id))[0].id
    # The outage starts as Together finishes the job.
    await stack.discord.wait_for(
        lambda: any(job.status == "completed" for job in stack.together.jobs.values()),
        timeout=30.0,
    )
    stack.discord.outage_for(OUTAGE_SECONDS)
    await stack.discord.wait_for(lambda: stack.discord.outage_refusals >= 2, timeout=30.0)
    during = await stack.bot.jobs.get(job_id)
    assert during is not None and during.state is JobState.DELIVERING, "not failed, waiting"
    await stack.discord.wait_for(lambda: not stack.discord.in_outage, timeout=30.0)

    embed = await finished(stack, message)  # within one backoff interval of Discord's return
    assert embed["title"] == "Your video is ready"
    job = await stored(stack.bot.jobs, job_id, JobState.DELIVERED)
    assert job.delivery == "attachment"
    assert len(video_uploads(stack, job_id)) == 1, "uploaded once"
    downloads = [j.downloads for j in stack.together.jobs.values() if j.id == job.together_id]
    assert downloads == [1], "the file was kept through the outage, not fetched again"
    assert [a.filename for a in message.attachments] == [f"video-{job_id}.mp4"]
    assert job.interaction_token == ""


@pytest.mark.parametrize(
    ("script", "why"),
    [
        (
            JobScript(
                queue_seconds=0.2, run_seconds=0.5, redirect_to="http://169.254.169.254/latest"
            ),
            "not allowed to download from",
        ),
        (
            JobScript(queue_seconds=0.2, run_seconds=0.5, video_body=b"<html>not a video</html>"),
            "not a valid MP4 video",
        ),
    ],
    ids=["redirect-to-metadata-service", "not-a-video"],
)
async def test_a_hostile_or_broken_link_fails_the_job_and_uploads_nothing(
    make_stack: StackFactory, script: JobScript, why: str
) -> None:
    stack = await make_stack(together_options={"default_script": script})
    interaction = await stack.video(prompt="a harbour at dawn")
    message = await answered(stack, interaction)
    embed = await finished(stack, message)
    assert embed["title"] == "The video could not be made"
    assert why in {f["name"]: f["value"] for f in embed["fields"]}["Why"]
    assert not any(f for r in stack.discord.requests for f in r.files if "video-" in f.filename)


async def test_a_bot_started_during_an_outage_waits_for_discord_and_then_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        DiscordSandbox() as discord_sb,
        TogetherSandbox(api_key=TOGETHER_KEY, default_script=FAST_JOB) as together_sb,
    ):
        discord_sb.outage_for(3.0)  # a restart while Discord's REST API is down
        async with run_bot(discord_sb, together_sb, tmp_path) as (_bot, _task):
            assert discord_sb.outage_refusals >= 1, "the first log-in met the outage"
            assert "Discord cannot be reached to log in" in caplog.text
            member = discord_sb.add_member(discord_sb.guild, "member")
            interaction = await discord_sb.slash_command(
                "video", {"prompt": "a kite over dunes"}, member=member
            )
            await discord_sb.wait_for(lambda: interaction.original_message is not None)
            message = interaction.original_message
            assert message is not None
            await discord_sb.wait_for(
                lambda: message.embeds[0].get("title") == "Your video is ready", timeout=30.0
            )


async def test_a_deleted_progress_message_is_replaced_and_gets_the_video(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(
        together_options={"default_script": JobScript(queue_seconds=0.3, run_seconds=3.0)}
    )
    interaction = await stack.video(prompt="a windmill at noon")
    first = await answered(stack, interaction)
    stack.discord.delete_message(first)  # a moderator tidies the channel
    job = (await stack.bot.jobs.recent_for_member(stack.discord.guild.id, stack.member.id))[0]

    delivered = await stored(stack.bot.jobs, job.id, JobState.DELIVERED)
    assert delivered.message_id is not None and delivered.message_id != first.id
    replacement = stack.discord.messages[delivered.message_id]
    assert replacement.channel_id == first.channel_id and not replacement.deleted
    assert [a.filename for a in replacement.attachments] == [f"video-{job.id}.mp4"]
    assert len(video_uploads(stack, job.id)) == 1


async def test_a_deleted_channel_fails_the_job_with_its_reason_and_is_not_retried(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(
        together_options={"default_script": JobScript(queue_seconds=0.3, run_seconds=2.0)}
    )
    interaction = await stack.video(prompt="a canal in fog")
    message = await answered(stack, interaction)
    job = (await stack.bot.jobs.recent_for_member(stack.discord.guild.id, stack.member.id))[0]
    stack.discord.delete_channel(stack.discord.state.channels[message.channel_id])

    failed = await stored(stack.bot.jobs, job.id, JobState.FAILED)
    assert failed.delivery == "failed"
    assert "the channel was deleted" in (failed.failure_reason or "")
    for _ in range(100):  # the end cannot be shown: it counts as told, not retried for ever
        if (current := await stack.bot.jobs.get(job.id)) is not None and current.announced:
            break
        await asyncio.sleep(0.05)
    assert current is not None and current.announced and current.interaction_token == ""
    assert not video_uploads(stack, job.id)
