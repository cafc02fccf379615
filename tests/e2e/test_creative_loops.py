"""Extend, Join, Remix, Animate image and Edit video through the real bot and both stand-ins,
by the member who owns the video and by another member."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

from PIL import Image

from sandbox.discord_api import DiscordSandbox, Interaction, Member, Message
from sandbox.harness import TOGETHER_KEY, Stack, run_bot
from sandbox.together import TogetherSandbox
from storage.models import Derivation, JobState
from tests.e2e.conftest import FAST_JOB
from tests.e2e.test_keyframes_flow import png
from tests.e2e.test_quotas_flow import private_reply
from tests.e2e.test_video_flow import answered, finished, stored

SAMPLE_MP4 = (
    Path(__file__).resolve().parents[2] / "sandbox" / "fixtures" / "sample.mp4"
).read_bytes()


async def delivered(stack: Stack, interaction: Interaction, job_id: int) -> Message:
    message = await answered(stack, interaction)
    await stack.discord.wait_for(lambda: bool(message.embeds))
    await finished(stack, message)
    await stored(stack.bot.jobs, job_id, JobState.DELIVERED)
    return message


async def first_video(stack: Stack, **options: Any) -> Message:
    return await delivered(stack, await stack.video(prompt="a cat surfs a wave", **options), 1)


async def modal_for(stack: Stack, message: Message, custom_id: str, member: Member) -> Interaction:
    click = await stack.discord.click_button(message, custom_id, member=member)
    await stack.discord.wait_for(lambda: click.modal is not None or click.original_message)
    return click


def post_body(stack: Stack, index: int) -> dict[str, Any]:
    body = stack.together.posts()[index].body
    assert isinstance(body, dict)
    return body


async def test_remix_changes_only_the_words(stack: Stack) -> None:
    message = await first_video(stack, seed=42, size="1920x1080")
    stranger = stack.discord.add_member(stack.discord.guild, "stranger")
    note = await private_reply(
        stack, await stack.discord.click_button(message, "video:remix:1", member=stranger)
    )
    assert note == f"Only <@{stack.member.id}> can remix this video."

    click = await modal_for(stack, message, "video:remix:1", stack.member)
    assert click.modal is not None and click.modal["custom_id"] == "form:remix:1"
    submission = await stack.discord.submit_modal(click, {"prompt": "a dog surfs a wave"})
    remix = await delivered(stack, submission, 2)
    first, second = post_body(stack, 0), post_body(stack, 1)
    assert second["prompt"] == "a dog surfs a wave"
    assert {k: v for k, v in second.items() if k != "prompt"} == {
        k: v for k, v in first.items() if k != "prompt"
    }
    job = await stack.bot.jobs.get(2)
    assert job is not None and (job.parent_id, job.derivation) == (1, Derivation.REMIX)
    assert "Remix of #1" in remix.embeds[0]["footer"]["text"]


async def test_extend_from_the_last_frame_then_join_the_chain(stack: Stack) -> None:
    message = await first_video(stack)
    stranger = stack.discord.add_member(stack.discord.guild, "stranger")
    assert "video:extend:1" in message.custom_ids()
    note = await private_reply(
        stack, await stack.discord.click_button(message, "video:extend:1", member=stranger)
    )
    assert note == f"Only <@{stack.member.id}> can extend this video."

    click = await modal_for(stack, message, "video:extend:1", stack.member)
    submission = await stack.discord.submit_modal(click, {"prompt": "the cat jumps off"})
    part2 = await delivered(stack, submission, 2)
    body = post_body(stack, 1)
    frame = body["media"]["frame_images"][0]
    image = Image.open(io.BytesIO(base64.b64decode(frame["input_image"])))
    assert image.size == (1366, 768)  # the last frame, fitted to the same frame as part 1
    assert body["seed"] != post_body(stack, 0).get("seed")
    assert "Extended from #1 · part 2 of 2" in part2.embeds[0]["footer"]["text"]
    assert "video:join:2" in part2.custom_ids()

    note = await private_reply(
        stack, await stack.discord.click_button(part2, "video:join:2", member=stranger)
    )
    assert note == f"Only <@{stack.member.id}> can join this video."
    posts = len(stack.together.posts())
    join = await stack.discord.click_button(part2, "video:join:2", member=stack.member)
    joined = await delivered(stack, join, 3)
    assert joined is not part2 and joined.id != part2.id  # a new message
    assert [a.filename for a in joined.attachments] == ["video-3.mp4"]
    assert joined.attachments[0].size > 0
    assert len(stack.together.posts()) == posts, "a Join never calls Together"
    job = await stack.bot.jobs.get(3)
    assert job is not None and job.derivation is Derivation.JOIN
    usage = await stack.bot.usage.member_usage(job.guild_id, job.user_id, job.created_at + 1)
    assert usage.user_day == 2, "the Join used no quota"


async def test_extend_on_a_model_that_continues_clips_sends_the_video(stack: Stack) -> None:
    message = await delivered(
        stack,
        await stack.discord.slash_command(
            "video",
            {"prompt": "a kite", "model": "Wan-AI/wan2.7-i2v", "seconds": 5},
            member=stack.member,
            attachments={"first_frame": ("kite.png", png(320, 180), "image/png")},
        ),
        1,
    )
    click = await modal_for(stack, message, "video:extend:1", stack.member)
    submission = await stack.discord.submit_modal(click, {"prompt": "the kite flies away"})
    await delivered(stack, submission, 2)
    media = post_body(stack, 1)["media"]
    assert list(media) == ["frame_videos"]
    assert "/video-1.mp4?ex=" in media["frame_videos"][0]["video"]


async def test_animate_image_from_any_members_message(stack: Stack) -> None:
    poster = stack.discord.add_member(stack.discord.guild, "poster")
    picture = stack.discord.post_message(
        poster, content="my drawing", files=[("drawing.png", png(640, 360), "image/png")]
    )
    # Without the Message Content intent, a fetch of the message does not show the picture:
    # the menu's own interaction is where the bot must take it from.
    fetched = await stack.bot.http.get_message(picture.channel_id, picture.id)
    assert fetched["attachments"] == [] and fetched["content"] == ""
    menu = await stack.discord.message_command("Animate image", picture, member=stack.member)
    await stack.discord.wait_for(lambda: menu.modal is not None)
    submission = await stack.discord.submit_modal(menu, {"prompt": "the drawing comes alive"})
    await delivered(stack, submission, 1)
    body = post_body(stack, 0)
    assert body["model"] == "Wan-AI/wan2.7-i2v"
    assert [f["frame"] for f in body["media"]["frame_images"]] == [0]
    job = await stack.bot.jobs.get(1)
    assert job is not None and job.derivation is Derivation.ANIMATE

    text_only = stack.discord.post_message(poster, content="no picture here")
    refused = await stack.discord.message_command("Animate image", text_only, member=stack.member)
    assert "no image to animate" in await private_reply(stack, refused)


async def test_edit_video_sends_the_clip_from_the_message(stack: Stack) -> None:
    poster = stack.discord.add_member(stack.discord.guild, "poster")
    clip = stack.discord.post_message(poster, files=[("holiday.mp4", SAMPLE_MP4, "video/mp4")])
    menu = await stack.discord.message_command("Edit video", clip, member=stack.member)
    await stack.discord.wait_for(lambda: menu.modal is not None)
    submission = await stack.discord.submit_modal(menu, {"prompt": "make it snow"})
    await delivered(stack, submission, 1)
    body = post_body(stack, 0)
    assert body["model"] == "Wan-AI/wan2.7-videoedit" and body["prompt"] == "make it snow"
    assert "/holiday.mp4?ex=" in body["media"]["source_video"]["video"]
    links = await stack.bot.jobs.links(1)
    assert links[0].message_id == clip.id  # a fresh link is asked for later, where readable
    assert await stack.bot.pending_forms.get(1) is None, "the kept pick is dropped"


async def test_edit_video_where_the_server_allows_no_edit_model(stack: Stack) -> None:
    await stack.bot.server_settings.set_model_rule(
        stack.discord.guild.id, "Wan-AI/wan2.7-videoedit", "deny", 1, 0.0
    )
    clip = stack.discord.post_message(stack.member, files=[("a.mp4", SAMPLE_MP4, "video/mp4")])
    menu = await stack.discord.message_command("Edit video", clip, member=stack.member)
    await stack.discord.wait_for(lambda: menu.modal is not None)
    submission = await stack.discord.submit_modal(menu, {"prompt": "make it snow"})
    assert "allows no video-edit model" in await private_reply(stack, submission)
    assert not stack.together.posts()


async def test_each_menu_keeps_its_own_pick_until_its_form_comes_back(stack: Stack) -> None:
    poster = stack.discord.add_member(stack.discord.guild, "poster")
    picture = stack.discord.post_message(poster, files=[("a.png", png(64, 64), "image/png")])
    menu = await stack.discord.message_command("Animate image", picture, member=stack.member)
    await stack.discord.wait_for(lambda: menu.modal is not None)
    kept = await stack.bot.pending_forms.get(1)
    assert kept is not None and kept.user_id == stack.member.id
    other = await stack.discord.message_command("Animate image", picture, member=poster)
    await stack.discord.wait_for(lambda: other.modal is not None)
    assert other.modal is not None and other.modal["custom_id"] == "form:animate:2"
    submission = await stack.discord.submit_modal(menu, {"prompt": "mine"})
    await delivered(stack, submission, 1)
    assert await stack.bot.pending_forms.get(1) is None
    assert await stack.bot.pending_forms.get(2) is not None, "the other member's pick is kept"


async def test_a_remix_form_submitted_after_a_restart_still_works(tmp_path: Path) -> None:
    async with (
        DiscordSandbox() as discord_sb,
        TogetherSandbox(api_key=TOGETHER_KEY, default_script=FAST_JOB) as together_sb,
    ):
        member = discord_sb.add_member(discord_sb.guild, "member")
        async with run_bot(discord_sb, together_sb, tmp_path) as (bot, task):
            stack = Stack(discord_sb, together_sb, bot, bot.settings, member, task)
            message = await first_video(stack)
            click = await modal_for(stack, message, "video:remix:1", member)
        async with run_bot(discord_sb, together_sb, tmp_path) as (bot, task):
            stack = Stack(discord_sb, together_sb, bot, bot.settings, member, task)
            submission = await discord_sb.submit_modal(click, {"prompt": "after the restart"})
            await delivered(stack, submission, 2)
            assert post_body(stack, 1)["prompt"] == "after the restart"


async def test_animate_an_embedded_picture(stack: Stack) -> None:
    poster = stack.discord.add_member(stack.discord.guild, "poster")
    hosted = stack.discord.post_message(poster, files=[("sky.png", png(320, 180), "image/png")])
    url = hosted.attachments[0].signed_url(time.time())
    embedded = stack.discord.post_message(poster, embeds=[{"image": {"url": url}}])
    menu = await stack.discord.message_command("Animate image", embedded, member=stack.member)
    await stack.discord.wait_for(lambda: menu.modal is not None)
    submission = await stack.discord.submit_modal(menu, {"prompt": "clouds drift by"})
    await delivered(stack, submission, 1)
    frames = post_body(stack, 0)["media"]["frame_images"]
    assert Image.open(io.BytesIO(base64.b64decode(frames[0]["input_image"]))).format == "JPEG"

    elsewhere = stack.discord.post_message(
        poster, embeds=[{"image": {"url": "https://example.com/cat.png"}}]
    )
    refused = await stack.discord.message_command("Animate image", elsewhere, member=stack.member)
    assert "no image to animate" in await private_reply(stack, refused)
