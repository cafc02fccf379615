"""Together's 2026 API through the sandbox: one job of each model kind, the new options, and
their refusals. What Together receives is checked field by field, and the stand-in fetches the
video and audio links as Together would."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import pytest

from sandbox.discord_api import Interaction
from sandbox.harness import Stack
from storage.models import JobState
from tests.e2e.test_keyframes_flow import png, refused
from tests.e2e.test_video_flow import answered, finished, stored

SAMPLE_MP4 = (
    Path(__file__).resolve().parents[2] / "sandbox" / "fixtures" / "sample.mp4"
).read_bytes()


def wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


async def video_command(
    stack: Stack, options: dict[str, object], files: dict[str, tuple[str, bytes, str]]
) -> Interaction:
    return await stack.discord.slash_command(
        "video", options, member=stack.member, attachments=files
    )


async def delivered_body(stack: Stack, interaction: Interaction) -> dict[str, object]:
    message = await answered(stack, interaction)
    await stack.discord.wait_for(lambda: bool(message.embeds))  # deferred: shown once stored
    await finished(stack, message)
    await stored(stack.bot.jobs, 1, JobState.DELIVERED)
    body = stack.together.posts()[0].body
    assert isinstance(body, dict)
    return body


def cdn_link(url: object, filename: str) -> None:
    """A Discord CDN link to the member's file, signed with an expiry like Discord's."""
    assert isinstance(url, str) and f"/{filename}?ex=" in url and "&hm=" in url


async def test_text_to_video_with_resolution_ratio_sound_and_a_soundtrack(stack: Stack) -> None:
    interaction = await video_command(
        stack,
        {
            "prompt": "a drummer on a rooftop",
            "model": "Wan-AI/wan2.7-t2v",
            "resolution": "1080P",
            "ratio": "9:16",
            "seconds": 12,
            "audio": True,
            "quality": 15,
        },
        {"soundtrack": ("beat.wav", wav(4), "audio/wav")},
    )
    body = await delivered_body(stack, interaction)
    assert (body["resolution"], body["ratio"], body["seconds"]) == ("1080P", "9:16", "12")
    assert "width" not in body and "height" not in body
    assert body["generate_audio"] is True and body["output_quality"] == 15
    media = body["media"]
    assert isinstance(media, dict) and list(media) == ["audio_inputs"]
    cdn_link(media["audio_inputs"][0]["audio"], "beat.wav")
    job = await stack.bot.jobs.get(1)
    assert job is not None and job.estimated_cost_usd == pytest.approx(1.2)  # $0.10 x 12 s


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ("Wan-AI/wan2.7-i2v", "frame_videos"),
        ("Wan-AI/wan2.7-r2v", "reference_videos"),
        ("Wan-AI/wan2.7-videoedit", "source_video"),
    ],
)
async def test_a_clip_goes_where_the_models_kind_wants_it(
    stack: Stack, model: str, field: str
) -> None:
    interaction = await video_command(
        stack,
        {"prompt": "it starts to snow", "model": model},
        {"video": ("clip.mp4", SAMPLE_MP4, "video/mp4")},
    )
    body = await delivered_body(stack, interaction)
    media = body["media"]
    assert isinstance(media, dict) and list(media) == [field]
    clip = media[field] if field == "source_video" else media[field][0]
    cdn_link(clip["video"], "clip.mp4")
    # Together (the stand-in) fetched the clip from Discord's CDN with that link.
    fetches = [r for r in stack.discord.requests if r.path.endswith("/clip.mp4")]
    assert len(fetches) == 2  # the bot's check, then Together's fetch


async def test_reference_images_for_hailuo(stack: Stack) -> None:
    interaction = await video_command(
        stack,
        {"prompt": "the hero waves", "model": "minimax/hailuo-02"},
        {"reference": ("hero.png", png(640, 480), "image/png")},
    )
    body = await delivered_body(stack, interaction)
    media = body["media"]
    assert isinstance(media, dict) and len(media["reference_images"]) == 1


@pytest.mark.parametrize(
    ("options", "files", "words"),
    [
        (
            {"model": "Wan-AI/wan2.7-t2v"},
            {"soundtrack": ("short.wav", wav(1.5), "audio/wav")},
            "3 to 30 seconds",
        ),
        (
            {"model": "Wan-AI/wan2.7-t2v"},
            {"soundtrack": ("song.mp3", png(10, 10), "audio/mpeg")},
            "`soundtrack` must be a WAV or MP3 file",
        ),
        (
            {"model": "Wan-AI/wan2.7-videoedit"},
            {"video": ("clip.mp4", png(10, 10), "video/mp4")},
            "`video`",
        ),
    ],
)
async def test_bad_files_are_refused_privately_by_their_content(
    stack: Stack,
    options: dict[str, object],
    files: dict[str, tuple[str, bytes, str]],
    words: str,
) -> None:
    interaction = await video_command(stack, {"prompt": "x", **options}, files)
    assert words in await refused(stack, interaction)
    assert not stack.together.posts()
    assert await stack.bot.jobs.get(1) is None


@pytest.mark.parametrize(
    ("options", "files", "words"),
    [
        ({"model": "google/veo-2.0", "ratio": "16:9"}, {}, "`ratio`: Veo 2.0 takes `size`"),
        ({"model": "google/veo-2.0", "audio": True}, {}, "`audio`: Veo 2.0 makes silent"),
        ({"model": "Wan-AI/wan2.7-t2v", "resolution": "4K"}, {}, "`resolution`: Wan 2.7 takes"),
        ({"model": "Wan-AI/wan2.7-t2v", "size": "1280x720"}, {}, "`size`: Wan 2.7 takes"),
        ({"quality": 51}, {}, "`quality` must be between 1 and 50 (got 51)"),
        ({"model": "Wan-AI/wan2.7-videoedit"}, {}, "`video`: Wan 2.7 Video Edit is video edit"),
        ({"model": "google/veo-3.1"}, {}, "switched off"),
        (
            {"model": "minimax/hailuo-02"},
            {"video": ("clip.mp4", SAMPLE_MP4, "video/mp4")},
            "`video`: MiniMax Hailuo 02 does not take a video",
        ),
    ],
)
async def test_options_the_model_does_not_take_are_refused_before_any_download(
    stack: Stack,
    options: dict[str, object],
    files: dict[str, tuple[str, bytes, str]],
    words: str,
) -> None:
    interaction = await video_command(stack, {"prompt": "x", **options}, files)
    message = await answered(stack, interaction)
    assert interaction.ephemeral and words in str(message.content)
    assert not [r for r in stack.discord.requests if r.path.startswith("/attachments/")]
    assert not stack.together.posts()


async def test_videomodels_lists_what_each_model_does_and_costs(stack: Stack) -> None:
    interaction = await stack.discord.slash_command("videomodels", {}, member=stack.member)
    message = await answered(stack, interaction)
    assert interaction.ephemeral
    listing = message.embeds[0]["description"]
    assert "**Wan 2.7 Video Edit** (`Wan-AI/wan2.7-videoedit`): video edit" in listing
    assert "$0.10/s" in listing and "$0.49/video" in listing
    assert "Switched off on this bot" in listing and "Veo 3.1" in listing


async def test_model_autocomplete_labels_say_what_and_how_much(stack: Stack) -> None:
    choices = await stack.discord.autocomplete(
        "video", {"prompt": "x", "model": "wan"}, focused="model", member=stack.member
    )
    names = [choice["name"] for choice in choices]
    assert "Wan 2.7 Video Edit · video edit · 2-10 s · $0.10/s" in names


async def test_a_job_together_cancels_ends_cancelled_and_gives_its_quota_back(
    stack: Stack,
) -> None:
    interaction = await stack.video(prompt="a quiet lake [cancel]")
    message = await answered(stack, interaction)
    await stack.discord.wait_for(
        lambda: bool(message.embeds) and message.embeds[0].get("title") == "Cancelled",
        timeout=30,
    )
    job = await stored(stack.bot.jobs, 1, JobState.CANCELLED)
    assert job.together_id is not None and "does not count" in (job.failure_reason or "")
    usage = await stack.bot.usage.member_usage(job.guild_id, job.user_id, job.created_at + 1)
    assert usage.user_day == 0 and usage.user_active == 0
