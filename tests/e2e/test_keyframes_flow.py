"""Keyframes, reference images and sizes through the sandbox: what Together receives exactly."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

from PIL import Image

from bot.i18n import translate
from sandbox.discord_api import Interaction
from sandbox.harness import Stack
from storage.models import JobState
from tests.e2e.test_quotas_flow import private_reply
from tests.e2e.test_video_flow import answered, finished, stored

EPHEMERAL = 64


def png(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def decoded(image_b64: str) -> Image.Image:
    data = base64.b64decode(image_b64, validate=True)
    return Image.open(io.BytesIO(data))


async def refused(stack: Stack, interaction: Any) -> str:
    """The private answer the member got (after a deferral, a new ephemeral followup)."""
    await stack.discord.wait_for(
        lambda: interaction.followups or (interaction.ephemeral and interaction.original_message)
    )
    message = interaction.followups[-1] if interaction.followups else interaction.original_message
    assert message.flags & EPHEMERAL
    return str(message.content)


async def cat_starts_to_surf(stack: Stack) -> Interaction:
    """/video with an 800x800 first frame, for a model whose videos are 1366x768."""
    return await stack.discord.slash_command(
        "video",
        {"prompt": "the cat starts to surf", "model": "minimax/hailuo-02"},
        member=stack.member,
        attachments={"first_frame": ("cat.png", png(800, 800), "image/png")},
    )


async def test_first_frame_is_resized_and_sent_as_base64(stack: Stack) -> None:
    interaction = await cat_starts_to_surf(stack)
    message = await answered(stack, interaction)
    await stack.discord.wait_for(lambda: bool(message.embeds))
    # The progress message shows the keyframe as its thumbnail.
    assert message.embeds[0]["thumbnail"]["url"] == "attachment://first_frame.jpg"
    assert [a.filename for a in message.attachments] == ["first_frame.jpg"]
    await finished(stack, message)
    assert [a.filename for a in message.attachments] == ["video-1.mp4"]

    body = stack.together.posts()[0].body
    frames = body["media"]["frame_images"]
    assert [f["frame"] for f in frames] == [0]
    image = decoded(frames[0]["input_image"])
    assert (image.format, image.size, image.mode) == ("JPEG", (1366, 768), "RGB")
    assert "reference_images" not in body["media"]
    # The image was fetched from the CDN once (the "not downloaded" checks below rely on this).
    downloads = [r for r in stack.discord.requests if r.path.startswith("/attachments/")]
    assert len(downloads) == 1 and downloads[0].path.endswith("/cat.png")


async def test_first_and_last_frames_and_chosen_size(stack: Stack) -> None:
    interaction = await stack.discord.slash_command(
        "video",
        {"prompt": "day turns to night", "model": "google/veo-2.0", "size": "720x1280"},
        member=stack.member,
        attachments={
            "first_frame": ("day.webp", png(300, 600, (250, 250, 200)), "image/webp"),
            "last_frame": ("night.png", png(300, 600, (10, 10, 40)), "image/png"),
        },
    )
    await answered(stack, interaction)
    await stack.discord.wait_for(lambda: bool(stack.together.posts()))
    body = stack.together.posts()[0].body
    assert (body["width"], body["height"], body["seconds"]) == (720, 1280, "5")
    frames = body["media"]["frame_images"]
    assert [f["frame"] for f in frames] == [0, "last"]
    assert all(decoded(f["input_image"]).size == (720, 1280) for f in frames)
    first_pixel = decoded(frames[0]["input_image"]).convert("RGB").getpixel((10, 10))
    assert first_pixel[0] > 200  # the day image, not the night one


async def test_reference_image_goes_to_reference_images(stack: Stack) -> None:
    interaction = await stack.discord.slash_command(
        "video",
        {"prompt": "a character walks", "model": "vidu/vidu-2.0"},
        member=stack.member,
        attachments={"reference": ("hero.jpg", png(640, 480), "image/jpeg")},
    )
    await answered(stack, interaction)
    await stack.discord.wait_for(lambda: bool(stack.together.posts()))
    media = stack.together.posts()[0].body["media"]
    assert "frame_images" not in media
    assert len(media["reference_images"]) == 1
    assert decoded(media["reference_images"][0]).format == "JPEG"


async def test_unsupported_last_frame_is_refused_before_download(stack: Stack) -> None:
    interaction = await stack.discord.slash_command(
        "video",
        {"prompt": "x", "model": "minimax/hailuo-02"},
        member=stack.member,
        attachments={"last_frame": ("end.png", png(64, 64), "image/png")},
    )
    text = await refused(stack, interaction)
    assert "`last_frame`: MiniMax Hailuo 02 does not take a last frame" in text
    assert "Veo 2.0" in text  # names the models that do
    assert not any(r.path.startswith("/attachments/") for r in stack.discord.requests)
    assert stack.together.posts() == []


async def test_text_file_named_png_is_refused_privately(stack: Stack) -> None:
    interaction = await stack.discord.slash_command(
        "video",
        {"prompt": "x"},
        member=stack.member,
        attachments={"first_frame": ("photo.png", b"just some text, not an image", "image/png")},
    )
    text = await refused(stack, interaction)
    assert text == "`first_frame` must be a PNG, JPEG, WEBP or GIF image."
    # The public "thinking" answer is removed, and nothing was stored or sent.
    assert interaction.original_message is not None and interaction.original_message.deleted
    assert stack.together.posts() == []
    assert await stack.bot.jobs.get(1) is None


async def test_image_declared_over_20_mb_is_not_downloaded(stack: Stack) -> None:
    interaction = await stack.discord.slash_command(
        "video",
        {"prompt": "x"},
        member=stack.member,
        attachments={"first_frame": ("huge.png", b"\0" * 21_000_000, "image/png")},
    )
    text = await refused(stack, interaction)
    assert text == "`first_frame` is 21 MB; images can be at most 20 MB."
    assert not any(r.path.startswith("/attachments/") for r in stack.discord.requests)


async def test_unsupported_size_names_the_model_sizes(stack: Stack) -> None:
    interaction = await stack.video(prompt="x", model="google/veo-2.0", size="1366x768")
    text = await refused(stack, interaction)
    assert text.startswith("`size`: Veo 2.0 makes videos of 1280x720, 720x1280")
    assert stack.together.posts() == []


async def test_size_autocomplete_follows_the_chosen_model(stack: Stack) -> None:
    choices = await stack.discord.autocomplete(
        "video",
        {"prompt": "x", "model": "kwaivgI/kling-2.1-pro", "size": "1080"},
        "size",
        member=stack.member,
    )
    assert [c["value"] for c in choices] == ["1920x1080", "1080x1080", "1080x1920"]


async def test_retry_keeps_the_keyframe_until_it_is_pruned_then_says_so(stack: Stack) -> None:
    interaction = await cat_starts_to_surf(stack)
    first = await answered(stack, interaction)
    await stack.discord.wait_for(lambda: bool(first.embeds))  # deferred while images are read
    await finished(stack, first)
    retry = await stack.discord.click_button(first, "video:retry:1", member=stack.member)
    second = await answered(stack, retry)
    await finished(stack, second)
    sent = [p.body["media"]["frame_images"][0]["input_image"] for p in stack.together.posts()]
    assert len(sent) == 2 and sent[0] == sent[1], "Retry sends the same keyframe again"

    for job_id in (1, 2):  # the message shows the video just before SQLite records it
        await stored(stack.bot.jobs, job_id, JobState.DELIVERED)
    now = time.time()
    assert await stack.bot.jobs.prune_media(before=now + 1, now=now) == 2
    text = await private_reply(
        stack, await stack.discord.click_button(second, "video:retry:2", member=stack.member)
    )
    assert text == translate("en", "intake.images_gone")
    assert len(stack.together.posts()) == 2, "nothing was sent without the images"
