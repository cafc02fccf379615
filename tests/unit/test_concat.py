"""Joining clips (bot.media.concat) on real clips made by ffmpeg (see conftest)."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.media.concat import JoinError, ffconcat_list, join_clips
from bot.media.frames import last_frame
from tests.unit.media_clips import Clips

BOGUS = "/nonexistent/bin/ffprobe-that-is-not-there"


def _probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-show_entries"),
            "format=duration,format_name:stream=codec_type,codec_name,width,height,duration,avg_frame_rate",
            *("-of", "json", str(path)),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _stream(info: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((s for s in info["streams"] if s["codec_type"] == kind), None)


def _video_packets(path: Path) -> list[str]:
    """One entry per video packet: its CRC, or "key" for a keyframe (the concat demuxer puts
    the SPS/PPS in-band in keyframes when it copies H.264 from MP4, so those grow a little)."""
    out = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_data_hash", "CRC32"),
            *("-show_entries", "packet=flags,data_hash", "-of", "csv=p=0", str(path)),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    packets = [line.strip().split(",") for line in out.splitlines() if line.strip()]
    return ["key" if flags.startswith("K") else crc for flags, crc in packets]


def _only(folder: Path, *names: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


# --------------------------------------------------------------------------- stream copy


async def test_matching_parts_are_stream_copied(clips: Clips, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "joined.mp4"
    parts = [clips.sound, clips.sound2, clips.sound]

    result = await join_clips(parts, dest, formats=["MP4"] * 3)

    assert result.reencoded is False
    assert result.path == dest
    assert result.size == dest.stat().st_size
    info = _probe(dest)
    assert float(info["format"]["duration"]) == pytest.approx(6.0, abs=0.15)
    assert result.seconds == pytest.approx(float(info["format"]["duration"]), abs=0.01)
    video, audio = _stream(info, "video"), _stream(info, "audio")
    assert video is not None and audio is not None
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 240)
    assert audio["codec_name"] == "aac"
    # Copied, not re-encoded: the very same compressed pictures, in order.
    expected = [packet for part in parts for packet in _video_packets(part)]
    assert len(expected) == 3 * 48 and expected.count("key") == 3
    assert _video_packets(dest) == expected
    _only(dest.parent, "joined.mp4")  # no list, copies or partial file left


async def test_matching_silent_parts_are_stream_copied_without_sound(
    clips: Clips, tmp_path: Path
) -> None:
    dest = tmp_path / "joined.mp4"

    result = await join_clips([clips.plain, clips.plain2], dest, formats=["MP4", "MP4"])

    assert result.reencoded is False
    info = _probe(dest)
    assert _stream(info, "audio") is None
    assert float(info["format"]["duration"]) == pytest.approx(4.0, abs=0.15)
    _only(tmp_path, "joined.mp4")


async def test_names_with_spaces_and_quotes(clips: Clips, tmp_path: Path) -> None:
    # The temporary folder, and so every path in the concat list, is beside dest.
    dest = tmp_path / 'it\'s a "joined" folder' / "the 'final' cut.mp4"

    result = await join_clips([clips.odd_name, clips.odd_name2], dest, formats=["MP4", "MP4"])

    assert result.reencoded is False
    assert float(_probe(dest)["format"]["duration"]) == pytest.approx(4.0, abs=0.15)
    _only(dest.parent, dest.name)


def test_the_concat_list_quotes_paths_as_ffmpeg_reads_them(tmp_path: Path) -> None:
    listing = ffconcat_list([Path("/a b/it's/x.mp4")])

    assert listing.splitlines() == [
        "ffconcat version 1.0",
        "file '/a b/it'\\''s/x.mp4'",
        "option format_whitelist mov,mp4,m4a,3gp,3g2,mj2",
    ]
    with pytest.raises(JoinError):
        ffconcat_list([Path("/a\nfile /etc/passwd")])


# --------------------------------------------------------------------------- re-encoding


async def test_parts_of_another_size_are_re_encoded_to_the_first_size(
    clips: Clips, tmp_path: Path
) -> None:
    dest = tmp_path / "joined.mp4"

    result = await join_clips([clips.sound, clips.big], dest, formats=["MP4", "MP4"])

    assert result.reencoded is True
    info = _probe(dest)
    video = _stream(info, "video")
    assert video is not None
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 240)
    assert video["avg_frame_rate"] == "24/1"
    assert float(info["format"]["duration"]) == pytest.approx(4.0, abs=0.2)
    _only(tmp_path, "joined.mp4")


async def test_another_frame_rate_is_re_encoded_to_the_first_rate(
    clips: Clips, tmp_path: Path
) -> None:
    dest = tmp_path / "joined.mp4"

    result = await join_clips([clips.fast, clips.plain], dest, formats=["MP4", "MP4"])

    assert result.reencoded is True
    video = _stream(_probe(dest), "video")
    assert video is not None and video["avg_frame_rate"] == "30/1"


async def test_a_narrower_part_keeps_its_shape_inside_black_bars(
    clips: Clips, tmp_path: Path
) -> None:
    dest = tmp_path / "joined.mp4"

    await join_clips([clips.plain, clips.portrait], dest, formats=["MP4", "MP4"])

    # The last picture is the red 120x240 part, padded (not stretched) to 320x240.
    image = Image.open(io.BytesIO(await last_frame(dest, source_format="MP4", workdir=tmp_path)))
    rgb = image.convert("RGB")
    assert rgb.size == (320, 240)
    centre, edge = rgb.getpixel((160, 120)), rgb.getpixel((10, 120))
    assert isinstance(centre, tuple) and isinstance(edge, tuple)
    assert centre[0] > 200 and centre[1] < 60 and centre[2] < 60, centre
    assert max(edge) < 40, edge


async def test_parts_with_and_without_sound_get_one_soundtrack(
    clips: Clips, tmp_path: Path
) -> None:
    dest = tmp_path / "joined.mp4"

    result = await join_clips([clips.plain, clips.sound, clips.plain2], dest, formats=["MP4"] * 3)

    assert result.reencoded is True
    info = _probe(dest)
    video, audio = _stream(info, "video"), _stream(info, "audio")
    assert video is not None and audio is not None
    assert audio["codec_name"] == "aac"
    # Silence under the silent parts: the sound lasts as long as the picture.
    assert float(audio["duration"]) == pytest.approx(6.0, abs=0.2)
    assert float(video["duration"]) == pytest.approx(6.0, abs=0.2)


async def test_a_webm_part_is_re_encoded_into_mp4(clips: Clips, tmp_path: Path) -> None:
    dest = tmp_path / "joined.mp4"

    result = await join_clips([clips.webm, clips.sound], dest, formats=["WEBM", "MP4"])

    assert result.reencoded is True
    info = _probe(dest)
    assert "mp4" in info["format"]["format_name"]
    video, audio = _stream(info, "video"), _stream(info, "audio")
    assert video is not None and video["codec_name"] == "h264"
    assert audio is not None and audio["codec_name"] == "aac"
    assert float(info["format"]["duration"]) == pytest.approx(4.0, abs=0.2)


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("name", ["corrupt", "truncated"])
async def test_a_damaged_part_is_a_join_error_naming_it(
    clips: Clips, tmp_path: Path, name: str
) -> None:
    dest = tmp_path / "joined.mp4"

    with pytest.raises(JoinError) as caught:
        await join_clips(
            [clips.sound, getattr(clips, name), clips.sound2], dest, formats=["MP4"] * 3
        )

    assert caught.value.part == 1
    assert caught.value.reason == "could not be read as a video"
    assert list(tmp_path.iterdir()) == []


async def test_an_ffconcat_script_posing_as_a_part_is_refused(clips: Clips, tmp_path: Path) -> None:
    script = tmp_path / "evil.mp4"
    script.write_text(f"ffconcat version 1.0\nfile '{clips.sound2}'\n")
    dest = tmp_path / "out" / "joined.mp4"

    with pytest.raises(JoinError) as caught:
        await join_clips([clips.sound, script], dest, formats=["MP4", "MP4"])

    assert caught.value.part == 1
    _only(dest.parent)


async def test_a_part_in_another_container_than_named_is_refused(
    clips: Clips, tmp_path: Path
) -> None:
    with pytest.raises(JoinError) as caught:
        await join_clips([clips.sound, clips.webm], tmp_path / "j.mp4", formats=["MP4", "MP4"])

    assert caught.value.part == 1


async def test_a_part_without_a_picture_is_refused(clips: Clips, tmp_path: Path) -> None:
    from tests.unit.media_clips import make

    audio_only = make(tmp_path / "sound.mp4", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac")

    with pytest.raises(JoinError) as caught:
        await join_clips([audio_only], tmp_path / "j.mp4", formats=["MP4"])

    assert (caught.value.part, caught.value.reason) == (0, "has no video")


async def test_timeout_is_a_join_error_and_leaves_nothing(clips: Clips, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "joined.mp4"

    with pytest.raises(JoinError) as caught:
        await join_clips(
            [clips.sound, clips.big],
            dest,
            formats=["MP4", "MP4"],
            base_timeout=0,
            timeout_per_second=0,
        )

    assert caught.value.reason.startswith("timed out")
    _only(dest.parent)


async def test_an_existing_dest_is_replaced(clips: Clips, tmp_path: Path) -> None:
    dest = tmp_path / "joined.mp4"
    dest.write_bytes(b"old")

    result = await join_clips([clips.plain, clips.plain2], dest, formats=["MP4", "MP4"])

    assert result.size == dest.stat().st_size > 3


async def test_missing_ffprobe_is_a_join_error(tmp_path: Path) -> None:
    part = tmp_path / "a.mp4"
    part.write_bytes(b"\0\0\0\x18ftypisom")

    with pytest.raises(JoinError) as caught:
        await join_clips([part], tmp_path / "j.mp4", formats=["MP4"], ffprobe=BOGUS)

    assert caught.value.reason == "ffmpeg is not installed"


async def test_bad_arguments_are_value_errors(tmp_path: Path) -> None:
    part = tmp_path / "a.mp4"
    with pytest.raises(ValueError):
        await join_clips([], tmp_path / "j.mp4", formats=[])
    with pytest.raises(ValueError):
        await join_clips([part, part], tmp_path / "j.mp4", formats=["MP4"])
    with pytest.raises(ValueError):
        await join_clips([part], tmp_path / "j.mp4", formats=["AVI"])  # type: ignore[list-item]


async def test_a_part_the_concat_demuxer_cannot_open_is_caught_by_the_length_check(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ffmpeg stops at a part it cannot open and still exits 0: only the length tells.
    from bot.media import concat

    real_remux = concat._remux

    async def remux_then_spoil(tools: Any, index: int, part: Any, copy: Path) -> None:
        await real_remux(tools, index, part, copy)
        if index == 1:
            copy.write_bytes(b"not a video any more")

    monkeypatch.setattr(concat, "_remux", remux_then_spoil)
    dest = tmp_path / "out" / "joined.mp4"

    with pytest.raises(JoinError) as caught:
        await join_clips([clips.sound, clips.sound2], dest, formats=["MP4", "MP4"])

    assert caught.value.reason == "the joined video came out shorter than its parts"
    _only(dest.parent)
