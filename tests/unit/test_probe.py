"""Soundtrack and video attachments judged by their bytes (bot.media.probe).

Three kinds of input:

* real files made by ffmpeg at test time (the session fixture ``media``), probed with the real
  ffprobe; those tests skip when ffmpeg is not installed (CI has it);
* tiny files built by hand here (a WAV from the ``wave`` module, MP3 frames, an MP4 with
  ``ftyp`` + ``moov/mvhd``, a WebM's EBML elements), for the paths without ffprobe
  (``shutil.which`` patched so ffprobe is not found);
* a stand-in ffprobe (a Python script that logs its argv and answers as told), for the flags
  ffprobe is run with, its failures, the timeout and the limiter.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import shutil
import stat
import struct
import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.domain.errors import InvalidOptionError, UserFacingError
from bot.media import probe
from bot.media.probe import (
    MAX_AUDIO_BYTES,
    AudioInfo,
    MediaInputError,
    VideoInfo,
    VideoLimits,
    check_declared_audio_size,
    check_declared_video_size,
    probe_audio,
    probe_video,
    sniff_audio,
    sniff_video,
)

LIMITS = VideoLimits(min_seconds=2, max_seconds=10, max_bytes=50_000_000)
REAL_WHICH = shutil.which
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
TEXT = b"hello, this is not a sound\n" * 20


def noise(size: int) -> bytes:
    """The same bytes every run, so a damaged-file test cannot pass or fail by luck."""
    return random.Random(size).randbytes(size)


# --------------------------------------------------------------------------- hand-built files


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * round(seconds * rate))
    return buffer.getvalue()


# MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, stereo, no padding: 417-byte frames of 1152 samples.
MP3_HEADER = b"\xff\xfb\x90\x04"
MP3_FRAME = 417
MP3_FRAME_SECONDS = 1152 / 44100


def mp3_bytes(frames: int, *, id3: bool = False, xing_frames: int | None = None) -> bytes:
    body = bytearray()
    for index in range(frames):
        frame = bytearray(MP3_HEADER + b"\x00" * (MP3_FRAME - 4))
        if index == 0 and xing_frames is not None:
            frame[36:48] = b"Xing" + struct.pack(">II", 1, xing_frames)
        body += frame
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, 20]) + b"\x00" * 20 if id3 else b""
    return tag + bytes(body)


def box(kind: bytes, *children: bytes) -> bytes:
    body = b"".join(children)
    return struct.pack(">I", 8 + len(body)) + kind + body


def mp4_bytes(
    seconds: float,
    *,
    handler: bytes = b"vide",
    leading: bytes = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41"),
    timescale: int = 1000,
    size: tuple[int, int] = (320, 240),
) -> bytes:
    mvhd = box(
        b"mvhd",
        b"\x00" * 4,
        struct.pack(">IIII", 0, 0, timescale, round(seconds * timescale)),
        b"\x00" * 80,
    )
    tkhd = box(
        b"tkhd", b"\x00\x00\x00\x03", b"\x00" * 72, struct.pack(">II", size[0] << 16, size[1] << 16)
    )
    hdlr = box(b"hdlr", b"\x00" * 8, handler, b"\x00" * 12, b"handler\x00")
    trak = box(b"trak", tkhd, box(b"mdia", hdlr))
    return leading + box(b"moov", mvhd, trak) + box(b"mdat", b"\x00" * 64)


def ebml(element: bytes, *children: bytes) -> bytes:
    body = b"".join(children)
    return element + (0x01 << 56 | len(body)).to_bytes(8, "big") + body


def webm_bytes(milliseconds: float | None, *, track_type: int = 1) -> bytes:
    header = ebml(b"\x1a\x45\xdf\xa3", ebml(b"\x42\x82", b"webm"))
    info = [ebml(b"\x2a\xd7\xb1", (1_000_000).to_bytes(3, "big"))]
    if milliseconds is not None:
        info.append(ebml(b"\x44\x89", struct.pack(">d", milliseconds)))
    video = ebml(
        b"\xe0", ebml(b"\xb0", (320).to_bytes(2, "big")), ebml(b"\xba", (240).to_bytes(2, "big"))
    )
    track = ebml(b"\xae", ebml(b"\x83", bytes([track_type])), ebml(b"\x86", b"V_VP8"), video)
    cluster = ebml(b"\x1f\x43\xb6\x75", b"\x00" * 32)
    segment = ebml(
        b"\x18\x53\x80\x67",
        ebml(b"\x15\x49\xa9\x66", *info),
        ebml(b"\x16\x54\xae\x6b", track),
        cluster,
    )
    return header + segment


# --------------------------------------------------------------------------- real files


def _ffmpeg(out: Path, *args: str) -> bytes:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-hide_banner", "-loglevel", "error", *args, str(out)],
        check=True,
        timeout=120,
    )
    return out.read_bytes()


def _sine(seconds: float) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]


def _testsrc(seconds: float, size: str = "320x240") -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=15"]


X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
VP9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k"]


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real files made by ffmpeg, by name; the tests using them skip without ffmpeg."""
    if REAL_WHICH("ffmpeg") is None or REAL_WHICH("ffprobe") is None:
        pytest.skip("ffmpeg/ffprobe are not on PATH (Debian: apt-get install ffmpeg)")
    folder = tmp_path_factory.mktemp("probe-media")
    return {
        "wav": _ffmpeg(folder / "a.wav", *_sine(5)),
        "mp3": _ffmpeg(folder / "a.mp3", *_sine(5)),
        "short.wav": _ffmpeg(folder / "short.wav", *_sine(2)),
        "short.mp3": _ffmpeg(folder / "short.mp3", *_sine(1.5)),
        "long.mp3": _ffmpeg(folder / "long.mp3", *_sine(42)),
        "mp4": _ffmpeg(folder / "v.mp4", *_testsrc(3), *X264),
        "mov": _ffmpeg(folder / "v.mov", *_testsrc(3), *X264),
        "webm": _ffmpeg(folder / "v.webm", *_testsrc(3), *VP9),
        "short.mp4": _ffmpeg(folder / "short.mp4", *_testsrc(1), *X264),
        "long.mp4": _ffmpeg(folder / "long.mp4", *_testsrc(12, "64x48"), *X264),
        "long.webm": _ffmpeg(folder / "long.webm", *_testsrc(12, "64x48"), *VP9),
        "sound.mp4": _ffmpeg(folder / "sound.mp4", *_sine(5), "-c:a", "aac"),
    }


@pytest.fixture
def no_ffprobe(monkeypatch: pytest.MonkeyPatch) -> None:
    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        return None if name == "ffprobe" else REAL_WHICH(name, *args, **kwargs)

    monkeypatch.setattr(shutil, "which", which)


async def refusal(call: Any) -> str:
    with pytest.raises(MediaInputError) as caught:
        await call
    return caught.value.message


# --------------------------------------------------------------------------- declared sizes


def test_the_refusal_is_a_user_facing_option_error() -> None:
    assert issubclass(MediaInputError, InvalidOptionError)
    assert issubclass(MediaInputError, UserFacingError)


def test_declared_audio_size_over_the_cap_is_refused_before_download() -> None:
    check_declared_audio_size("soundtrack", MAX_AUDIO_BYTES)
    with pytest.raises(MediaInputError) as caught:
        check_declared_audio_size("soundtrack", MAX_AUDIO_BYTES + 1)
    assert caught.value.message == "`soundtrack` is 15.1 MB; the limit is 15 MB."


def test_declared_video_size_is_checked_against_the_callers_cap() -> None:
    check_declared_video_size("video", 50_000_000, 50_000_000)
    with pytest.raises(MediaInputError) as caught:
        check_declared_video_size("video", 61_000_000, 50_000_000)
    assert caught.value.message == "`video` is 61 MB; the limit is 50 MB."
    with pytest.raises(MediaInputError):
        check_declared_video_size("video", 20_000_001, 20_000_000)


def test_video_limits_must_be_consistent() -> None:
    with pytest.raises(ValueError):
        VideoLimits(min_seconds=10, max_seconds=2, max_bytes=1)
    with pytest.raises(ValueError):
        VideoLimits(min_seconds=1, max_seconds=2, max_bytes=0)


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (wav_bytes(1), "WAV"),
        (mp3_bytes(3), "MP3"),
        (mp3_bytes(3, id3=True), "MP3"),
        (PNG, None),
        (TEXT, None),
        (b"\xff\xfa", None),  # a frame sync with nothing after it
        (b"\xff\xfd\x90\x04" + b"\x00" * 400, None),  # MPEG-1 Layer II: not MP3
        (mp4_bytes(3), None),
        (b"RIFF\x00\x00\x00\x00AVI LIST", None),  # RIFF, but not WAVE
    ],
)
def test_audio_kind_comes_from_the_bytes(data: bytes, kind: str | None) -> None:
    assert sniff_audio(data) == kind


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (mp4_bytes(3), "MP4"),
        (mp4_bytes(3, leading=box(b"ftyp", b"qt  \x00\x00\x02\x00qt  ")), "MOV"),
        (mp4_bytes(3, leading=b""), "MOV"),  # moov first, no ftyp: old QuickTime
        (mp4_bytes(3, leading=box(b"wide")), "MOV"),
        (webm_bytes(3000), "WEBM"),
        (wav_bytes(1), None),
        (mp3_bytes(3), None),
        (PNG, None),
        (b"ffconcat version 1.0\nfile clip.mp4\n", None),
        (b"#EXTM3U\n#EXTINF:3,\nclip.ts\n", None),
    ],
)
def test_video_kind_comes_from_the_bytes(data: bytes, kind: str | None) -> None:
    assert sniff_video(data) == kind


# --------------------------------------------------------------------------- real ffprobe


@pytest.mark.parametrize("name", ["wav", "mp3"])
async def test_real_audio_is_accepted_with_its_length(media: dict[str, bytes], name: str) -> None:
    info = await probe_audio("soundtrack", media[name])
    assert (info.kind, info.size, info.measured_by) == (name.upper(), len(media[name]), "ffprobe")
    assert info.duration_seconds == pytest.approx(5.0, abs=0.1)


@pytest.mark.parametrize(
    ("name", "kind", "codec"),
    [("mp4", "MP4", "h264"), ("mov", "MOV", "h264"), ("webm", "WEBM", "vp9")],
)
async def test_real_video_is_accepted_with_its_length_size_and_codec(
    media: dict[str, bytes], name: str, kind: str, codec: str
) -> None:
    info = await probe_video("video", media[name], LIMITS)
    assert (info.kind, info.width, info.height, info.codec, info.measured_by) == (
        kind,
        320,
        240,
        codec,
        "ffprobe",
    )
    assert info.duration_seconds == pytest.approx(3.0, abs=0.1)
    assert info.size == len(media[name])


@pytest.mark.parametrize(
    ("name", "shown"), [("short.wav", "2.0"), ("short.mp3", "1.5"), ("long.mp3", "42.1")]
)
async def test_real_audio_out_of_range_is_refused(
    media: dict[str, bytes], name: str, shown: str
) -> None:
    message = await refusal(probe_audio("soundtrack", media[name]))
    assert message.startswith(f"`soundtrack` is {shown}")
    assert message.endswith("seconds long; the limit is 3 to 30 seconds.")


@pytest.mark.parametrize(
    ("name", "shown"), [("short.mp4", "1.0"), ("long.mp4", "12.0"), ("long.webm", "12.0")]
)
async def test_real_video_out_of_range_is_refused(
    media: dict[str, bytes], name: str, shown: str
) -> None:
    message = await refusal(probe_video("video", media[name], LIMITS))
    assert message == f"`video` is {shown} seconds long; the limit is 2 to 10 seconds."


async def test_real_video_over_the_byte_cap_is_refused(media: dict[str, bytes]) -> None:
    small = VideoLimits(min_seconds=2, max_seconds=10, max_bytes=len(media["mp4"]) - 1)
    message = await refusal(probe_video("video", media["mp4"], small))
    assert message.startswith("`video` is ") and "; the limit is " in message


async def test_real_files_of_the_wrong_kind_are_refused(media: dict[str, bytes]) -> None:
    for data in (media["mp4"], media["webm"], PNG, TEXT):
        assert await refusal(probe_audio("soundtrack", data)) == (
            "`soundtrack` must be a WAV or MP3 file."
        )
    for data in (media["wav"], media["mp3"], PNG, TEXT):
        assert await refusal(probe_video("video", data, LIMITS)) == (
            "`video` must be an MP4, WebM or MOV video."
        )


async def test_an_mp4_with_only_sound_is_not_a_video(media: dict[str, bytes]) -> None:
    message = await refusal(probe_video("video", media["sound.mp4"], LIMITS))
    assert message == "`video` has no video track."


@pytest.mark.parametrize(
    ("make", "wanted"),
    [
        (lambda m: m["wav"][:12] + noise(4000), "audio"),
        (lambda m: b"ID3\x04\x00\x00\x00\x00\x00\x00" + noise(4000), "audio"),
        (lambda m: m["mp4"][:32] + noise(4000), "video"),
        (lambda m: m["mp4"][: len(m["mp4"]) // 2], "video"),  # moov is at the end: cut off
        (lambda m: m["webm"][:4] + noise(4000), "video"),
    ],
)
async def test_a_file_that_sniffs_right_but_is_damaged_is_refused_not_raised(
    media: dict[str, bytes], make: Callable[[dict[str, bytes]], bytes], wanted: str
) -> None:
    data = make(media)
    if wanted == "audio":
        assert await refusal(probe_audio("soundtrack", data)) == (
            "`soundtrack` could not be read as audio."
        )
    else:
        assert await refusal(probe_video("video", data, LIMITS)) == (
            "`video` could not be read as a video."
        )


def _plain_ffprobe(path: Path) -> Any:
    """ffprobe as a careless caller would run it: no whitelists, the format guessed."""
    entries = "format=duration:stream=codec_type,width"
    argv = ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)]
    done = subprocess.run(argv, capture_output=True, check=True, timeout=30)
    return json.loads(done.stdout)


async def test_ffprobe_does_not_follow_a_playlist_even_past_the_sniffer(
    media: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ffconcat script naming a valid clip: plain ffprobe reports the clip's length, so
    only the whitelists and the explicit demuxer keep it from being accepted."""
    (tmp_path / "clip.mp4").write_bytes(media["mp4"])
    playlist = b"ffconcat version 1.0\nfile clip.mp4\nduration 3\n"
    (tmp_path / "list.txt").write_bytes(playlist)
    followed = _plain_ffprobe(tmp_path / "list.txt")
    assert float(followed["format"]["duration"]) == pytest.approx(3.0, abs=0.1)
    assert [(s["codec_type"], s["width"]) for s in followed["streams"]] == [("video", 320)]

    # The sniffer already refuses it; take it out of the way to reach ffprobe.
    assert sniff_video(playlist) is None
    monkeypatch.setattr(probe, "sniff_video", lambda data: "MP4")
    message = await refusal(probe_video("video", playlist, LIMITS, workdir=tmp_path))
    assert message == "`video` could not be read as a video."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "list.txt"]


async def test_the_temporary_file_is_removed_after_success_and_refusal(
    media: dict[str, bytes], tmp_path: Path
) -> None:
    await probe_video("video", media["mp4"], LIMITS, workdir=tmp_path)
    await refusal(probe_video("video", media["long.mp4"], LIMITS, workdir=tmp_path))
    await refusal(probe_audio("soundtrack", media["wav"][:12] + b"\x00" * 99, workdir=tmp_path))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- without ffprobe


@pytest.mark.usefixtures("no_ffprobe")
@pytest.mark.parametrize(
    ("data", "kind", "seconds"),
    [
        (wav_bytes(5), "WAV", 5.0),
        (wav_bytes(3), "WAV", 3.0),
        (wav_bytes(30), "WAV", 30.0),
        (mp3_bytes(192), "MP3", 192 * MP3_FRAME * 8 / 128_000),
        (mp3_bytes(192, id3=True), "MP3", 192 * MP3_FRAME * 8 / 128_000),
        # The Xing header counts 300 frames: measured by it, not by the 10 present.
        (mp3_bytes(10, xing_frames=300), "MP3", 300 * MP3_FRAME_SECONDS),
    ],
)
async def test_audio_headers_are_measured_without_ffprobe(
    data: bytes, kind: str, seconds: float
) -> None:
    info = await probe_audio("soundtrack", data)
    assert (info.kind, info.measured_by) == (kind, "header")
    assert info.duration_seconds == pytest.approx(seconds, abs=1e-6)


@pytest.mark.usefixtures("no_ffprobe")
@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (wav_bytes(42), "42.0"),
        (wav_bytes(30.04), "30.1"),  # rounded away from the limit
        (wav_bytes(2.96), "2.9"),
        (mp3_bytes(40), "1.0"),
        (mp3_bytes(10, xing_frames=2000), "52.3"),
    ],
)
async def test_audio_out_of_range_is_refused_without_ffprobe(data: bytes, shown: str) -> None:
    assert await refusal(probe_audio("soundtrack", data)) == (
        f"`soundtrack` is {shown} seconds long; the limit is 3 to 30 seconds."
    )


@pytest.mark.usefixtures("no_ffprobe")
@pytest.mark.parametrize(
    ("data", "kind", "seconds", "codec"),
    [
        (mp4_bytes(3), "MP4", 3.0, None),
        (mp4_bytes(7.5, timescale=90_000), "MP4", 7.5, None),
        (mp4_bytes(4, leading=b""), "MOV", 4.0, None),
        (mp4_bytes(2, leading=box(b"wide")), "MOV", 2.0, None),
        (webm_bytes(3000), "WEBM", 3.0, "V_VP8"),
    ],
)
async def test_video_headers_are_measured_without_ffprobe(
    data: bytes, kind: str, seconds: float, codec: str | None
) -> None:
    info = await probe_video("video", data, LIMITS)
    assert (info.kind, info.size, info.width, info.height, info.codec, info.measured_by) == (
        kind,
        len(data),
        320,
        240,
        codec,
        "header",
    )
    assert info.duration_seconds == pytest.approx(seconds)


@pytest.mark.usefixtures("no_ffprobe")
async def test_real_files_are_measured_without_ffprobe(media: dict[str, bytes]) -> None:
    for name in ("wav", "mp3"):
        info = await probe_audio("soundtrack", media[name])
        assert info.measured_by == "header"
        assert info.duration_seconds == pytest.approx(5.0, abs=0.1)
    for name in ("mp4", "mov", "webm"):
        video = await probe_video("video", media[name], LIMITS)
        assert (video.measured_by, video.width, video.height) == ("header", 320, 240)
        assert video.duration_seconds == pytest.approx(3.0, abs=0.1)
    assert await refusal(probe_video("video", media["long.webm"], LIMITS)) == (
        "`video` is 12.0 seconds long; the limit is 2 to 10 seconds."
    )
    assert await refusal(probe_video("video", media["sound.mp4"], LIMITS)) == (
        "`video` has no video track."
    )


@pytest.mark.usefixtures("no_ffprobe")
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (mp4_bytes(12), "`video` is 12.0 seconds long; the limit is 2 to 10 seconds."),
        (mp4_bytes(1), "`video` is 1.0 seconds long; the limit is 2 to 10 seconds."),
        (webm_bytes(10_500), "`video` is 10.5 seconds long; the limit is 2 to 10 seconds."),
        (mp4_bytes(3, handler=b"soun"), "`video` has no video track."),
        (webm_bytes(3000, track_type=2), "`video` has no video track."),
        (mp4_bytes(3, timescale=0), "`video` could not be read as a video."),
        (box(b"ftyp", b"isom") + noise(500), "`video` could not be read as a video."),
        (mp4_bytes(3)[:-100], "`video` could not be read as a video."),  # a box overruns
        (b"\x1a\x45\xdf\xa3" + noise(500), "`video` could not be read as a video."),
        # No Duration element: the length cannot be told, so it is not passed on.
        (webm_bytes(None), "`video` does not say how long it is; try saving it again as MP4."),
        # Millions of empty boxes would hold up the loop: the walk gives up.
        (box(b"ftyp", b"isom") + box(b"free") * 5000, "`video` could not be read as a video."),
    ],
)
async def test_video_refusals_without_ffprobe(data: bytes, message: str) -> None:
    assert await refusal(probe_video("video", data, LIMITS)) == message


@pytest.mark.usefixtures("no_ffprobe")
@pytest.mark.parametrize(
    "data",
    [
        b"RIFF\x00\x00\x00\x00WAVE" + noise(300),
        wav_bytes(5)[:36],  # no data chunk
        b"RIFF\x00\x00\x00\x00WAVEdata\x10\x00\x00\x00" + b"\x00" * 16,  # data before fmt
        b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 5000,  # a tag and no frames
        MP3_HEADER + b"\x00" * 500,  # one frame header, and no second where it should be
    ],
)
async def test_damaged_audio_is_refused_without_ffprobe(data: bytes) -> None:
    assert await refusal(probe_audio("soundtrack", data)) == (
        "`soundtrack` could not be read as audio."
    )


async def test_actual_size_is_checked_even_when_the_declared_one_passed() -> None:
    big = wav_bytes(1) + b"\x00" * MAX_AUDIO_BYTES
    assert await refusal(probe_audio("soundtrack", big)) == (
        "`soundtrack` is 15.1 MB; the limit is 15 MB."
    )
    cap = VideoLimits(min_seconds=2, max_seconds=10, max_bytes=1_000_000)
    data = mp4_bytes(3) + box(b"free", b"\x00" * 1_000_000)
    assert await refusal(probe_video("video", data, cap)) == "`video` is 1.1 MB; the limit is 1 MB."


# --------------------------------------------------------------------------- a stand-in ffprobe

FAKE = """\
import json, os, sys, time
log = os.environ["FAKE_FFPROBE_LOG"]
path = sys.argv[sys.argv.index("-i") + 1]
with open(log, "w") as f:
    json.dump({"argv": sys.argv[1:], "size": os.path.getsize(path), "pid": os.getpid()}, f)
mode = os.environ.get("FAKE_FFPROBE_MODE", "ok")
if mode == "sleep":
    time.sleep(60)
if mode == "fail":
    sys.stderr.write("Invalid data found when processing input\\n")
    sys.exit(1)
if mode == "garbage":
    print("not json")
    sys.exit(0)
streams = [] if mode == "nostream" else [
    {"codec_type": "audio", "codec_name": "pcm_u8"},
    {"codec_type": "video", "codec_name": "h264", "width": 64, "height": 48},
]
print(json.dumps({"streams": streams, "format": {"duration": "5.000000"}}))
"""


@pytest.fixture
def fake_ffprobe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Install the stand-in; returns a function that sets its mode and gives its log path."""
    script = tmp_path / "ffprobe"
    script.write_text(f"#!{sys.executable}\n{FAKE}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "argv.json"
    monkeypatch.setenv("FAKE_FFPROBE_LOG", str(log))

    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        return str(script) if name == "ffprobe" else REAL_WHICH(name, *args, **kwargs)

    monkeypatch.setattr(shutil, "which", which)

    def mode(value: str) -> Path:
        monkeypatch.setenv("FAKE_FFPROBE_MODE", value)
        return log

    return mode


@pytest.mark.parametrize(
    ("data", "demuxer", "whitelist"),
    [
        (wav_bytes(5), "wav", "wav"),
        (mp3_bytes(192), "mp3", "mp3"),
        (mp4_bytes(3), "mov", "mov,mp4,m4a,3gp,3g2,mj2"),
        (mp4_bytes(3, leading=b""), "mov", "mov,mp4,m4a,3gp,3g2,mj2"),
        (webm_bytes(3000), "matroska", "matroska,webm"),
    ],
)
async def test_ffprobe_reads_the_file_only_as_the_sniffed_kind_and_only_from_disk(
    fake_ffprobe: Callable[[str], Path], tmp_path: Path, data: bytes, demuxer: str, whitelist: str
) -> None:
    log = fake_ffprobe("ok")
    work = tmp_path / "work"
    work.mkdir()
    if demuxer in ("wav", "mp3"):
        info: AudioInfo | VideoInfo = await probe_audio("soundtrack", data, workdir=work)
    else:
        info = await probe_video("video", data, LIMITS, workdir=work)
    assert (info.duration_seconds, info.measured_by) == (5.0, "ffprobe")
    seen = json.loads(log.read_text())
    argv: list[str] = seen["argv"]
    path = argv[-1]
    assert argv[-2:] == ["-i", path] and Path(path).is_absolute()
    assert Path(path).parent == work
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"
    assert argv[argv.index("-format_whitelist") + 1] == whitelist
    assert argv[-4:-2] == ["-f", demuxer]  # right before the input
    assert seen["size"] == len(data)  # ffprobe read the whole file ...
    assert list(work.iterdir()) == []  # ... which is gone afterwards


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", "`soundtrack` could not be read as audio."),
        ("garbage", "`soundtrack` could not be read as audio."),
        ("nostream", "`soundtrack` has no audio track."),
    ],
)
async def test_ffprobe_failures_are_refusals(
    fake_ffprobe: Callable[[str], Path], tmp_path: Path, mode: str, message: str
) -> None:
    fake_ffprobe(mode)
    work = tmp_path / "work"
    work.mkdir()
    assert await refusal(probe_audio("soundtrack", wav_bytes(5), workdir=work)) == message
    assert list(work.iterdir()) == []


async def test_a_video_stream_is_required_from_ffprobe(
    fake_ffprobe: Callable[[str], Path],
) -> None:
    fake_ffprobe("nostream")
    assert await refusal(probe_video("video", mp4_bytes(3), LIMITS)) == (
        "`video` has no video track."
    )


async def test_a_hung_ffprobe_is_killed_at_the_timeout(
    fake_ffprobe: Callable[[str], Path], tmp_path: Path
) -> None:
    log = fake_ffprobe("sleep")
    work = tmp_path / "work"
    work.mkdir()
    message = await refusal(probe_video("video", mp4_bytes(3), LIMITS, timeout=1.0, workdir=work))
    assert message == "`video` took too long to check; try a shorter or simpler file."
    pid = json.loads(log.read_text())["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    assert list(work.iterdir()) == []


async def test_ffprobe_waits_for_a_slot_of_the_limiter(
    fake_ffprobe: Callable[[str], Path],
) -> None:
    log = fake_ffprobe("ok")
    limiter = asyncio.Semaphore(1)
    await limiter.acquire()
    task = asyncio.create_task(probe_audio("soundtrack", wav_bytes(5), limiter=limiter))
    await asyncio.sleep(0.5)
    assert not log.exists() and not task.done()
    limiter.release()
    info = await asyncio.wait_for(task, 30)
    assert info.measured_by == "ffprobe" and log.exists()
    assert not limiter.locked()


async def test_cancelling_a_probe_kills_ffprobe_and_deletes_the_file(
    fake_ffprobe: Callable[[str], Path], tmp_path: Path
) -> None:
    log = fake_ffprobe("sleep")
    work = tmp_path / "work"
    work.mkdir()
    task = asyncio.create_task(probe_audio("soundtrack", wav_bytes(5), workdir=work))
    for _ in range(100):
        if log.exists() and log.stat().st_size:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)  # the deletion runs on a worker thread
    with pytest.raises(ProcessLookupError):
        os.kill(json.loads(log.read_text())["pid"], 0)
    assert list(work.iterdir()) == []
