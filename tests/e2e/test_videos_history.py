"""/videos through the sandbox: pages a member turns with persistent buttons, one job in full."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bot.client import VideoBot
from sandbox.discord_api import DiscordSandbox, Interaction, Member, Message
from sandbox.harness import TOGETHER_KEY, Stack, run_bot
from sandbox.together import TogetherSandbox
from storage.models import Derivation, Job, JobState, NewJob, VideoParams
from tests.e2e.conftest import FAST_JOB
from tests.e2e.test_quotas_flow import EPHEMERAL, moderator, private_reply
from tests.e2e.test_video_flow import answered, finished, stored

UPDATE_MESSAGE = 7  # the interaction response that edits the message the button is on


async def insert_jobs(stack: Stack, count: int, guild_id: int | None = None) -> list[Job]:
    """The member's jobs made quickly: stored as /video would store them, then delivered."""
    return await insert(stack.bot, stack.discord, stack.member, count, guild_id)


async def insert(
    bot: VideoBot, discord_sb: DiscordSandbox, member: Member, count: int, guild_id: int | None
) -> list[Job]:
    guild = discord_sb.guild
    jobs = []
    for n in range(count):
        now = time.time()
        job = await bot.jobs.create(
            NewJob(
                guild_id=guild_id or guild.id,
                channel_id=guild.channels[0].id,
                user_id=member.id,
                application_id=discord_sb.state.application_id,
                interaction_id=n + 1,
                interaction_token="",
                upload_limit=10 * 1024 * 1024,
                model="minimax/hailuo-02",
                params=VideoParams(prompt=f"inserted video {n}", width=1366, height=768, seconds=6),
                created_at=now,
                deadline_at=now + 1800,
                estimated_cost_usd=0.49,
            )
        )
        done = await bot.jobs.transition(job.id, JobState.QUEUED, JobState.DELIVERED, now)
        assert done is not None
        jobs.append(done)
    return jobs


async def videos(stack: Stack, member: Member | None = None, **options: Any) -> Message:
    interaction = await stack.discord.slash_command(
        "videos", options, member=member or stack.member
    )
    message = await answered(stack, interaction)
    assert interaction.ephemeral and message.flags & EPHEMERAL, message.content
    return message


def listed(message: Message) -> list[int]:
    """The job numbers a page lists, in order."""
    lines = str(message.embeds[0]["description"]).split("\n")
    return [int(line.split(" · ")[0].strip("*#")) for line in lines if line.startswith("**#")]


def buttons(message: Message) -> dict[str, tuple[str, bool]]:
    """label -> (custom id, disabled)."""
    found = {}
    for row in message.components:
        for button in row["components"]:
            found[button["label"]] = (button["custom_id"], bool(button.get("disabled")))
    return found


async def turned(stack: Stack, click: Interaction, message: Message, edits: int) -> None:
    await stack.discord.wait_for(lambda: message.edit_count > edits)
    assert click.responded == UPDATE_MESSAGE, "the page is edited in place"


async def test_twelve_jobs_page_by_page_with_real_videos_among_them(stack: Stack) -> None:
    first = await answered(stack, await stack.video(prompt="the very **first** @everyone"))
    second = await answered(stack, await stack.video(prompt="the second"))
    await finished(stack, first)
    await finished(stack, second)
    inserted = await insert_jobs(stack, 10)
    member = stack.member

    page = await videos(stack)
    embed = page.embeds[0]
    assert embed["title"] == "Your videos on this server"
    assert "Videos left today: **0** of 5 (12 made in the last 24 hours)" in embed["description"]
    assert "Unfinished: 0 of 2 at once" in embed["description"]
    assert listed(page) == [job.id for job in reversed(inserted)]
    assert embed["footer"]["text"].startswith("Videos 1–10 of 12")
    newest, oldest = inserted[-1].id, inserted[0].id
    assert buttons(page) == {
        "Previous": (f"videos:newer:{member.id}:{newest}", True),
        "Next": (f"videos:older:{member.id}:{oldest}", False),
    }

    # Someone else pressing Next is told privately; the page stays as it was.
    stranger = stack.discord.add_member(stack.discord.guild, "stranger")
    edits = page.edit_count
    note = await private_reply(
        stack,
        await stack.discord.click_button(
            page, f"videos:older:{member.id}:{oldest}", member=stranger
        ),
    )
    assert note == f"These are <@{member.id}>'s videos; /videos shows yours."
    assert page.edit_count == edits and listed(page) == [job.id for job in reversed(inserted)]

    # A job made meanwhile does not shift the pages anchored on job numbers.
    await insert_jobs(stack, 1)
    click = await stack.discord.click_button(
        page, f"videos:older:{member.id}:{oldest}", member=member
    )
    await turned(stack, click, page, edits)
    assert listed(page) == [2, 1]
    description = page.embeds[0]["description"]
    assert f"https://discord.com/channels/{stack.discord.guild.id}/" in description
    assert r"the very \*\*first\*\* @" + "\u200beveryone" in description
    assert "MiniMax Hailuo 02 · delivered" in description
    assert page.embeds[0]["footer"]["text"].startswith("Videos 12–13 of 13")
    assert buttons(page) == {
        "Previous": (f"videos:newer:{member.id}:2", False),
        "Next": (f"videos:older:{member.id}:1", True),
    }

    edits = page.edit_count
    click = await stack.discord.click_button(page, f"videos:newer:{member.id}:2", member=member)
    await turned(stack, click, page, edits)
    assert listed(page) == [job.id for job in reversed(inserted)], "the same page as before"
    assert buttons(page)["Previous"] == (f"videos:newer:{member.id}:{newest}", False)


async def test_the_page_buttons_work_after_a_restart(tmp_path: Path) -> None:
    """The custom id is all a button needs: the new process reads owner and anchor from it."""
    async with (
        DiscordSandbox() as discord_sb,
        TogetherSandbox(api_key=TOGETHER_KEY, default_script=FAST_JOB) as together_sb,
    ):
        member = discord_sb.add_member(discord_sb.guild, "member")
        async with run_bot(discord_sb, together_sb, tmp_path) as (bot, _):
            await insert(bot, discord_sb, member, 11, None)
            asked = await discord_sb.slash_command("videos", {}, member=member)
            await discord_sb.wait_for(lambda: asked.original_message is not None)
            page = asked.original_message
            assert page is not None and listed(page) == list(range(11, 1, -1))
        async with run_bot(discord_sb, together_sb, tmp_path):
            custom_id, disabled = buttons(page)["Next"]
            assert custom_id == f"videos:older:{member.id}:2" and not disabled
            edits = page.edit_count
            click = await discord_sb.click_button(page, custom_id, member=member)
            await discord_sb.wait_for(lambda: page.edit_count > edits)
            assert click.responded == UPDATE_MESSAGE
            assert listed(page) == [1]


async def test_no_videos_yet_has_no_buttons(stack: Stack) -> None:
    page = await videos(stack)
    assert page.embeds[0]["description"].endswith(
        "You have not made any videos here yet. Try /video!"
    )
    assert page.components == []


async def test_one_job_in_full_for_its_member_or_a_moderator_only(stack: Stack) -> None:
    first = await answered(stack, await stack.video(prompt="a lighthouse", seed=7))
    await finished(stack, first)
    job = await stored(stack.bot.jobs, 1, JobState.DELIVERED)
    guild = stack.discord.guild
    retry = await stack.bot.jobs.create(
        NewJob(
            guild_id=guild.id,
            channel_id=guild.channels[0].id,
            user_id=stack.member.id,
            application_id=stack.discord.state.application_id,
            interaction_id=99,
            interaction_token="",
            upload_limit=job.upload_limit,
            model=job.model,
            params=job.params,
            created_at=time.time(),
            deadline_at=time.time() + 1800,
            parent_id=job.id,
            derivation=Derivation.RETRY,
        )
    )

    mine = (await videos(stack, job=1)).embeds[0]
    assert mine["title"] == "Video #1" and mine["description"] == "a lighthouse"
    fields = {field["name"]: field["value"] for field in mine["fields"]}
    assert fields["Model"] == "MiniMax Hailuo 02" and fields["State"] == "delivered"
    assert fields["Seed"] == "7" and fields["Cost"] == "estimated $0.49 · reported $0.28"
    assert (
        fields["Message"]
        == f"[jump to it](https://discord.com/channels/{guild.id}/{guild.channels[0].id}/{first.id})"
    )

    derived = (await videos(stack, job=retry.id)).embeds[0]
    assert {f["name"]: f["value"] for f in derived["fields"]}["Made from"] == "Retry of #1"

    by_mod = (await videos(stack, moderator(stack), job=1)).embeds[0]
    assert by_mod["title"] == "Video #1"
    assert {f["name"]: f["value"] for f in by_mod["fields"]}["By"] == f"<@{stack.member.id}>"

    other = stack.discord.add_member(guild, "other")
    refused = await private_reply(
        stack, await stack.discord.slash_command("videos", {"job": 1}, member=other)
    )
    missing = await private_reply(
        stack, await stack.discord.slash_command("videos", {"job": 404}, member=stack.member)
    )
    assert refused == "No job #1 of yours on this server."
    assert missing == "No job #404 of yours on this server.", "the same words: nothing revealed"


async def test_a_job_from_another_server_is_not_found(stack: Stack) -> None:
    """The member's own job, made on another server: neither shown nor listed here."""
    [elsewhere] = await insert_jobs(stack, 1, guild_id=stack.discord.guild.id + 1)
    text = await private_reply(
        stack,
        await stack.discord.slash_command("videos", {"job": elsewhere.id}, member=stack.member),
    )
    assert text == f"No job #{elsewhere.id} of yours on this server."
    assert listed(await videos(stack)) == []
