"""The last frame of a clip (bot.media.frames) on real clips made by ffmpeg (see conftest)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat, JpegImagePlugin

from bot.media.frames import FrameError, last_frame
from tests.unit.media_clips import Clips, make

BOGUS = "/nonexistent/bin/ffmpeg-that-is-not-there"


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image


def _close(pixel: tuple[int, int, int], expected: tuple[int, int, int], slack: int = 12) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(pixel, expected, strict=True))


def _centre(image: Image.Image) -> tuple[int, int, int]:
    pixel = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    assert isinstance(pixel, tuple)
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def _frame_types(path: Path) -> list[str]:
    out = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-select_streams", "v:0"),
            *("-show_entries", "frame=pict_type", "-of", "csv=p=0", str(path)),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return [line.split(",")[0].strip() for line in out.splitlines() if line.strip()]


def _every_frame(path: Path, dest: Path) -> list[Image.Image]:
    """Every frame, decoded to PNG from the start by a plainer method, in order."""
    dest.mkdir()
    subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path)),
            *("-fps_mode", "passthrough", str(dest / "%05d.png")),
        ],
        check=True,
        timeout=60,
    )
    return [Image.open(png).convert("RGB") for png in sorted(dest.glob("*.png"))]


async def test_the_last_frame_is_the_last_one_even_when_it_is_not_a_keyframe(
    clips: Clips, tmp_path: Path
) -> None:
    # The premise: one blue frame at the end, and it is not a keyframe.
    types = _frame_types(clips.colours)
    assert types[0] == "I" and types[-1] != "I" and "I" not in types[1:]

    data = await last_frame(clips.colours, source_format="MP4", workdir=tmp_path / "work")

    image = _image(data)
    assert image.mode == "RGB"
    assert image.size == (320, 240)
    assert _close(_centre(image), (0, 0, 255)), _centre(image)  # not green (second to last)


async def test_a_2_second_clip_gives_the_frame_closest_to_the_decoded_last_one(
    clips: Clips, tmp_path: Path
) -> None:
    data = await last_frame(clips.plain, source_format="MP4", workdir=tmp_path / "work")

    got = _image(data).convert("RGB")
    frames = _every_frame(clips.plain, tmp_path / "all")
    assert len(frames) == 48
    distances = [max(ImageStat.Stat(ImageChops.difference(got, f)).mean) for f in frames]
    # Of all 48 frames (testsrc's differ from one to the next), the last is the nearest.
    assert distances.index(min(distances)) == len(frames) - 1, distances[-3:]


async def test_a_clip_of_one_frame_gives_that_frame(clips: Clips, tmp_path: Path) -> None:
    data = await last_frame(clips.one_frame, source_format="MP4", workdir=tmp_path)

    image = _image(data)
    assert image.size == (320, 240)
    assert _close(_centre(image), (255, 0, 255)), _centre(image)


async def test_webm_clip(clips: Clips, tmp_path: Path) -> None:
    data = await last_frame(clips.colours_webm, source_format="WEBM", workdir=tmp_path)

    assert _close(_centre(_image(data)), (0, 0, 255)), _centre(_image(data))


async def test_sound_running_past_the_picture_falls_back_to_decoding_it_all(
    clips: Clips, tmp_path: Path
) -> None:
    # The container says 5 s; the picture ends after 1 s, before the -sseof window starts.
    data = await last_frame(clips.long_sound, source_format="MP4", workdir=tmp_path)

    assert _close(_centre(_image(data)), (0, 0, 255)), _centre(_image(data))


async def test_the_jpeg_keeps_full_colour_resolution(clips: Clips, tmp_path: Path) -> None:
    image = _image(await last_frame(clips.plain, source_format="MP4", workdir=tmp_path))

    assert isinstance(image, JpegImagePlugin.JpegImageFile)
    # (component id, horizontal, vertical sampling, table): the same factors for all three
    # components means no chroma subsampling (4:2:0 would be 2x2 for Y, 1x1 for Cb and Cr).
    factors = {(h, v) for _, h, v, _ in image.layer}
    assert len(image.layer) == 3 and len(factors) == 1, image.layer


async def test_nothing_is_left_in_workdir(clips: Clips, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")

    await last_frame(clips.colours, source_format="MP4", workdir=tmp_path)
    with pytest.raises(FrameError):
        await last_frame(clips.corrupt, source_format="MP4", workdir=tmp_path)

    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("name", ["corrupt", "truncated"])
async def test_a_damaged_clip_is_a_frame_error_without_ffmpegs_words(
    clips: Clips, tmp_path: Path, name: str
) -> None:
    with pytest.raises(FrameError) as caught:
        await last_frame(getattr(clips, name), source_format="MP4", workdir=tmp_path)

    assert caught.value.reason == "the clip could not be read as a video"
    assert str(caught.value) == caught.value.reason
    assert list(tmp_path.iterdir()) == []


async def test_a_clip_in_another_container_than_named_is_refused(
    clips: Clips, tmp_path: Path
) -> None:
    with pytest.raises(FrameError):
        await last_frame(clips.plain, source_format="WEBM", workdir=tmp_path)


async def test_an_ffconcat_script_naming_another_clip_is_refused(
    clips: Clips, tmp_path: Path
) -> None:
    script = tmp_path / "evil.mp4"
    script.write_text(f"ffconcat version 1.0\nfile '{clips.colours}'\n")

    with pytest.raises(FrameError):
        await last_frame(script, source_format="MP4", workdir=tmp_path / "work")


async def test_a_clip_without_a_picture_is_refused(tmp_path: Path, clips: Clips) -> None:
    audio_only = make(tmp_path / "sound.mp4", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac")

    with pytest.raises(FrameError):
        await last_frame(audio_only, source_format="MP4", workdir=tmp_path / "work")


async def test_timeout_is_a_frame_error(clips: Clips, tmp_path: Path) -> None:
    with pytest.raises(FrameError) as caught:
        await last_frame(clips.plain, source_format="MP4", workdir=tmp_path, timeout=0)

    assert caught.value.reason.startswith("timed out")
    assert list(tmp_path.iterdir()) == []


async def test_missing_ffmpeg_is_a_frame_error(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0\0\0\x18ftypisom")

    with pytest.raises(FrameError) as caught:
        await last_frame(clip, source_format="MP4", workdir=tmp_path, ffmpeg=BOGUS)

    assert caught.value.reason == "ffmpeg is not installed"


async def test_unknown_format_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await last_frame(tmp_path / "x", source_format="AVI", workdir=tmp_path)  # type: ignore[arg-type]
