"""Fitting videos under the upload limit with ffmpeg.

Tests marked with the ``real_ffmpeg`` fixtures encode real videos and skip when ffmpeg/ffprobe
are not on PATH. The rest use bogus binary paths or small Python stand-ins for ffmpeg/ffprobe
(scripts that log their argv and write a file of a chosen size), so the missing-binary path,
the retry logic, failures, timeouts and cancellation are checked deterministically everywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

import pytest

from bot.media.reencode import (
    FORMAT_WHITELIST,
    CannotFit,
    FitResult,
    default_fit_slots,
    ffmpeg_available,
    fit_under_limit,
    new_fit_limiter,
)

NO_FFMPEG = "ffmpeg/ffprobe are not on PATH (Debian: apt-get install ffmpeg)"
BOGUS = "/nonexistent/bin/ffmpeg-that-is-not-there"
DURATION = 6.0


# --------------------------------------------------------------------------- helpers


def _require_ffmpeg() -> None:
    if not ffmpeg_available():
        pytest.skip(NO_FFMPEG)


def _make(path: Path, *args: str) -> Path:
    """Generate a test video with the real ffmpeg."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-hide_banner", "-loglevel", "error", *args, str(path)],
        check=True,
        timeout=60,
    )
    return path


def _testsrc(width: int, height: int, seconds: float = DURATION) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=30:duration={seconds}"]


def _probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration,format_name:stream=codec_type,codec_name,width,height,pix_fmt",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _stream(info: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((s for s in info["streams"] if s["codec_type"] == kind), None)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _processes_mentioning(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # exited while we looked
        if marker in cmdline and int(entry.name) != os.getpid():
            found.append(cmdline)
    return found


def _assert_no_process(marker: str) -> None:
    if not Path("/proc/self/cmdline").exists():
        return  # not Linux; the kill is still exercised, just not observed
    assert _processes_mentioning(marker) == []


def _check_fitted(result: FitResult, source: Path, workdir: Path, limit: int) -> dict[str, Any]:
    assert result.reencoded is True
    assert result.path == workdir / f"{source.stem}-fit.mp4"
    assert result.size == result.path.stat().st_size
    assert result.size <= limit
    # Only the finished file is left: no temporary or partial files.
    assert sorted(p.name for p in workdir.iterdir()) == [result.path.name]
    info = _probe(result.path)
    video = _stream(info, "video")
    assert video is not None
    assert video["codec_name"] == "h264"
    assert video["pix_fmt"] == "yuv420p"
    assert video["width"] % 2 == 0 and video["height"] % 2 == 0
    assert "mp4" in info["format"]["format_name"]
    assert abs(float(info["format"]["duration"]) - DURATION) <= 0.5
    return info


def _concat_script_naming(script: Path, video: Path, folder: Path) -> Path:
    """An ffconcat script at ``script`` that plays a copy of ``video`` kept in ``folder``
    (beside it, as another job's download would be), padded to 2 MB with a comment."""
    folder.mkdir(parents=True)
    victim = folder / "job.mp4"
    shutil.copyfile(video, victim)
    # Relative and plain, so the concat demuxer's "safe" mode allows it; `duration` lets
    # ffprobe report one, which the re-encoder needs.
    lines = f"ffconcat version 1.0\nfile {victim.relative_to(script.parent)}\nduration {DURATION}\n"
    script.write_text(lines + "#" + "x" * 2_000_000 + "\n")
    return script


def _big_blob(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


# --------------------------------------------------------------------------- stand-in binaries

_FAKE_FFPROBE = """
import json, sys
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
print(json.dumps({{
    "streams": [{{"codec_type": "video", "width": {width}, "height": {height},
                  "avg_frame_rate": "30/1", "r_frame_rate": "30/1"}}] + (
        [{{"codec_type": "audio"}}] if {audio} else []),
    "format": {{"duration": "{duration}"}},
}}))
"""

# Logs its argv, then writes ``size(bps)`` bytes to the output (the last argument).
_FAKE_FFMPEG = """
import json, pathlib, sys, time
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
bps = int(args[args.index("-b:v") + 1])
pathlib.Path(args[-1]).write_bytes(b"\\0" * int({size_expr}))
{after}
"""


def _script(folder: Path, name: str, body: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return str(path)


def _fake_ffprobe(
    folder: Path, *, width: int = 1280, height: int = 720, audio: bool = False
) -> str:
    log = folder / "ffprobe-argv.jsonl"
    body = _FAKE_FFPROBE.format(
        log=str(log), width=width, height=height, audio=audio, duration=DURATION
    )
    return _script(folder, "ffprobe", body)


def _fake_ffmpeg(folder: Path, size_expr: str, after: str = "") -> tuple[str, Path]:
    log = folder / "ffmpeg-argv.jsonl"
    body = _FAKE_FFMPEG.format(log=str(log), size_expr=size_expr, after=after)
    return _script(folder, "ffmpeg", body), log


# Records "start" and "end" around its work, and waits (up to a bound) for another stand-in to
# start meanwhile: if two can run at once they are sure to be seen overlapping.
_OVERLAP_WAIT = """
with open({markers!r}, "a") as f:
    f.write("start\\n")
deadline = time.monotonic() + {wait}
while time.monotonic() < deadline:
    with open({markers!r}) as f:
        if f.read().count("start") >= 2:
            break
    time.sleep(0.02)
with open({markers!r}, "a") as f:
    f.write("end\\n")
"""


def _overlap_recording_ffmpeg(folder: Path, wait: float) -> tuple[str, Path]:
    markers = folder / "markers.txt"
    ffmpeg, _ = _fake_ffmpeg(folder, "1000", _OVERLAP_WAIT.format(markers=str(markers), wait=wait))
    return ffmpeg, markers


def _most_at_once(markers: Path) -> int:
    running = most = 0
    for line in markers.read_text().split():
        running += 1 if line == "start" else -1
        most = max(most, running)
    return most


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _opt(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _input_opts(argv: list[str]) -> list[str]:
    """Everything before ``-i``: the input options and the global ones."""
    return argv[: argv.index("-i")]


def _assert_input_is_restricted(argv: list[str], source: Path, demuxer: str) -> None:
    before = _input_opts(argv)
    assert _opt(argv, "-i") == str(source)
    assert _opt(before, "-protocol_whitelist") == "file"
    assert _opt(before, "-format_whitelist") == FORMAT_WHITELIST
    assert _opt(before, "-f") == demuxer


# --------------------------------------------------------------------------- real videos


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_ffmpeg()
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def silent_video(videos: Path) -> Path:
    # Near-lossless so the 720p file is several MB.
    return _make(
        videos / "silent.mp4",
        *_testsrc(1280, 720),
        *("-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p"),
    )


@pytest.fixture(scope="module")
def sound_video(videos: Path) -> Path:
    return _make(
        videos / "sound.mp4",
        *_testsrc(1280, 720),
        *("-f", "lavfi", "-i", f"sine=frequency=440:duration={DURATION}"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p"),
        *("-c:a", "aac", "-b:a", "192k", "-shortest"),
    )


@pytest.fixture(scope="module")
def webm_video(videos: Path) -> Path:
    encoders = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True
    ).stdout
    if " libvpx " not in encoders or " libopus " not in encoders:
        pytest.skip("this ffmpeg has no libvpx/libopus encoder to make a WEBM")
    return _make(
        videos / "clip.webm",
        *_testsrc(1280, 720),
        *("-f", "lavfi", "-i", f"sine=frequency=330:duration={DURATION}"),
        *("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "6M"),
        *("-c:a", "libopus", "-shortest"),
    )


@pytest.mark.parametrize(("limit", "height"), [(1_000_000, 720), (300_000, 360)])
async def test_large_video_is_fitted_under_the_limit(
    silent_video: Path, tmp_path: Path, limit: int, height: int
) -> None:
    before = _sha256(silent_video)
    assert silent_video.stat().st_size > 3 * 1024 * 1024

    result = await fit_under_limit(silent_video, limit, tmp_path / "work")

    info = _check_fitted(result, silent_video, tmp_path / "work", limit)
    assert _stream(info, "audio") is None
    video = _stream(info, "video")
    # 1 MB over 6 s still gives 720p 0.04 bits/pixel; 300 KB only suits 360p.
    assert video is not None and video["height"] == height
    assert _sha256(silent_video) == before  # the source is only read


async def test_audio_is_kept_as_aac(sound_video: Path, tmp_path: Path) -> None:
    result = await fit_under_limit(sound_video, 1_000_000, tmp_path)

    info = _check_fitted(result, sound_video, tmp_path, 1_000_000)
    audio = _stream(info, "audio")
    assert audio is not None and audio["codec_name"] == "aac"


async def test_webm_input_becomes_h264_mp4(webm_video: Path, tmp_path: Path) -> None:
    result = await fit_under_limit(webm_video, 1_000_000, tmp_path, source_format="WEBM")

    info = _check_fitted(result, webm_video, tmp_path, 1_000_000)
    audio = _stream(info, "audio")
    assert audio is not None and audio["codec_name"] == "aac"


@pytest.mark.parametrize("source_format", ["MP4", "WEBM"])
async def test_ffconcat_script_naming_another_jobs_video_is_refused(
    silent_video: Path, tmp_path: Path, source_format: Literal["MP4", "WEBM"]
) -> None:
    downloads = tmp_path / "downloads"
    _concat_script_naming(downloads / "attack.mp4", silent_video, downloads / "victim")
    # Guard on the test itself: left to guess, ffmpeg does read this as a concat script.
    assert _probe(downloads / "attack.mp4")["format"]["format_name"] == "concat"

    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(
            downloads / "attack.mp4", 100_000, tmp_path / "work", source_format=source_format
        )

    assert caught.value.reason.startswith("ffprobe failed: ")
    assert not (tmp_path / "work").exists() or list((tmp_path / "work").iterdir()) == []


async def test_ffmpeg_refuses_an_ffconcat_script_even_past_a_fooled_probe(
    silent_video: Path, tmp_path: Path
) -> None:
    downloads = tmp_path / "downloads"
    _concat_script_naming(downloads / "attack.mp4", silent_video, downloads / "victim")
    # ffprobe is a stand-in that vouches for the file: only ffmpeg's own flags protect it.
    ffprobe = _fake_ffprobe(tmp_path / "bin")

    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(downloads / "attack.mp4", 100_000, tmp_path / "work", ffprobe=ffprobe)

    assert caught.value.reason.startswith("ffmpeg failed: ")
    assert list((tmp_path / "work").iterdir()) == []


async def test_video_in_another_container_than_expected_is_refused(
    silent_video: Path, tmp_path: Path
) -> None:
    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(silent_video, 300_000, tmp_path, source_format="WEBM")

    assert caught.value.reason.startswith("ffprobe failed: ")
    assert list(tmp_path.iterdir()) == []


async def test_portrait_video_keeps_its_shape(videos: Path, tmp_path: Path) -> None:
    source = _make(
        videos / "portrait.mp4",
        *_testsrc(720, 1280),
        *("-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p"),
    )

    result = await fit_under_limit(source, 300_000, tmp_path)

    video = _stream(_check_fitted(result, source, tmp_path, 300_000), "video")
    assert video is not None
    assert video["width"] < video["height"]
    assert abs(video["width"] / video["height"] - 720 / 1280) < 0.02


async def test_small_video_is_returned_unchanged(silent_video: Path, tmp_path: Path) -> None:
    limit = silent_video.stat().st_size

    result = await fit_under_limit(silent_video, limit, tmp_path)

    assert result == FitResult(path=silent_video, size=limit, reencoded=False)
    assert list(tmp_path.iterdir()) == []


async def test_impossible_limit_is_refused_without_leftovers(
    silent_video: Path, tmp_path: Path
) -> None:
    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(silent_video, 5_000, tmp_path)

    assert "limit" in caught.value.reason
    assert "5 KB" in caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert list(tmp_path.iterdir()) == []


async def test_corrupt_input_gives_ffprobes_reason(videos: Path, tmp_path: Path) -> None:
    source = _big_blob(videos / "corrupt.mp4", 200_000)

    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(source, 10_000, tmp_path)

    assert caught.value.reason.startswith("ffprobe failed: ")
    assert "Invalid data found" in caught.value.reason
    assert list(tmp_path.iterdir()) == []


async def test_tiny_timeout_gives_up_and_leaves_nothing(silent_video: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "work"

    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(silent_video, 300_000, workdir, timeout=0.01)

    assert caught.value.reason == "timed out after 0.01 s"
    assert not workdir.exists() or list(workdir.iterdir()) == []
    _assert_no_process(str(silent_video))


def test_ffmpeg_available_on_this_machine() -> None:
    _require_ffmpeg()
    assert ffmpeg_available() is True
    assert ffmpeg_available(shutil.which("ffmpeg") or "", shutil.which("ffprobe") or "") is True


# --------------------------------------------------------------------------- no ffmpeg needed


def test_ffmpeg_available_is_false_for_bogus_paths() -> None:
    assert ffmpeg_available(BOGUS, BOGUS) is False
    assert ffmpeg_available("ffmpeg", BOGUS) is False
    assert ffmpeg_available(BOGUS, "ffprobe") is False


async def test_file_within_limit_needs_no_ffmpeg(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip.mp4", 4_000)

    result = await fit_under_limit(source, 4_000, tmp_path / "work", ffmpeg=BOGUS, ffprobe=BOGUS)

    assert result == FitResult(path=source, size=4_000, reencoded=False)
    assert not (tmp_path / "work").exists()


async def test_missing_ffmpeg_is_reported(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip.mp4", 50_000)

    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(source, 10_000, tmp_path / "work", ffmpeg=BOGUS, ffprobe=BOGUS)

    assert caught.value.reason == "ffmpeg is not installed"


async def test_missing_ffmpeg_after_probing_is_reported(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip.mp4", 2_000_000)
    ffprobe = _fake_ffprobe(tmp_path / "bin")

    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(source, 1_000_000, tmp_path / "work", ffmpeg=BOGUS, ffprobe=ffprobe)

    assert caught.value.reason == "ffmpeg is not installed"
    assert list((tmp_path / "work").iterdir()) == []


async def test_ffmpeg_argv_and_overshoot_retry(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "my clip.mp4", 2_000_000)
    bin_dir = tmp_path / "bin"
    ffprobe = _fake_ffprobe(bin_dir, audio=True)
    # The encoder overshoots its target by 30%: the first try is too big, the second fits.
    ffmpeg, log = _fake_ffmpeg(bin_dir, f"(bps + 64000) * {DURATION} / 8 * 1.3")

    result = await fit_under_limit(
        source, 800_000, tmp_path / "work", ffmpeg=ffmpeg, ffprobe=ffprobe
    )

    assert result.reencoded and result.size <= 800_000
    assert result.path == tmp_path / "work" / "my clip-fit.mp4"
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["my clip-fit.mp4"]
    first, second = _calls(log)
    # The path is one argv item, spaces and all; no shell is involved. The input is read
    # as MP4 only, from the file system only.
    _assert_input_is_restricted(first, source, "mov")
    (probed,) = _calls(bin_dir / "ffprobe-argv.jsonl")
    _assert_input_is_restricted(probed, source, "mov")
    for flag in ("-nostdin", "-y", "-hide_banner", "-movflags"):
        assert flag in first
    assert _opt(first, "-loglevel") == "error"
    assert _opt(first, "-threads") == "2"
    assert _opt(first, "-c:v") == "libx264"
    assert _opt(first, "-preset") == "veryfast"
    assert _opt(first, "-pix_fmt") == "yuv420p"
    assert _opt(first, "-c:a") == "aac"
    assert _opt(first, "-b:a") == "64000"
    assert first[-3:-1] == ["-f", "mp4"]  # the output's muxer
    rate = int(_opt(first, "-b:v"))
    # 800 KB * 8 * 0.92 over 6 s, less 64 kb/s of audio.
    assert rate == int(800_000 * 8 * 0.92 / DURATION - 64_000)
    assert _opt(first, "-maxrate") == str(rate)
    assert _opt(first, "-bufsize") == str(2 * rate)
    # ~917 kb/s is 0.033 bits/pixel at 720p30, under 0.04, so the picture steps down to 480p.
    assert _opt(first, "-vf") == "scale=-2:480"
    assert int(_opt(second, "-b:v")) < rate
    assert first[-1] != str(result.path)  # written under a temporary name first


async def test_webm_input_is_read_with_the_matroska_demuxer(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip.webm", 2_000_000)
    bin_dir = tmp_path / "bin"
    ffmpeg, log = _fake_ffmpeg(bin_dir, "1000")

    await fit_under_limit(
        source,
        1_000_000,
        tmp_path / "work",
        ffmpeg=ffmpeg,
        ffprobe=_fake_ffprobe(bin_dir),
        source_format="WEBM",
    )

    (encoded,) = _calls(log)
    (probed,) = _calls(bin_dir / "ffprobe-argv.jsonl")
    _assert_input_is_restricted(encoded, source, "matroska")
    _assert_input_is_restricted(probed, source, "matroska")


async def test_unknown_source_format_is_a_value_error(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip.avi", 2_000)

    with pytest.raises(ValueError, match="source_format"):
        await fit_under_limit(source, 1_000, tmp_path, source_format="AVI")  # type: ignore[arg-type]


async def test_still_too_big_after_every_attempt(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip.mp4", 3_000_000)
    bin_dir = tmp_path / "bin"
    ffprobe = _fake_ffprobe(bin_dir, width=1920, height=1080)
    ffmpeg, log = _fake_ffmpeg(bin_dir, "2_500_000")  # whatever it is asked for

    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(source, 2_000_000, tmp_path / "work", ffmpeg=ffmpeg, ffprobe=ffprobe)

    assert caught.value.reason == (
        "even at the lowest quality the video is 2.4 MB, over the 1.9 MB limit"
    )
    calls = _calls(log)
    assert len(calls) == 3
    rates = [int(_opt(c, "-b:v")) for c in calls]
    heights = [int(_opt(c, "-vf").removeprefix("scale=-2:")) for c in calls]
    assert rates[0] > rates[1] > rates[2]
    assert heights[0] >= heights[1] >= heights[2]
    assert heights[-1] < 1080
    assert list((tmp_path / "work").iterdir()) == []


async def test_ffmpeg_error_gives_its_last_stderr_line(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip.mp4", 2_000_000)
    bin_dir = tmp_path / "bin"
    ffprobe = _fake_ffprobe(bin_dir)
    after = (
        "sys.stderr.write('first problem\\nError while decoding stream #0:0: boom\\n\\n')\n"
        "sys.exit(1)"
    )
    ffmpeg, _ = _fake_ffmpeg(bin_dir, "1000", after)  # leaves a partial file behind

    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(source, 1_000_000, tmp_path / "work", ffmpeg=ffmpeg, ffprobe=ffprobe)

    assert caught.value.reason == "ffmpeg failed: Error while decoding stream #0:0: boom"
    assert list((tmp_path / "work").iterdir()) == []


async def test_silent_ffmpeg_failure_gives_exit_status(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip.mp4", 2_000_000)
    bin_dir = tmp_path / "bin"
    ffmpeg, _ = _fake_ffmpeg(bin_dir, "0", "sys.exit(3)")

    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(
            source, 1_000_000, tmp_path / "work", ffmpeg=ffmpeg, ffprobe=_fake_ffprobe(bin_dir)
        )

    assert caught.value.reason == "ffmpeg failed: exit status 3"


async def test_timeout_kills_a_running_ffmpeg(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip.mp4", 2_000_000)
    bin_dir = tmp_path / "bin"
    ffmpeg, log = _fake_ffmpeg(bin_dir, "5000", "time.sleep(60)")
    started = time.monotonic()

    with pytest.raises(CannotFit) as caught:
        await fit_under_limit(
            source,
            1_000_000,
            tmp_path / "work",
            ffmpeg=ffmpeg,
            ffprobe=_fake_ffprobe(bin_dir),
            timeout=1.5,
        )

    assert caught.value.reason == "timed out after 1.5 s"
    assert time.monotonic() - started < 10
    assert log.exists()  # ffmpeg was running when time ran out
    assert list((tmp_path / "work").iterdir()) == []
    _assert_no_process(ffmpeg)


async def test_cancellation_kills_a_running_ffmpeg(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip.mp4", 2_000_000)
    bin_dir = tmp_path / "bin"
    ffmpeg, log = _fake_ffmpeg(bin_dir, "5000", "time.sleep(60)")
    task = asyncio.create_task(
        fit_under_limit(
            source, 1_000_000, tmp_path / "work", ffmpeg=ffmpeg, ffprobe=_fake_ffprobe(bin_dir)
        )
    )
    for _ in range(200):  # wait until the stand-in is running
        if log.exists():
            break
        await asyncio.sleep(0.05)
    assert log.exists()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert list((tmp_path / "work").iterdir()) == []
    _assert_no_process(ffmpeg)


async def test_output_never_overwrites_the_source(tmp_path: Path) -> None:
    source = _big_blob(tmp_path / "clip-fit.mp4", 2_000_000)
    before = _sha256(source)
    bin_dir = tmp_path / "bin"
    ffmpeg, _ = _fake_ffmpeg(bin_dir, "1000")

    result = await fit_under_limit(
        source, 1_000_000, tmp_path, ffmpeg=ffmpeg, ffprobe=_fake_ffprobe(bin_dir)
    )

    assert result.path == tmp_path / "clip-fit-fit.mp4"
    assert result.size == 1000
    assert _sha256(source) == before


async def test_limit_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="limit_bytes"):
        await fit_under_limit(tmp_path / "x.mp4", 0, tmp_path)


# --------------------------------------------------------------------------- concurrency limit


def _two_fits(tmp_path: Path, ffmpeg: str, **kwargs: Any) -> list[Any]:
    ffprobe = _fake_ffprobe(tmp_path / "bin")
    return [
        fit_under_limit(
            _big_blob(tmp_path / f"clip{n}.mp4", 2_000_000),
            1_000_000,
            tmp_path / "work",
            ffmpeg=ffmpeg,
            ffprobe=ffprobe,
            **kwargs,
        )
        for n in (1, 2)
    ]


async def test_a_limiter_of_one_runs_re_encodes_one_at_a_time(tmp_path: Path) -> None:
    ffmpeg, markers = _overlap_recording_ffmpeg(tmp_path / "bin", wait=1.0)
    limiter = new_fit_limiter(1)

    results = await asyncio.gather(*_two_fits(tmp_path, ffmpeg, limiter=limiter))

    assert all(r.reencoded for r in results)
    assert markers.read_text().split() == ["start", "end", "start", "end"]
    assert _most_at_once(markers) == 1
    assert not limiter.locked()  # the slot was given back


async def test_a_limiter_of_two_lets_two_run_together(tmp_path: Path) -> None:
    # The stand-in waits for the other to start, so this finishes early when they overlap.
    ffmpeg, markers = _overlap_recording_ffmpeg(tmp_path / "bin", wait=30.0)

    await asyncio.gather(*_two_fits(tmp_path, ffmpeg, limiter=new_fit_limiter(2)))

    assert _most_at_once(markers) == 2


async def test_default_limiter_uses_half_the_cpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each test has its own event loop, hence its own default limiter, sized here.
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    ffmpeg, markers = _overlap_recording_ffmpeg(tmp_path / "bin", wait=1.0)

    await asyncio.gather(*_two_fits(tmp_path, ffmpeg))

    assert _most_at_once(markers) == 1


@pytest.mark.parametrize(("cpus", "slots"), [(None, 1), (1, 1), (2, 1), (3, 1), (8, 4)])
def test_default_fit_slots(monkeypatch: pytest.MonkeyPatch, cpus: int | None, slots: int) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert default_fit_slots() == slots


def test_a_limiter_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="slot"):
        new_fit_limiter(0)


@pytest.mark.parametrize("ending", ["failure", "timeout", "cancellation"])
async def test_the_slot_is_given_back_however_a_re_encode_ends(tmp_path: Path, ending: str) -> None:
    source = _big_blob(tmp_path / "clip.mp4", 2_000_000)
    bin_dir = tmp_path / "bin"
    after = "sys.exit(1)" if ending == "failure" else "time.sleep(60)"
    ffmpeg, log = _fake_ffmpeg(bin_dir, "1000", after)
    limiter = new_fit_limiter(1)
    task = asyncio.create_task(
        fit_under_limit(
            source,
            1_000_000,
            tmp_path / "work",
            ffmpeg=ffmpeg,
            ffprobe=_fake_ffprobe(bin_dir),
            timeout=1.0 if ending == "timeout" else 300.0,
            limiter=limiter,
        )
    )
    if ending == "cancellation":
        for _ in range(200):  # wait until the stand-in is running
            if log.exists():
                break
            await asyncio.sleep(0.05)
        assert limiter.locked()
        task.cancel()

    with pytest.raises((CannotFit, asyncio.CancelledError)):
        await task

    assert not limiter.locked()
    assert list((tmp_path / "work").iterdir()) == []
    _assert_no_process(ffmpeg)


async def test_cancelled_while_waiting_for_a_slot_runs_nothing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    ffmpeg, log = _fake_ffmpeg(bin_dir, "1000")
    limiter = new_fit_limiter(1)
    async with limiter:
        task = asyncio.create_task(
            fit_under_limit(
                _big_blob(tmp_path / "clip.mp4", 2_000_000),
                1_000_000,
                tmp_path / "work",
                ffmpeg=ffmpeg,
                ffprobe=_fake_ffprobe(bin_dir),
                limiter=limiter,
            )
        )
        await asyncio.sleep(0)  # let it start waiting
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert not limiter.locked()
    assert not (bin_dir / "ffprobe-argv.jsonl").exists()
    assert not log.exists()


async def test_waiting_for_a_slot_does_not_count_against_the_timeout(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    ffmpeg, _ = _fake_ffmpeg(bin_dir, "1000")
    limiter = new_fit_limiter(1)
    async with limiter:
        task = asyncio.create_task(
            fit_under_limit(
                _big_blob(tmp_path / "clip.mp4", 2_000_000),
                1_000_000,
                tmp_path / "work",
                ffmpeg=ffmpeg,
                ffprobe=_fake_ffprobe(bin_dir),
                timeout=3.0,
                limiter=limiter,
            )
        )
        await asyncio.sleep(4.0)  # longer than the timeout, holding the only slot
        assert not task.done()
        assert not (bin_dir / "ffprobe-argv.jsonl").exists()

    result = await task

    assert result.reencoded
