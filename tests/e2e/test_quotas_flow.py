"""Quotas and moderator controls through the sandbox: the real bot, real SQLite."""

from __future__ import annotations

import re
from typing import Any

from sandbox.discord_api import Interaction, Member
from sandbox.harness import Stack
from sandbox.together import JobScript
from tests.e2e.test_video_flow import answered, finished

MANAGE_GUILD = 1 << 5
EPHEMERAL = 64
SLOW_JOB = JobScript(queue_seconds=30, run_seconds=30)


async def admin(stack: Stack, member: Member, path: tuple[str, ...], **options: Any) -> str:
    interaction = await stack.discord.slash_command(
        "videoadmin", options, member=member, subcommand=path
    )
    return await private_reply(stack, interaction)


async def private_reply(stack: Stack, interaction: Interaction) -> str:
    message = await answered(stack, interaction)
    assert interaction.ephemeral and message.flags & EPHEMERAL, message.content
    return str(message.content)


def moderator(stack: Stack) -> Member:
    return stack.discord.add_member(stack.discord.guild, "mod", permissions=MANAGE_GUILD)


async def test_member_without_manage_server_is_refused_and_nothing_changes(stack: Stack) -> None:
    text = await admin(stack, stack.member, ("quota",), user_daily=100)
    assert text == "You need the Manage Server permission to use /videoadmin."
    limits = await stack.bot.server_settings.limits(stack.discord.guild.id)
    assert limits.user_daily is None
    assert await stack.bot.server_settings.audit(stack.discord.guild.id) == []
    # The command is hidden from such members by default, too.
    command = next(c for c in stack.discord.commands if c["name"] == "videoadmin")
    assert int(command["default_member_permissions"]) == MANAGE_GUILD


async def test_daily_quota_refuses_with_usage_and_next_slot(stack: Stack) -> None:
    mod = moderator(stack)
    text = await admin(stack, mod, ("quota",), user_daily=1, monthly_budget_usd=50)
    assert "Videos per member per 24 h: 1" in text and "Budget per 30 days: $50.00" in text
    first = await answered(stack, await stack.video(prompt="one"))
    await finished(stack, first)
    refusal = await private_reply(stack, await stack.video(prompt="two"))
    assert "1 of your 1" in refusal
    assert re.search(r"<t:\d+:R>", refusal), refusal
    assert len(stack.together.posts()) == 1
    audit = await admin(stack, mod, ("audit",))
    assert f"<@{mod.id}> quota: " in audit and "user_daily=1" in audit


async def test_role_override_and_concurrent_limit(stack: Stack) -> None:
    mod = moderator(stack)
    patron = stack.discord.add_role(stack.discord.guild, "Patron")
    member = stack.discord.add_member(stack.discord.guild, "patron", roles=[patron])
    await admin(stack, mod, ("quota",), user_daily=1, user_concurrent=5)
    text = await admin(stack, mod, ("role_quota",), role=patron, user_daily=3)
    assert f"<@&{patron.id}>: 3 videos per member per 24 h" in text
    stack.together.script_next(SLOW_JOB, SLOW_JOB, SLOW_JOB)
    for n in range(3):
        await answered(stack, await stack.video(member, prompt=f"video {n}"))
    refusal = await private_reply(stack, await stack.video(member, prompt="one more"))
    assert "3 of your 3" in refusal
    # Without the role the server's limit of 1 applies.
    await answered(stack, await stack.video(prompt="mine"))
    refusal = await private_reply(stack, await stack.video(prompt="mine again"))
    assert "1 of your 1" in refusal


async def test_models_channels_and_blocking(stack: Stack) -> None:
    mod = moderator(stack)
    guild = stack.discord.guild
    text = await admin(stack, mod, ("models", "deny"), model="google/veo-3.0")
    assert "Veo 3.0 is now denied here." in text
    refusal = await private_reply(stack, await stack.video(prompt="x", model="google/veo-3.0"))
    assert refusal.startswith("`model`: Veo 3.0 is not available on this server.")
    choices = await stack.discord.autocomplete(
        "video", {"prompt": "x", "model": "veo"}, "model", member=stack.member
    )
    assert "google/veo-3.0" not in {c["value"] for c in choices}
    assert "google/veo-2.0" in {c["value"] for c in choices}

    studio = stack.discord.add_channel(guild, "studio")
    await admin(stack, mod, ("channels",), channel=studio)
    refusal = await private_reply(stack, await stack.video(prompt="x"))
    assert refusal == f"/video works only in <#{studio.id}> on this server."
    await answered(
        stack,
        await stack.discord.slash_command(
            "video", {"prompt": "in the studio"}, member=stack.member, channel=studio
        ),
    )

    await admin(stack, mod, ("block",), user=stack.member)
    refusal = await private_reply(
        stack,
        await stack.discord.slash_command(
            "video", {"prompt": "x"}, member=stack.member, channel=studio
        ),
    )
    assert "You cannot use /video in this server" in refusal
    await admin(stack, mod, ("unblock",), user=stack.member)
    # The one accepted job is submitted after its answer, asynchronously: wait for its POST.
    await stack.discord.wait_for(lambda: bool(stack.together.posts()))
    assert len(stack.together.posts()) == 1


async def test_budget_counts_estimates_then_reported_cost(stack: Stack) -> None:
    mod = moderator(stack)
    # Hailuo 02 is estimated at $0.49; the sandbox reports $0.28 once a video is done.
    await admin(stack, mod, ("quota",), monthly_budget_usd=0.8)
    first = await answered(stack, await stack.video(prompt="one"))
    await finished(stack, first)
    second = await answered(stack, await stack.video(prompt="two"))  # 0.28 + 0.49 <= 0.8
    assert not second.flags & EPHEMERAL
    refusal = await private_reply(stack, await stack.video(prompt="three"))
    assert "monthly video budget" in refusal and "$0.80" in refusal


async def test_usage_jobs_and_member_history(stack: Stack) -> None:
    mod = moderator(stack)
    done = await answered(stack, await stack.video(prompt="finished one"))
    await finished(stack, done)
    stack.together.script_next(SLOW_JOB)
    await answered(stack, await stack.video(prompt="still going"))

    usage = await admin(stack, mod, ("usage",))
    assert "Last 24 hours: 2 videos" in usage
    assert f"1. <@{stack.member.id}>: 2 videos" in usage
    jobs = await admin(stack, mod, ("jobs",))
    assert "**1 unfinished video**" in jobs and "#2" in jobs
    asked = await stack.discord.slash_command("videos", {}, member=stack.member)
    await private_reply(stack, asked)
    assert asked.original_message is not None
    mine = str(asked.original_message.embeds[0]["description"])
    assert "Videos left today: **3** of 5" in mine and "Unfinished: 1 of 2 at once" in mine
    assert "**#1** · MiniMax Hailuo 02 · delivered" in mine and " · $0.28 · " in mine
    assert "**#2** · MiniMax Hailuo 02" in mine
    assert f"https://discord.com/channels/{stack.discord.guild.id}/" in mine


async def test_fifty_simultaneous_commands_accept_exactly_the_quota(stack: Stack) -> None:
    await admin(stack, moderator(stack), ("quota",), user_daily=5, user_concurrent=50)
    stack.together.script_next(*[SLOW_JOB] * 5)
    interactions = [await stack.video(prompt=f"race {n}") for n in range(50)]
    await stack.discord.wait_for(
        lambda: all(i.original_message is not None for i in interactions), timeout=30
    )
    public = [i for i in interactions if not i.ephemeral]
    private = [i for i in interactions if i.ephemeral]
    assert (len(public), len(private)) == (5, 45)
    assert all("5 of your 5" in str(i.original_message.content) for i in private)  # type: ignore[union-attr]
    await stack.discord.wait_for(lambda: len(stack.together.posts()) == 5)
    jobs = await stack.bot.jobs.recent_for_member(stack.discord.guild.id, stack.member.id, 100)
    assert len(jobs) == 5
