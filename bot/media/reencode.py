"""Shrinking a video with ffmpeg so it fits under Discord's upload limit.

:func:`fit_under_limit` returns the file unchanged when it already fits. Otherwise it re-encodes
to MP4 (H.264 + AAC, which Discord plays inline) at a bitrate computed from the limit and the
duration, lowering the resolution when that bitrate would be too thin for the picture size, and
retrying at most :data:`MAX_ATTEMPTS` times with less if the result still overshoots.

The downloaded file is untrusted, so ffprobe and ffmpeg read it under three restrictions:

* ``-f mov`` or ``-f matroska`` names the demuxer for the container we asked Together for
  (``source_format``) instead of letting ffmpeg guess from the bytes. Guessing would happily
  open an ffconcat script, an HLS playlist or an image sequence pattern, which name *other*
  files: a "video" that was really ``ffconcat version 1.0 / file other/job.mp4`` was once
  re-encoded into another job's video.
* ``-format_whitelist`` (:data:`FORMAT_WHITELIST`) backs that up: only the MP4 and
  Matroska/WebM demuxers may be opened, whichever one a nested open would pick.
* ``-protocol_whitelist file`` keeps every read on the local file system: no ``http``,
  ``concat:``, ``subfile`` or ``pipe`` reached from inside the file.

Paths are passed absolute and as single argv items (never a shell), so a name cannot turn into
an option or a protocol.

Re-encoding is CPU-heavy, so at most a few run at once in the process: each call holds a slot
of a limiter (an :class:`asyncio.Semaphore`; :func:`new_fit_limiter`, by default
``max(1, os.cpu_count() // 2)`` slots, since each ffmpeg uses :data:`THREADS` threads) while
ffprobe and ffmpeg run. Callers may pass their own; otherwise one shared per event loop is used
(:func:`shared_fit_limiter`, also taken by :mod:`bot.media.frames` and :mod:`bot.media.concat`,
which reuse this module's input restrictions and subprocess runner).
Time spent waiting for a slot does not count against ``timeout``: the timeout bounds the work
of one video, and the wait is itself bounded by the timeouts of the calls ahead.

ffmpeg and ffprobe run as subprocesses under one overall timeout; on timeout or cancellation
the process is killed and reaped, partial output is deleted and the slot is given back.
Every failure is a :class:`CannotFit` whose ``reason`` is a short English sentence for logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import shutil
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.media.files import VideoFormat

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# Share of the limit given to the streams; the rest covers MP4 overhead and rate-control slop.
SAFETY_MARGIN = 0.92
AUDIO_BPS = 64_000
# Below this many bits per pixel per frame H.264 turns to mush, so a smaller picture looks better.
MIN_BITS_PER_PIXEL = 0.04
# Short-side sizes tried, largest first. 1080 is the ceiling: a video that has to be squeezed
# gains nothing from more pixels, and 2-core machines encode 4K slowly.
SHORT_SIDES = (1080, 720, 480, 360)
# libx264 cannot honour much less than this (each frame costs a few hundred bytes at QP 51).
MIN_VIDEO_BPS = 20_000
THREADS = "2"
# ffmpeg's demuxer for each container we can ask Together for (see `ffmpeg -demuxers`).
DEMUXERS: dict[VideoFormat, str] = {"MP4": "mov", "WEBM": "matroska"}
# Every name of those two demuxers, as ffmpeg lists them; nothing else may be opened.
FORMAT_WHITELIST = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm"
PROTOCOL_WHITELIST = "file"
# Keep only the end of stderr: a damaged input can make ffmpeg print one error per frame.
_STDERR_TAIL = 16 * 1024
_STDOUT_MAX = 1024 * 1024
_REASON_MAX = 200


@dataclass(frozen=True)
class FitResult:
    path: Path
    size: int
    reencoded: bool


class CannotFit(Exception):
    """The video cannot be brought under the limit; ``reason`` says why (for logs)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Probe:
    duration: float
    width: int
    height: int
    fps: float
    has_audio: bool


@dataclass(frozen=True)
class _Plan:
    video_bps: int
    short_side: int


def default_fit_slots() -> int:
    """How many re-encodes may run at once by default: half the CPUs (each ffmpeg uses two
    threads), and at least one."""
    return max(1, (os.cpu_count() or 1) // 2)


def new_fit_limiter(slots: int | None = None) -> asyncio.Semaphore:
    """A limiter for :func:`fit_under_limit`: ``slots`` re-encodes at once, by default
    :func:`default_fit_slots`. Share one per process (per event loop)."""
    count = default_fit_slots() if slots is None else slots
    if count < 1:
        raise ValueError("a fit limiter needs at least one slot")
    return asyncio.Semaphore(count)


# asyncio.Semaphore binds to the loop it is first used on, so the shared default is made
# lazily, one per running loop (tests run each on a fresh loop).
_DEFAULT_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def shared_fit_limiter() -> asyncio.Semaphore:
    """The limiter shared by every ffmpeg job of this event loop that does not bring its own
    (re-encodes here, last frames in :mod:`bot.media.frames`, joins in :mod:`bot.media.concat`).
    Made on first use, one per running loop."""
    loop = asyncio.get_running_loop()
    limiter = _DEFAULT_LIMITERS.get(loop)
    if limiter is None:
        limiter = _DEFAULT_LIMITERS[loop] = new_fit_limiter()
    return limiter


def ffmpeg_available(ffmpeg: str = "ffmpeg", ffprobe: str = "ffprobe") -> bool:
    """Whether both binaries can be found (a name is looked up on PATH, a path is checked)."""
    return shutil.which(ffmpeg) is not None and shutil.which(ffprobe) is not None


async def fit_under_limit(
    source: Path,
    limit_bytes: int,
    workdir: Path,
    *,
    ffmpeg: str = "ffmpeg",
    ffprobe: str = "ffprobe",
    timeout: float = 300.0,  # noqa: ASYNC109 (part of the specified API)
    source_format: VideoFormat = "MP4",
    limiter: asyncio.Semaphore | None = None,
) -> FitResult:
    """Return ``source`` if it is at most ``limit_bytes``, else a re-encoded copy that is.

    The copy is ``workdir / f"{source.stem}-fit.mp4"`` (created through a temporary name, so
    that path never holds a partial file). ``source`` is only read, and only as the container
    ``source_format`` names (the one requested from Together): a file in any other format,
    including an ffconcat script or playlist naming other files, is refused with
    :class:`CannotFit`.

    A re-encode first takes a slot of ``limiter`` (by default one shared per event loop with
    :func:`default_fit_slots` slots) and always gives it back. ``timeout`` starts once the slot
    is held and covers the whole job, probing included. Raises :class:`CannotFit`; a missing
    ``source`` or an unwritable ``workdir`` raises ``OSError`` as usual.
    """
    if limit_bytes <= 0:
        raise ValueError("limit_bytes must be positive")
    demuxer = DEMUXERS.get(source_format)
    if demuxer is None:
        raise ValueError(f"source_format must be one of {sorted(DEMUXERS)}")
    size = _file_size(source)
    if size <= limit_bytes:
        log.debug("%s is %d bytes, within the %d byte limit; sent as is", source, size, limit_bytes)
        return FitResult(path=source, size=size, reencoded=False)

    tools = _Tools(ffmpeg=ffmpeg, ffprobe=ffprobe, demuxer=demuxer)
    async with limiter if limiter is not None else shared_fit_limiter():
        try:
            async with asyncio.timeout(timeout):
                return await _reencode(source, size, limit_bytes, workdir, tools)
        except TimeoutError:
            # The cancellation that asyncio.timeout delivered has already killed the subprocess
            # (see _run) and removed the partial file (see _reencode).
            raise CannotFit(f"timed out after {timeout:g} s") from None


@dataclass(frozen=True)
class _Tools:
    ffmpeg: str
    ffprobe: str
    demuxer: str


async def _reencode(
    source: Path, size: int, limit_bytes: int, workdir: Path, tools: _Tools
) -> FitResult:
    probe = await _probe(tools, source)
    audio_bps = AUDIO_BPS if probe.has_audio else 0
    budget_bps = limit_bytes * 8 * SAFETY_MARGIN / probe.duration - audio_bps
    if budget_bps < MIN_VIDEO_BPS:
        raise CannotFit(
            f"the {_human(limit_bytes)} limit is too small for a {probe.duration:.1f} s video"
        )

    final, partial = _output_paths(source, workdir)
    plan = _plan(probe, int(budget_bps), previous=None)
    out_size = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            await _encode(tools, source, partial, probe, plan)
            out_size = _file_size(partial)
            fits = out_size <= limit_bytes
            if fits:
                _rename(partial, final)
        except BaseException:
            _remove(partial)
            raise
        log.info(
            "re-encode %d/%d of %s (%d bytes, %.1f s): %dp at %d kb/s -> %d bytes, limit %d: %s",
            attempt,
            MAX_ATTEMPTS,
            source.name,
            size,
            probe.duration,
            plan.short_side,
            plan.video_bps // 1000,
            out_size,
            limit_bytes,
            "fits" if fits else "too big",
        )
        if fits:
            return FitResult(path=final, size=out_size, reencoded=True)
        # Cut the bitrate by the overshoot (and a bit more); a smaller picture may follow.
        scaled = int(plan.video_bps * min(0.85, limit_bytes / out_size * 0.95))
        following = _plan(probe, max(scaled, MIN_VIDEO_BPS), previous=plan)
        if following.short_side == plan.short_side and following.video_bps > plan.video_bps * 0.9:
            break  # held up by the floor: another attempt would give much the same file
        plan = following
    _remove(partial)
    raise CannotFit(
        f"even at the lowest quality the video is {_human(out_size)}, "
        f"over the {_human(limit_bytes)} limit"
    )


# --------------------------------------------------------------------------- planning


def _plan(probe: _Probe, video_bps: int, previous: _Plan | None) -> _Plan:
    """The largest short side (never above the source's, nor the previous attempt's) at which
    ``video_bps`` still gives :data:`MIN_BITS_PER_PIXEL`; the smallest one otherwise."""
    source_short = _even(min(probe.width, probe.height))
    ceiling = min(source_short, previous.short_side) if previous else source_short
    ratio = max(probe.width, probe.height) / min(probe.width, probe.height)
    candidates = sorted({min(side, ceiling) for side in SHORT_SIDES}, reverse=True)
    for side in candidates:
        pixels = side * side * ratio
        if video_bps / (pixels * probe.fps) >= MIN_BITS_PER_PIXEL:
            return _Plan(video_bps=video_bps, short_side=side)
    return _Plan(video_bps=video_bps, short_side=candidates[-1])


def _scale_filter(probe: _Probe, short_side: int) -> str:
    # -2 keeps the aspect ratio with an even size, which yuv420p needs; this also fixes
    # odd-sized sources when the picture is not shrunk.
    if probe.width >= probe.height:
        return f"scale=-2:{short_side}"
    return f"scale={short_side}:-2"


def _even(n: int) -> int:
    return max(2, n - n % 2)


# --------------------------------------------------------------------------- ffprobe / ffmpeg


def ffmpeg_argv(ffmpeg: str) -> list[str]:
    """The start of every ffmpeg command here: no stdin, overwrite, errors only."""
    return [ffmpeg, "-nostdin", "-y", "-hide_banner", "-loglevel", "error"]


def input_restrictions(demuxer: str) -> list[str]:
    """Options that must come right before an untrusted input (see the module docstring)."""
    return [
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-format_whitelist",
        FORMAT_WHITELIST,
        "-f",
        demuxer,
    ]


async def _probe(tools: _Tools, source: Path) -> _Probe:
    argv = [
        tools.ffprobe,
        "-v",
        "error",
        "-show_entries",
        "format=duration:stream=codec_type,width,height,avg_frame_rate,r_frame_rate,duration",
        "-of",
        "json",
        *input_restrictions(tools.demuxer),
        "-i",
        arg_path(source),
    ]
    code, out, err = await _run(argv)
    if code != 0:
        raise CannotFit(f"ffprobe failed: {last_line(err, code)}")
    try:
        data = json.loads(out)
        return _parse_probe(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CannotFit(f"ffprobe gave unusable output: {exc}") from None


def _parse_probe(data: Any) -> _Probe:
    streams: list[dict[str, Any]] = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None or not video.get("width") or not video.get("height"):
        raise CannotFit("the file has no video stream")
    duration = positive_float((data.get("format") or {}).get("duration"))
    if duration is None:
        # Some WEBM files only carry durations per stream.
        per_stream = [positive_float(s.get("duration")) for s in streams]
        duration = max((d for d in per_stream if d is not None), default=None)
    if duration is None:
        raise CannotFit("ffprobe could not tell the video's duration")
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")) or 30.0
    return _Probe(
        duration=duration,
        width=int(video["width"]),
        height=int(video["height"]),
        fps=fps,
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
    )


def positive_float(value: Any) -> float | None:
    """A finite number above 0 from ffprobe's JSON, or None ("N/A", absent, 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None  # "N/A" or absent
    return number if math.isfinite(number) and number > 0 else None


def _rate(value: Any) -> float | None:
    if not isinstance(value, str) or "/" not in value:
        return None
    num, _, den = value.partition("/")
    try:
        rate = float(num) / float(den)
    except (ValueError, ZeroDivisionError):
        return None  # "0/0" when unknown
    return rate if math.isfinite(rate) and 0 < rate <= 1000 else None


async def _encode(
    tools: _Tools,
    source: Path,
    partial: Path,
    probe: _Probe,
    plan: _Plan,
) -> None:
    rate = str(plan.video_bps)
    audio = ["-map", "0:a:0", "-c:a", "aac", "-b:a", str(AUDIO_BPS), "-ac", "2"]
    argv = [
        *ffmpeg_argv(tools.ffmpeg),
        "-threads",
        THREADS,
        *input_restrictions(tools.demuxer),
        "-i",
        arg_path(source),
        "-map",
        "0:v:0",
        *(audio if probe.has_audio else ["-an"]),
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-vf",
        _scale_filter(probe, plan.short_side),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-b:v",
        rate,
        "-maxrate",
        rate,
        "-bufsize",
        str(plan.video_bps * 2),
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-threads",
        THREADS,
        # The temporary name has no .mp4 ending, so the muxer is named outright.
        "-f",
        "mp4",
        arg_path(partial),
    ]
    code, _, err = await _run(argv)
    if code != 0:
        raise CannotFit(f"ffmpeg failed: {last_line(err, code)}")


async def _run(argv: list[str]) -> tuple[int, bytes, bytes]:
    try:
        return await run_tool(argv)
    except FileNotFoundError:
        # ffprobe ships in the same package, so either one missing means the same thing.
        raise CannotFit("ffmpeg is not installed") from None
    except OSError as exc:
        raise CannotFit(f"could not run {argv[0]}: {exc}") from None


async def run_tool(argv: list[str]) -> tuple[int, bytes, bytes]:
    """Run ``argv`` (never through a shell); return its exit code, the head of stdout and the
    tail of stderr. A binary that cannot be started raises ``OSError`` (``FileNotFoundError``
    when it is missing).

    If the caller is cancelled (the overall timeout included) or anything fails, the process
    is killed and waited for, so no ffmpeg is left running behind us.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        out, err, code = await asyncio.gather(
            _read_head(proc.stdout, _STDOUT_MAX),
            _read_tail(proc.stderr, _STDERR_TAIL),
            proc.wait(),
        )
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            # Shielded so a second cancellation cannot leave a zombie behind.
            await asyncio.shield(proc.wait())
    return code, out, err


async def _read_head(stream: asyncio.StreamReader, limit: int) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(64 * 1024):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


async def _read_tail(stream: asyncio.StreamReader, limit: int) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(64 * 1024):
        kept += chunk
        del kept[:-limit]
    return bytes(kept)


def last_line(stderr: bytes, code: int) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    last = next((line for line in reversed(lines) if line), f"exit status {code}")
    return last if len(last) <= _REASON_MAX else last[: _REASON_MAX - 3] + "..."


# --------------------------------------------------------------------------- files


def arg_path(path: Path) -> str:
    # Absolute, so a name starting with "-" is not read as an option and one like
    # "concat:x" is not read as an ffmpeg protocol.
    return str(path.absolute())


def _output_paths(source: Path, workdir: Path) -> tuple[Path, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    final = workdir / f"{source.stem}-fit.mp4"
    while final.absolute() == source.absolute():
        final = final.with_name(f"{final.stem}-fit.mp4")  # never overwrite the source
    partial = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
    return final, partial


def _file_size(path: Path) -> int:
    return path.stat().st_size


def _rename(partial: Path, final: Path) -> None:
    os.replace(partial, final)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _human(size: int) -> str:
    # Binary units, as Discord counts its limits ("10 MB" there is 10 MiB).
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"
