"""Usage you can see, through the sandbox: /videoadmin usage's text and PNG chart after
delivered videos, and the allowance at the top of /videos."""

from __future__ import annotations

import io
import re
import time

from PIL import Image

from bot.reports.usage_chart import BAR, HEIGHT, WIDTH, usage_chart_png
from sandbox.discord_api import Member, Message
from sandbox.harness import Stack
from tests.e2e.test_quotas_flow import admin, moderator, private_reply
from tests.e2e.test_video_flow import answered, finished
from tests.e2e.test_videos_history import videos
from tests.unit.test_usage_chart import runs


async def usage(stack: Stack, mod: Member, **options: Member) -> Message:
    interaction = await stack.discord.slash_command(
        "videoadmin", dict(options), member=mod, subcommand=("usage",)
    )
    await private_reply(stack, interaction)  # ephemeral, like every /videoadmin reply
    assert interaction.original_message is not None
    return interaction.original_message


def chart_of(message: Message) -> bytes:
    (attachment,) = message.attachments
    assert attachment.filename == "usage.png"
    return attachment.data


async def test_usage_attaches_a_chart_and_lists_the_top_member(stack: Stack) -> None:
    guild = stack.discord.guild
    other = stack.discord.add_member(guild, "other")
    for member, prompt in ((stack.member, "one"), (stack.member, "two"), (other, "three")):
        await finished(stack, await answered(stack, await stack.video(member, prompt=prompt)))
    mod = moderator(stack)

    server = await usage(stack, mod)
    assert "Last 24 hours: 3 videos, $0.84" in server.content
    assert f"1. <@{stack.member.id}>: 2 videos, $0.56" in server.content
    assert f"2. <@{other.id}>: 1 video, $0.28" in server.content
    image = Image.open(io.BytesIO(chart_of(server)))
    image.load()
    assert (image.format, image.size, image.mode) == ("PNG", (WIDTH, HEIGHT), "RGB")
    assert 1 <= len(runs(image, BAR)) <= 2  # today's videos (yesterday's too, at midnight)

    mine = await usage(stack, mod, user=other)
    assert mine.content.startswith(f"**<@{other.id}>**\nLast 24 hours: 1 video, $0.28")
    assert "Top members" not in mine.content
    # The member's chart is drawn from their series alone, and differs from the server's.
    days = await stack.bot.usage.daily_usage(guild.id, time.time(), user_id=other.id)
    assert sum(d.jobs for d in days) == 1 and len(days) == 30
    assert chart_of(mine) == usage_chart_png(days)
    assert chart_of(mine) != chart_of(server)


async def test_videos_shows_what_is_left_after_a_job(stack: Stack) -> None:
    mod = moderator(stack)
    patron = stack.discord.add_role(stack.discord.guild, "Patron")
    member = stack.discord.add_member(stack.discord.guild, "patron", roles=[patron])
    await admin(stack, mod, ("quota",), user_daily=1, user_concurrent=1, monthly_budget_usd=0.6)
    await admin(stack, mod, ("role_quota",), role=patron, user_daily=2)
    await admin(stack, mod, ("models", "allow"), model="minimax/hailuo-02")  # the only model
    await finished(stack, await answered(stack, await stack.video(member, prompt="one")))

    top = str((await videos(stack, member)).embeds[0]["description"]).split("\n\n")[0]
    # The role's limit of 2, not the server's 1; the $0.28 video leaves $0.32 of $0.60, too
    # little for the $0.49 Hailuo estimate (the one model allowed), so the budget binds.
    lines = top.split("\n")
    assert lines[0] == "Videos left today: **1** of 2 (1 made in the last 24 hours)"
    assert lines[1] == "Unfinished: 0 of 1 at once"
    assert re.fullmatch(
        r"Server budget left: \*\*\$0\.32\*\* of \$0\.60 over 30 days · frees up <t:\d+:R>",
        lines[2],
    )
    # And /video agrees: the budget refuses the next one.
    refusal = await private_reply(stack, await stack.video(member, prompt="two"))
    assert "monthly video budget" in refusal

    await admin(stack, mod, ("quota",), monthly_budget_usd=50)
    await finished(stack, await answered(stack, await stack.video(member, prompt="three")))
    top = str((await videos(stack, member)).embeds[0]["description"]).split("\n\n")[0]
    assert re.fullmatch(
        r"Videos left today: \*\*0\*\* of 2 \(2 made in the last 24 hours\)"
        r" · the next one frees up <t:\d+:R>\nUnfinished: 0 of 1 at once",
        top,
    )
