"""Joining the parts of an "Extend" chain into one MP4, in order.

:func:`join_clips` probes every part with ffprobe, then either copies the streams (fast, no
quality lost) or re-encodes:

* **Copied** when every part is H.264 in ``yuv420p``/``yuvj420p`` with the same size, sample
  aspect ratio, frame rate, time base and codec setup (the ``avcC`` extradata's CRC: the same
  SPS/PPS), and either no part has sound or every part has AAC with the same sample rate,
  channels, layout, time base and setup. Those are what the concat demuxer needs to stitch
  packets (it takes the first part's stream parameters for all) and what Discord plays inline.
* **Re-encoded** otherwise: every part scaled into the first part's size keeping its shape
  (padded with black), set to the first part's frame rate, then joined by the ``concat``
  filter into H.264 (``-preset veryfast``) + AAC. When some parts have sound and others not,
  the silent ones get a silent track of their length, so the segments line up.

The parts are untrusted and are read as :mod:`bot.media.reencode` reads a clip: each under
:func:`bot.media.reencode.input_restrictions` with the demuxer its ``formats`` entry names.

**The copy path and the concat demuxer.** The demuxer opens the files a list names, and opens
each one by *guessing* its format, with the whitelists of the list's own context (which must
allow ``concat``). An untrusted part could therefore be an ffconcat script naming other files.
So the list never names a member's file: each part is first remuxed (``-c copy``, first video
and first audio stream only, read with its explicit demuxer) into ``part-NNN.mp4`` inside a
private temporary folder next to ``dest``; the list names those copies by absolute path, quoted
for the ffconcat syntax, and gives each an ``option format_whitelist`` of the MP4 demuxer alone,
so a nested open can be nothing else. ``-safe 0`` is needed for absolute paths and for
``option``; it is harmless here because the bot writes the list and every file in it.
``-protocol_whitelist file`` is all the demuxer needs (the list and the parts are local files;
the ``concat:`` *protocol* is a different thing and stays off).

ffmpeg ends with success when the concat demuxer cannot open a later part (it just stops), so
the output is probed and refused when it is clearly shorter than the parts together.

One slot of the shared ffmpeg limiter (:func:`bot.media.reencode.shared_fit_limiter`) is held
for the whole join. Probing has its own timeout per part; the rest is bounded by
``base_timeout + timeout_per_second x`` the parts' total length (at most
:data:`MAX_TIMEOUT_SECONDS`). The output goes to a temporary name in that folder and is moved
onto ``dest`` only when complete; the folder is always removed. Every failure is a
:class:`JoinError` with a short ``reason`` (and ``part``, the index of the part at fault, when
there is one); ffmpeg's own words are only logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from bot.media.files import VideoFormat
from bot.media.reencode import (
    DEMUXERS,
    THREADS,
    arg_path,
    ffmpeg_argv,
    input_restrictions,
    last_line,
    positive_float,
    run_tool,
    shared_fit_limiter,
)

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 20.0
BASE_TIMEOUT_SECONDS = 60.0
TIMEOUT_PER_SECOND = 10.0
MAX_TIMEOUT_SECONDS = 1800.0
# What may be stream-copied into the MP4 (and what Discord plays inline).
COPY_VIDEO_CODECS = frozenset({"h264"})
COPY_PIXEL_FORMATS = frozenset({"yuv420p", "yuvj420p"})
COPY_AUDIO_CODECS = frozenset({"aac"})
# Re-encoding settings.
CRF = "20"
AUDIO_BPS = "128000"
AUDIO_RATE = 48000
DEFAULT_FPS = Fraction(30)
MAX_FPS = Fraction(60)
# The joined video may come out this much shorter than its parts (rounding, audio priming);
# anything more means a part was left out.
_SHORT_BY_SECONDS = 0.5
_SHORT_BY_SHARE = 0.02
_MP4_WHITELIST = "mov,mp4,m4a,3gp,3g2,mj2"


class JoinError(Exception):
    """The clips could not be joined; ``reason`` says why in a few words, ``part`` is the
    index (from 0) of the part at fault, if one is."""

    def __init__(self, reason: str, *, part: int | None = None) -> None:
        super().__init__(reason if part is None else f"part {part + 1}: {reason}")
        self.reason = reason
        self.part = part


@dataclass(frozen=True)
class JoinResult:
    path: Path
    reencoded: bool
    seconds: float
    size: int


@dataclass(frozen=True)
class _Audio:
    codec: str
    sample_rate: int
    channels: int
    layout: str
    time_base: str
    extradata: str | None


@dataclass(frozen=True)
class _Part:
    path: Path
    demuxer: str
    duration: float
    codec: str
    width: int
    height: int
    pix_fmt: str
    sar: str
    fps: Fraction | None
    time_base: str
    extradata: str | None
    audio: _Audio | None

    def copy_key(self) -> tuple[object, ...]:
        """What must be equal across the parts for a stream copy."""
        return (
            self.codec,
            self.width,
            self.height,
            self.pix_fmt,
            self.sar,
            self.fps,
            self.time_base,
            self.extradata,
            self.audio,
        )

    def copyable(self) -> bool:
        return (
            self.codec in COPY_VIDEO_CODECS
            and self.pix_fmt in COPY_PIXEL_FORMATS
            and self.fps is not None
            and (self.audio is None or self.audio.codec in COPY_AUDIO_CODECS)
        )


@dataclass(frozen=True)
class _Tools:
    ffmpeg: str
    ffprobe: str


async def join_clips(
    parts: Sequence[Path],
    dest: Path,
    *,
    formats: Sequence[VideoFormat],
    ffmpeg: str = "ffmpeg",
    ffprobe: str = "ffprobe",
    base_timeout: float = BASE_TIMEOUT_SECONDS,
    timeout_per_second: float = TIMEOUT_PER_SECOND,
    limiter: asyncio.Semaphore | None = None,
) -> JoinResult:
    """Join ``parts`` in order into the MP4 ``dest`` (replaced if it exists).

    ``formats[i]`` is the container ``parts[i]`` is read as. Raises :class:`JoinError`;
    ``ValueError`` for no parts, a ``formats`` of another length or an unknown format.
    """
    if not parts:
        raise ValueError("join_clips needs at least one part")
    if len(formats) != len(parts):
        raise ValueError("formats must name one format per part")
    demuxers = []
    for fmt in formats:
        demuxer = DEMUXERS.get(fmt)
        if demuxer is None:
            raise ValueError(f"every format must be one of {sorted(DEMUXERS)}")
        demuxers.append(demuxer)
    tools = _Tools(ffmpeg=ffmpeg, ffprobe=ffprobe)
    await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)

    async with limiter if limiter is not None else shared_fit_limiter():
        probed = [
            await _probe_part(tools, index, Path(part), demuxer)
            for index, (part, demuxer) in enumerate(zip(parts, demuxers, strict=True))
        ]
        expected = sum(part.duration for part in probed)
        time_allowed = min(MAX_TIMEOUT_SECONDS, base_timeout + timeout_per_second * expected)
        copy = _can_copy(probed)
        workdir = Path(tempfile.mkdtemp(prefix=".join-", dir=dest.parent))
        try:
            async with asyncio.timeout(time_allowed):
                output = workdir / "joined.mp4"
                if copy:
                    await _join_by_copy(tools, probed, workdir, output)
                else:
                    await _join_by_reencode(tools, probed, output)
                seconds = await _output_seconds(tools, output)
                _check_length(seconds, expected)
                size = _move(output, dest)
        except TimeoutError:
            raise JoinError(f"timed out after {time_allowed:g} s") from None
        finally:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, workdir, True))
    log.info(
        "joined %d parts (%.1f s) into %s by %s: %.1f s, %d bytes",
        len(probed),
        expected,
        dest.name,
        "stream copy" if copy else "re-encoding",
        seconds,
        size,
    )
    return JoinResult(path=dest, reencoded=not copy, seconds=seconds, size=size)


def _can_copy(parts: list[_Part]) -> bool:
    first = parts[0].copy_key()
    return all(part.copyable() and part.copy_key() == first for part in parts)


# --------------------------------------------------------------------------- probing


async def _probe_part(tools: _Tools, index: int, path: Path, demuxer: str) -> _Part:
    argv = [
        tools.ffprobe,
        "-v",
        "error",
        "-hide_banner",
        "-show_data_hash",
        "CRC32",
        "-show_entries",
        "format=duration:stream=index,codec_type,codec_name,width,height,pix_fmt,"
        "sample_aspect_ratio,avg_frame_rate,r_frame_rate,time_base,duration,sample_rate,"
        "channels,channel_layout,extradata_hash",
        "-of",
        "json",
        *input_restrictions(demuxer),
        "-i",
        arg_path(path),
    ]
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            code, out, err = await _run(argv)
    except TimeoutError:
        raise JoinError("took too long to read", part=index) from None
    if code != 0:
        log.info("join: part %d (%s): ffprobe failed: %s", index, path, last_line(err, code))
        raise JoinError("could not be read as a video", part=index)
    try:
        return _parse_part(json.loads(out), path, demuxer)
    except _Unusable as exc:
        raise JoinError(str(exc), part=index) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.info("join: part %d (%s): unusable ffprobe output: %s", index, path, exc)
        raise JoinError("could not be read as a video", part=index) from None


class _Unusable(Exception):
    pass


def _parse_part(data: Any, path: Path, demuxer: str) -> _Part:
    streams: list[dict[str, Any]] = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None:
        raise _Unusable("has no video")
    width, height = video.get("width"), video.get("height")
    if not isinstance(width, int) or not isinstance(height, int) or width <= 0 or height <= 0:
        raise _Unusable("has no picture size")
    duration = positive_float((data.get("format") or {}).get("duration"))
    if duration is None:
        # Some WebM files only carry durations per stream.
        durations = (positive_float(s.get("duration")) for s in streams)
        duration = max((d for d in durations if d is not None), default=None)
    if duration is None:
        raise _Unusable("does not say how long it is")
    audio_stream = next((s for s in streams if s.get("codec_type") == "audio"), None)
    return _Part(
        path=path,
        demuxer=demuxer,
        duration=duration,
        codec=str(video.get("codec_name") or ""),
        width=width,
        height=height,
        pix_fmt=str(video.get("pix_fmt") or ""),
        sar=_sar(video.get("sample_aspect_ratio")),
        fps=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")),
        time_base=str(video.get("time_base") or ""),
        extradata=_text(video.get("extradata_hash")),
        audio=_audio(audio_stream) if audio_stream is not None else None,
    )


def _audio(stream: dict[str, Any]) -> _Audio:
    try:
        sample_rate = int(stream.get("sample_rate") or 0)
    except ValueError:
        sample_rate = 0
    channels = stream.get("channels")
    return _Audio(
        codec=str(stream.get("codec_name") or ""),
        sample_rate=sample_rate,
        channels=channels if isinstance(channels, int) else 0,
        layout=str(stream.get("channel_layout") or ""),
        time_base=str(stream.get("time_base") or ""),
        extradata=_text(stream.get("extradata_hash")),
    )


def _sar(value: Any) -> str:
    # "0:1" (unknown) and absence both mean square pixels.
    return value if isinstance(value, str) and value not in ("", "0:1", "N/A") else "1:1"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _rate(value: Any) -> Fraction | None:
    if not isinstance(value, str) or "/" not in value:
        return None
    num, _, den = value.partition("/")
    try:
        rate = Fraction(int(num), int(den))
    except (ValueError, ZeroDivisionError):
        return None  # "0/0" when unknown
    return rate if 0 < rate <= 1000 else None


# --------------------------------------------------------------------------- stream copy


async def _join_by_copy(tools: _Tools, parts: list[_Part], workdir: Path, output: Path) -> None:
    copies = []
    for index, part in enumerate(parts):
        copy = workdir / f"part-{index:03d}.mp4"
        await _remux(tools, index, part, copy)
        copies.append(copy)
    listing = workdir / "parts.ffconcat"
    await asyncio.to_thread(listing.write_text, ffconcat_list(copies), "utf-8")
    argv = [
        *ffmpeg_argv(tools.ffmpeg),
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        f"concat,{_MP4_WHITELIST}",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        arg_path(listing),
        "-map",
        "0:v:0",
        *(["-map", "0:a:0"] if parts[0].audio is not None else []),
        "-c",
        "copy",
        "-map_metadata",
        "-1",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        arg_path(output),
    ]
    await _ffmpeg(argv, "joining the parts failed")


async def _remux(tools: _Tools, index: int, part: _Part, copy: Path) -> None:
    argv = [
        *ffmpeg_argv(tools.ffmpeg),
        *input_restrictions(part.demuxer),
        "-i",
        arg_path(part.path),
        "-map",
        "0:v:0",
        *(["-map", "0:a:0"] if part.audio is not None else []),
        "-c",
        "copy",
        "-map_metadata",
        "-1",
        "-f",
        "mp4",
        arg_path(copy),
    ]
    await _ffmpeg(argv, "could not be read as a video", part=index)


def ffconcat_list(files: Sequence[Path]) -> str:
    """An ffconcat script naming ``files`` (absolute paths), each opened as MP4 only.

    Paths are single-quoted; a quote inside is written ``'\\''`` (close, escaped quote, open),
    as ffmpeg's tokenizer reads it. A line break cannot be written at all: refused.
    """
    lines = ["ffconcat version 1.0"]
    for file in files:
        path = arg_path(file)
        if "\n" in path or "\r" in path or "\0" in path:
            raise JoinError("a working folder name holds a line break")
        quoted = "'" + path.replace("'", "'\\''") + "'"
        lines += [f"file {quoted}", f"option format_whitelist {_MP4_WHITELIST}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- re-encoding


async def _join_by_reencode(tools: _Tools, parts: list[_Part], output: Path) -> None:
    first = parts[0]
    width, height = _even(first.width), _even(first.height)
    fps = first.fps if first.fps is not None else DEFAULT_FPS
    fps = min(fps, MAX_FPS)
    with_audio = any(part.audio is not None for part in parts)
    inputs: list[str] = []
    chains: list[str] = []
    pads: list[str] = []
    for index, part in enumerate(parts):
        inputs += [
            "-threads",
            THREADS,
            *input_restrictions(part.demuxer),
            "-i",
            arg_path(part.path),
        ]
        chains.append(
            f"[{index}:v:0]"
            f"scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,"
            f"fps={fps.numerator}/{fps.denominator},format=yuv420p,setpts=PTS-STARTPTS[v{index}]"
        )
        pads.append(f"[v{index}]")
        if not with_audio:
            continue
        if part.audio is not None:
            chains.append(
                f"[{index}:a:0]aresample={AUDIO_RATE},"
                f"aformat=sample_fmts=fltp:channel_layouts=stereo,asetpts=PTS-STARTPTS[a{index}]"
            )
        else:
            chains.append(
                f"anullsrc=channel_layout=stereo:sample_rate={AUDIO_RATE},"
                f"atrim=duration={part.duration:.6f},aformat=sample_fmts=fltp[a{index}]"
            )
        pads.append(f"[a{index}]")
    audio_count = 1 if with_audio else 0
    chains.append(
        f"{''.join(pads)}concat=n={len(parts)}:v=1:a={audio_count}[v]"
        + ("[a]" if with_audio else "")
    )
    audio_out = ["-map", "[a]", "-c:a", "aac", "-b:a", AUDIO_BPS] if with_audio else ["-an"]
    argv = [
        *ffmpeg_argv(tools.ffmpeg),
        *inputs,
        "-filter_complex",
        ";".join(chains),
        "-map",
        "[v]",
        *audio_out,
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        CRF,
        "-pix_fmt",
        "yuv420p",
        "-threads",
        THREADS,
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        arg_path(output),
    ]
    await _ffmpeg(argv, "re-encoding the parts failed")


def _even(n: int) -> int:
    return max(2, n - n % 2)


# --------------------------------------------------------------------------- the output


async def _output_seconds(tools: _Tools, output: Path) -> float:
    argv = [
        tools.ffprobe,
        "-v",
        "error",
        "-hide_banner",
        "-show_entries",
        "format=duration",
        "-of",
        "json",
        *input_restrictions("mov"),
        "-i",
        arg_path(output),
    ]
    code, out, err = await _run(argv)
    if code != 0:
        log.warning("join: the output could not be probed: %s", last_line(err, code))
        raise JoinError("the joined video could not be read back")
    try:
        seconds = positive_float(json.loads(out)["format"]["duration"])
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("join: unusable ffprobe output for the result: %s", exc)
        seconds = None
    if seconds is None:
        raise JoinError("the joined video does not say how long it is")
    return seconds


def _move(output: Path, dest: Path) -> int:
    """Put the finished file in place (one rename: same folder tree, same file system)."""
    size = output.stat().st_size
    os.replace(output, dest)
    return size


def _check_length(seconds: float, expected: float) -> None:
    if seconds < expected - max(_SHORT_BY_SECONDS, _SHORT_BY_SHARE * expected):
        log.warning("join: %.2f s out of %.2f s of parts: a part was dropped", seconds, expected)
        raise JoinError("the joined video came out shorter than its parts")


# --------------------------------------------------------------------------- running


async def _run(argv: list[str]) -> tuple[int, bytes, bytes]:
    try:
        return await run_tool(argv)
    except FileNotFoundError:
        raise JoinError("ffmpeg is not installed") from None
    except OSError as exc:
        log.warning("join: could not run %s: %s", argv[0], exc)
        raise JoinError("ffmpeg could not be started") from None


async def _ffmpeg(argv: list[str], reason: str, *, part: int | None = None) -> None:
    code, _, err = await _run(argv)
    if code != 0:
        where = "" if part is None else f" (part {part})"
        log.warning("join%s: ffmpeg failed: %s", where, last_line(err, code))
        raise JoinError(reason, part=part)
