"""Buttons, restarts and exactly-once delivery, through the sandbox with the real bot."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sandbox.discord_api import DiscordSandbox
from sandbox.harness import TOGETHER_KEY, Stack, run_bot
from sandbox.together import JobScript, TogetherSandbox
from storage.models import JobState
from tests.e2e.conftest import FAST_JOB, StackFactory
from tests.e2e.test_quotas_flow import moderator, private_reply
from tests.e2e.test_video_flow import answered, finished, stored

SLOW_JOB = JobScript(queue_seconds=30, run_seconds=30)


def video_uploads(discord_sb: DiscordSandbox) -> list[str]:
    """File names of every successful upload the bot made."""
    return [f.filename for r in discord_sb.requests if r.status == 200 for f in r.files]


def set_state(database: Path, job_id: int, state: str) -> None:
    """Rewrite a job's state behind the bot's back, as a badly timed crash would leave it."""
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE jobs SET state = ? WHERE id = ?", (state, job_id))


async def test_cancel_while_queued_refunds_and_never_submits(make_stack: StackFactory) -> None:
    stack = await make_stack(max_active_jobs=1)
    stack.together.script_next(SLOW_JOB)
    await answered(stack, await stack.video(prompt="the first, slow one"))
    # Answered is not yet sent: wait for the first job's POST, or the count below races it.
    await stored(stack.bot.jobs, 1, JobState.RUNNING)
    waiting = await answered(stack, await stack.video(prompt="the second, waiting"))
    assert "video:cancel:2" in waiting.custom_ids()

    stranger = stack.discord.add_member(stack.discord.guild, "stranger")
    refusal = await private_reply(
        stack, await stack.discord.click_button(waiting, "video:cancel:2", member=stranger)
    )
    assert refusal == f"Only <@{stack.member.id}> can cancel this video."

    await stack.discord.click_button(waiting, "video:cancel:2", member=stack.member)
    job = await stored(stack.bot.jobs, 2, JobState.CANCELLED)
    await stack.discord.wait_for(lambda: waiting.embeds[0]["title"] == "Cancelled")
    assert set(waiting.custom_ids()) == {"video:retry:2", "video:remix:2", "video:delete:2"}
    assert job.together_id is None
    sent = [post.body["prompt"] for post in stack.together.posts()]
    assert sent == ["the first, slow one"], "the cancelled job never reached Together"
    usage = await stack.bot.usage.member_usage(
        stack.discord.guild.id, stack.member.id, job.created_at + 1
    )
    assert usage.user_day == 1, "the cancelled job gave its place back"


async def test_cancel_button_goes_away_once_submitted(stack: Stack) -> None:
    stack.together.script_next(SLOW_JOB)
    interaction = await stack.video(prompt="already going")
    message = await answered(stack, interaction)
    first = next(
        r.json
        for r in stack.discord.requests
        if r.interaction_id == interaction.id and r.route.startswith("POST /interactions")
    )
    buttons = [c["custom_id"] for row in first["data"]["components"] for c in row["components"]]
    assert buttons == ["video:cancel:1"], "the first response offers Cancel"
    await stored(stack.bot.jobs, 1, JobState.RUNNING)
    # Together cannot cancel a job, so after submission there is nothing to press.
    await stack.discord.wait_for(lambda: message.custom_ids() == [])


async def test_retry_makes_a_new_counted_job_with_a_new_seed(stack: Stack) -> None:
    first = await answered(stack, await stack.video(prompt="try me twice", seed=7))
    await finished(stack, first)
    assert {"video:retry:1", "video:delete:1"} <= set(first.custom_ids())
    other = stack.discord.add_member(stack.discord.guild, "other")
    refusal = await private_reply(
        stack, await stack.discord.click_button(first, "video:retry:1", member=other)
    )
    assert refusal == f"Only <@{stack.member.id}> can retry this video."

    retry = await stack.discord.click_button(first, "video:retry:1", member=stack.member)
    second = await answered(stack, retry)
    assert not retry.ephemeral and second.id != first.id
    await finished(stack, second)
    bodies = [p.body for p in stack.together.posts()]
    assert [b["prompt"] for b in bodies] == ["try me twice", "try me twice"]
    assert bodies[0]["seed"] == 7 and bodies[1]["seed"] != 7
    job = await stored(stack.bot.jobs, 2, JobState.DELIVERED)
    assert job.user_id == stack.member.id and job.params.prompt == "try me twice"


async def test_retry_is_refused_when_the_quota_is_used_up(stack: Stack) -> None:
    mod = moderator(stack)
    await stack.discord.slash_command(
        "videoadmin", {"user_daily": 1}, member=mod, subcommand=("quota",)
    )
    await stack.discord.wait_for(
        lambda: any(i.responded for i in stack.discord.interactions.values())
    )
    first = await answered(stack, await stack.video(prompt="only one today"))
    await finished(stack, first)
    text = await private_reply(
        stack, await stack.discord.click_button(first, "video:retry:1", member=stack.member)
    )
    assert "1 of your 1" in text
    assert len(stack.together.posts()) == 1


async def test_delete_by_requester_or_moderator_only(stack: Stack) -> None:
    message = await answered(stack, await stack.video(prompt="delete me"))
    await finished(stack, message)
    other = stack.discord.add_member(stack.discord.guild, "other")
    refusal = await private_reply(
        stack, await stack.discord.click_button(message, "video:delete:1", member=other)
    )
    assert refusal == f"Only <@{stack.member.id}> can delete this video."
    assert not message.deleted
    await stack.discord.click_button(message, "video:delete:1", member=moderator(stack))
    await stack.discord.wait_for(lambda: message.deleted)


async def test_restart_resumes_jobs_buttons_and_delivers_once(tmp_path: Path) -> None:
    """Stop the bot mid-job, let Together finish while it is down, start it again."""
    async with (
        DiscordSandbox() as discord_sb,
        TogetherSandbox(api_key=TOGETHER_KEY, default_script=FAST_JOB) as together_sb,
    ):
        member = discord_sb.add_member(discord_sb.guild, "member")
        database = tmp_path / "bot.sqlite3"
        together_sb.script_next(JobScript(queue_seconds=0.5, run_seconds=3.0), FAST_JOB)
        async with run_bot(discord_sb, together_sb, tmp_path):
            running = await discord_sb.slash_command(
                "video", {"prompt": "survive a restart"}, member=member
            )
            done = await discord_sb.slash_command("video", {"prompt": "done before"}, member=member)
            await discord_sb.wait_for(lambda: running.original_message is not None)
            await discord_sb.wait_for(
                lambda: together_sb.posts() and len(together_sb.posts()) == 2, timeout=10
            )
            assert done.original_message is not None
            await discord_sb.wait_for(
                lambda: bool(done.original_message and done.original_message.attachments),
                timeout=30,
            )
        # Down: Together finishes job 1 meanwhile. Job 2 was delivered, but pretend the bot
        # died between the upload and the database write.
        set_state(database, 2, "delivering")
        with sqlite3.connect(database) as conn:
            assert conn.execute("SELECT state FROM jobs WHERE id = 1").fetchone()[0] == "running"
        uploads_before = video_uploads(discord_sb)
        async with run_bot(discord_sb, together_sb, tmp_path) as (bot, _):
            message = running.original_message
            assert message is not None
            await discord_sb.wait_for(lambda: bool(message.attachments), timeout=30)
            assert (await stored(bot.jobs, 1, JobState.DELIVERED)).delivery == "attachment"
            assert (await stored(bot.jobs, 2, JobState.DELIVERED)).delivery == "attachment"
            assert video_uploads(discord_sb) == [*uploads_before, "video-1.mp4"], (
                "job 2's video was already in its message: not uploaded again"
            )
            assert len(together_sb.posts()) == 2, "nothing was submitted again"
            # The buttons of a message posted before the restart still work.
            retry = await discord_sb.click_button(message, "video:retry:1", member=member)
            await discord_sb.wait_for(lambda: retry.original_message is not None)
            assert not retry.ephemeral


async def test_job_interrupted_while_submitting_is_failed_refunded_and_told(
    tmp_path: Path,
) -> None:
    async with (
        DiscordSandbox() as discord_sb,
        TogetherSandbox(api_key=TOGETHER_KEY, default_script=SLOW_JOB) as together_sb,
    ):
        member = discord_sb.add_member(discord_sb.guild, "member")
        database = tmp_path / "bot.sqlite3"
        async with run_bot(discord_sb, together_sb, tmp_path, max_active_jobs=1) as (bot, _):
            await discord_sb.slash_command("video", {"prompt": "first"}, member=member)
            second = await discord_sb.slash_command("video", {"prompt": "cut off"}, member=member)
            await discord_sb.wait_for(lambda: second.original_message is not None)
            for _ in range(200):  # the answer is recorded just after it is sent
                job = await bot.jobs.get(2)
                if job is not None and job.message_id is not None:
                    break
                await asyncio.sleep(0.05)
            assert job is not None and job.message_id is not None
        # The bot died while job 2's POST was in flight: it may or may not have reached Together.
        set_state(database, 2, "submitting")
        async with run_bot(discord_sb, together_sb, tmp_path) as (bot, _):
            job = await stored(bot.jobs, 2, JobState.FAILED)
            assert "not charged twice" in (job.failure_reason or "")
            message = second.original_message
            assert message is not None
            await discord_sb.wait_for(
                lambda: message.embeds[0]["title"] == "The video could not be made"
            )
            assert [p.body["prompt"] for p in together_sb.posts()] == ["first"]
            usage = await bot.usage.member_usage(discord_sb.guild.id, member.id, job.created_at + 1)
            assert usage.user_day == 1, "the interrupted job gave its place back"


async def test_gateway_disconnect_does_not_stop_delivery(stack: Stack) -> None:
    stack.together.script_next(JobScript(queue_seconds=0.3, run_seconds=3.0))
    message = await answered(stack, await stack.video(prompt="through a reconnect"))
    identifies = stack.discord.gateway.identifies
    await stack.discord.disconnect_gateway(resumable=False)
    embed = await finished(stack, message)
    assert embed["title"] == "Your video is ready"
    # And the bot takes commands again once it has identified anew (discord.py waits ~5 s).
    await stack.discord.wait_for(lambda: stack.discord.gateway.identifies > identifies, 20)
    await stack.discord.wait_until_ready(timeout=20)
    later = await answered(stack, await stack.video(prompt="after the reconnect"))
    assert not later.flags & 64
