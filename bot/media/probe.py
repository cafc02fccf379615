"""Audio and video attachments judged by their bytes, before anything is sent to Together.

Members can attach a ``soundtrack`` (sent as ``media.audio_inputs``) and a ``video`` clip (sent
as ``media.frame_videos``, ``reference_videos`` or ``source_video``). Together fetches both by
URL, so a file it would refuse costs the member a failed job; a hostile file is also read here by
ffprobe. Each attachment passes these checks, cheapest first:

* **Declared size before download** (:func:`check_declared_audio_size`,
  :func:`check_declared_video_size`): Discord's declared size is over the cap, so nothing is
  fetched. It can lie, so :func:`probe_audio` and :func:`probe_video` check the real length again.
* **The kind by content**: magic bytes, never the file name or Discord's content type. WAV is
  ``RIFF....WAVE``; MP3 is an ID3v2 tag or an MPEG-1/2/2.5 Layer III frame header; MP4 and MOV
  are an ``ftyp`` box (brand ``qt`` is MOV) or a QuickTime atom (``moov``, ``mdat``, ``wide``,
  ``free``, ``skip``, ``pnot``) at the start; WebM is an EBML header (``1A 45 DF A3``), whose
  Matroska cousin is read by the same demuxer and accepted too.
* **The length** (and, for video, the picture size and codec), then the limits: Together's for
  audio (:data:`AUDIO_KINDS`, :data:`MIN_AUDIO_SECONDS` to :data:`MAX_AUDIO_SECONDS`,
  :data:`MAX_AUDIO_BYTES`), the caller's :class:`VideoLimits` for video.

**With ffprobe** (found with ``shutil.which("ffprobe")``) the bytes are written to a private
temporary file and read under the same restrictions as :mod:`bot.media.reencode`:
``-protocol_whitelist file`` (no network, no ``concat:``/``subfile``/``pipe`` reached from inside
the file), ``-format_whitelist`` holding only the demuxer of the sniffed kind, and ``-f`` naming
that demuxer (``wav``, ``mp3``, ``mov``, ``matroska``), so an ffconcat script or an HLS playlist is
never opened as one. Audio needs an audio stream, video a video stream with a size. ffprobe runs
as an asyncio subprocess under :data:`PROBE_TIMEOUT_SECONDS`, at most :data:`PROBE_SLOTS` at once
per event loop (or as many as the caller's limiter allows); on timeout or cancellation it is
killed and reaped, and the temporary file is always deleted.

**Without ffprobe** the headers are read in Python (no decoding, nothing run):

* WAV: the ``data`` chunk's size (at most what is present) divided by the ``fmt`` byte rate.
* MP3: the Xing/Info or VBRI frame count when the first frame has one, else the first frame's
  bitrate and the size of the audio (a constant-bitrate estimate; a VBR file without those
  headers is measured wrongly). Two frame headers in a row must be valid.
* MP4/MOV: ``moov/mvhd`` (duration / timescale) and the first ``trak`` whose handler is
  ``vide`` (its ``tkhd`` size); the codec is not read (``codec`` is ``None``).
* WebM: ``Segment/Info`` (Duration x TimecodeScale) and the first video ``TrackEntry`` (size,
  CodecID). A WebM without a Duration element (often so when a browser recorded it) is
  *refused*, as is any file whose length cannot be told: nothing unmeasured is passed on.

The fallback does not check that the stream data is decodable; ffprobe does not either (it reads
headers and a few packets), so a damaged file can still pass both. Refusals are
:class:`MediaInputError`, whose message names the option and the limit and never quotes the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import struct
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.domain.errors import InvalidOptionError
from bot.i18n import option_name
from bot.media.reencode import positive_float, run_tool

log = logging.getLogger(__name__)

AudioKind = Literal["WAV", "MP3"]
VideoKind = Literal["MP4", "MOV", "WEBM"]

# Together's rules for media.audio_inputs. "15 MB" is taken as 15,000,000 bytes, the smaller
# reading, so nothing accepted here is over Together's limit.
AUDIO_KINDS: tuple[AudioKind, ...] = ("WAV", "MP3")
MIN_AUDIO_SECONDS = 3.0
MAX_AUDIO_SECONDS = 30.0
MAX_AUDIO_BYTES = 15 * 1000 * 1000

PROBE_TIMEOUT_SECONDS = 20.0
PROBE_SLOTS = 4
PROTOCOL_WHITELIST = "file"

_Kind = Literal["WAV", "MP3", "MP4", "MOV", "WEBM"]
# ffprobe's demuxer for each kind, and every name it answers to (see `ffmpeg -demuxers`).
_DEMUXERS: dict[_Kind, tuple[str, str]] = {
    "WAV": ("wav", "wav"),
    "MP3": ("mp3", "mp3"),
    "MP4": ("mov", "mov,mp4,m4a,3gp,3g2,mj2"),
    "MOV": ("mov", "mov,mp4,m4a,3gp,3g2,mj2"),
    "WEBM": ("matroska", "matroska,webm"),
}
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
# How far past an ID3 tag the first MP3 frame is looked for.
_MP3_SEARCH = 64 * 1024
# Real files hold a handful of boxes, chunks or elements per level (Matroska stops at the first
# Cluster); a file made of millions of tiny ones would hold up the event loop for seconds.
_MAX_CHILDREN = 1000


class MediaInputError(InvalidOptionError):
    """An attached sound or video cannot be used; ``message`` tells the member why."""


@dataclass(frozen=True)
class VideoLimits:
    """A model's caps for an attached video: length in seconds (inclusive) and size in bytes."""

    min_seconds: float
    max_seconds: float
    max_bytes: int

    def __post_init__(self) -> None:
        if not 0 <= self.min_seconds <= self.max_seconds or self.max_bytes <= 0:
            raise ValueError(f"inconsistent video limits: {self}")


@dataclass(frozen=True)
class AudioInfo:
    kind: AudioKind
    duration_seconds: float
    size: int
    measured_by: Literal["ffprobe", "header"]


@dataclass(frozen=True)
class VideoInfo:
    kind: VideoKind
    duration_seconds: float
    size: int
    width: int | None
    height: int | None
    codec: str | None  # None when read from the header without ffprobe (MP4/MOV)
    measured_by: Literal["ffprobe", "header"]


@dataclass(frozen=True)
class _Measured:
    duration: float | None
    width: int | None = None
    height: int | None = None
    codec: str | None = None


class _Unreadable(Exception):
    """The file sniffed right but its contents could not be read (details for logs only)."""


class _NoStream(Exception):
    """The file was read but has no stream of the kind needed."""


class _TooSlow(Exception):
    pass


# --------------------------------------------------------------------------- public API


def check_declared_audio_size(option: str, size: int) -> None:
    """Refuse a sound whose declared size is over :data:`MAX_AUDIO_BYTES`, before downloading."""
    if size > MAX_AUDIO_BYTES:
        raise _too_many_bytes(option, size, MAX_AUDIO_BYTES)


def check_declared_video_size(option: str, size: int, max_bytes: int) -> None:
    """Refuse a video whose declared size is over ``max_bytes``, before downloading."""
    if size > max_bytes:
        raise _too_many_bytes(option, size, max_bytes)


async def probe_audio(
    option: str,
    data: bytes,
    *,
    timeout: float = PROBE_TIMEOUT_SECONDS,  # noqa: ASYNC109 (bounds the ffprobe run only)
    limiter: asyncio.Semaphore | None = None,
    workdir: Path | None = None,
) -> AudioInfo:
    """Check ``data`` against Together's audio rules and return what it is.

    ``option`` names the /video option in any refusal. ``workdir`` holds the temporary file
    (the system's temporary folder by default). Raises :class:`MediaInputError`.
    """
    if len(data) > MAX_AUDIO_BYTES:
        raise _too_many_bytes(option, len(data), MAX_AUDIO_BYTES)
    kind = sniff_audio(data)
    if kind is None:
        raise MediaInputError("media.not_audio", option=option_name(option))
    measured, by = await _measure(option, kind, data, timeout, limiter, workdir, "audio")
    duration = _require_duration(option, measured, "audio")
    _check_duration(option, duration, MIN_AUDIO_SECONDS, MAX_AUDIO_SECONDS)
    return AudioInfo(kind=kind, duration_seconds=duration, size=len(data), measured_by=by)


async def probe_video(
    option: str,
    data: bytes,
    limits: VideoLimits,
    *,
    timeout: float = PROBE_TIMEOUT_SECONDS,  # noqa: ASYNC109 (bounds the ffprobe run only)
    limiter: asyncio.Semaphore | None = None,
    workdir: Path | None = None,
) -> VideoInfo:
    """Check ``data`` against ``limits`` (a model's caps) and return what it is.

    Accepts MP4, MOV and WebM (Matroska) by content. Raises :class:`MediaInputError`.
    """
    if len(data) > limits.max_bytes:
        raise _too_many_bytes(option, len(data), limits.max_bytes)
    kind = sniff_video(data)
    if kind is None:
        raise MediaInputError("media.not_video", option=option_name(option))
    measured, by = await _measure(option, kind, data, timeout, limiter, workdir, "video")
    duration = _require_duration(option, measured, "video")
    _check_duration(option, duration, limits.min_seconds, limits.max_seconds)
    return VideoInfo(
        kind=kind,
        duration_seconds=duration,
        size=len(data),
        width=measured.width,
        height=measured.height,
        codec=measured.codec,
        measured_by=by,
    )


def sniff_audio(data: bytes) -> AudioKind | None:
    """``"WAV"`` or ``"MP3"`` from the first bytes, else ``None``."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "WAV"
    if data[:3] == b"ID3" or _mp3_frame(data, 0) is not None:
        return "MP3"
    return None


def sniff_video(data: bytes) -> VideoKind | None:
    """``"MP4"``, ``"MOV"`` or ``"WEBM"`` from the first bytes, else ``None``."""
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "MOV" if data[8:12] == b"qt  " else "MP4"
    if len(data) >= 8 and data[4:8] in _QUICKTIME_ATOMS:
        return "MOV"
    if data[:4] == _EBML_MAGIC:
        return "WEBM"
    return None


def new_probe_limiter(slots: int = PROBE_SLOTS) -> asyncio.Semaphore:
    """A limiter for ffprobe runs: ``slots`` at once. Share one per process (per event loop)."""
    if slots < 1:
        raise ValueError("a probe limiter needs at least one slot")
    return asyncio.Semaphore(slots)


# --------------------------------------------------------------------------- measuring


async def _measure(
    option: str,
    kind: _Kind,
    data: bytes,
    time_allowed: float,
    limiter: asyncio.Semaphore | None,
    workdir: Path | None,
    wanted: Literal["audio", "video"],
) -> tuple[_Measured, Literal["ffprobe", "header"]]:
    ffprobe = shutil.which("ffprobe")
    try:
        if ffprobe is None:
            return _from_header(kind, data), "header"
        async with limiter if limiter is not None else _default_limiter():
            return await _ffprobe(ffprobe, kind, data, time_allowed, workdir, wanted), "ffprobe"
    except _Unreadable as exc:
        log.info("%s (%s, %d bytes) refused: %s", option, kind, len(data), exc)
        raise MediaInputError(f"media.unreadable_{wanted}", option=option_name(option)) from None
    except _NoStream:
        raise MediaInputError(f"media.no_{wanted}_track", option=option_name(option)) from None
    except _TooSlow:
        log.warning("%s (%s, %d bytes): ffprobe timed out", option, kind, len(data))
        raise MediaInputError("media.too_slow", option=option_name(option)) from None


def _require_duration(option: str, measured: _Measured, wanted: str) -> float:
    if measured.duration is None:
        again = "MP3" if wanted == "audio" else "MP4"
        raise MediaInputError("media.no_duration", option=option_name(option), format=again)
    return measured.duration


def _check_duration(option: str, seconds: float, low: float, high: float) -> None:
    if low <= seconds <= high:
        return
    # Rounded away from the limit, so a refused length never reads as an allowed one.
    shown = math.ceil(seconds * 10) / 10 if seconds > high else math.floor(seconds * 10) / 10
    raise MediaInputError(
        "media.duration",
        option=option_name(option),
        seconds=f"{shown:.1f}",
        low=f"{low:g}",
        high=f"{high:g}",
    )


# --------------------------------------------------------------------------- ffprobe


async def _ffprobe(
    ffprobe: str,
    kind: _Kind,
    data: bytes,
    time_allowed: float,
    workdir: Path | None,
    wanted: Literal["audio", "video"],
) -> _Measured:
    # mkstemp: a fresh name, mode 0600, made here so that a cancellation during the write
    # still finds it to delete. The name carries no ending: the demuxer is named outright.
    fd, name = tempfile.mkstemp(prefix="probe-", suffix=".part", dir=workdir)
    path = Path(name)
    try:
        await asyncio.to_thread(_write_and_close, fd, data)
        demuxer, whitelist = _DEMUXERS[kind]
        argv = [
            ffprobe,
            "-v",
            "error",
            "-hide_banner",
            "-show_entries",
            "format=duration:stream=codec_type,codec_name,width,height,duration",
            "-of",
            "json",
            "-protocol_whitelist",
            PROTOCOL_WHITELIST,
            "-format_whitelist",
            whitelist,
            "-f",
            demuxer,
            "-i",
            name,  # absolute (mkstemp says so): never read as an option or a protocol
        ]
        try:
            async with asyncio.timeout(time_allowed):
                code, out, err = await _run(argv)
        except TimeoutError:
            raise _TooSlow from None
        if code != 0:
            raise _Unreadable(f"ffprobe failed: {_last_line(err, code)}")
        try:
            return _parse_ffprobe(json.loads(out), wanted)
        except (ValueError, TypeError, AttributeError) as exc:
            raise _Unreadable(f"ffprobe gave unusable output: {exc}") from None
    finally:
        await asyncio.shield(asyncio.to_thread(_remove, path))


def _parse_ffprobe(data: Any, wanted: Literal["audio", "video"]) -> _Measured:
    streams: list[dict[str, Any]] = data.get("streams") or []
    stream = next((s for s in streams if s.get("codec_type") == wanted), None)
    if stream is None:
        raise _NoStream
    duration = positive_float((data.get("format") or {}).get("duration"))
    if duration is None:
        # Some WebM files only carry durations per stream.
        duration = positive_float(stream.get("duration"))
    if wanted == "audio":
        return _Measured(duration=duration, codec=_text(stream.get("codec_name")))
    width, height = stream.get("width"), stream.get("height")
    if not isinstance(width, int) or not isinstance(height, int) or width <= 0 or height <= 0:
        raise _NoStream
    return _Measured(duration, width, height, _text(stream.get("codec_name")))


def _text(value: Any) -> str | None:
    return value[:32] if isinstance(value, str) and value else None


async def _run(argv: list[str]) -> tuple[int, bytes, bytes]:
    """Run ``argv`` with the re-encoder's runner (killed and reaped if the caller is cancelled,
    the timeout included); a binary that cannot start is an unreadable file."""
    try:
        return await run_tool(argv)
    except OSError as exc:
        raise _Unreadable(f"could not run {argv[0]}: {exc}") from None


def _last_line(stderr: bytes, code: int) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    last = next((line for line in reversed(lines) if line), f"exit status {code}")
    return last[:200]


# asyncio.Semaphore binds to the loop it is first used on: one default per running loop.
_DEFAULT_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _default_limiter() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    limiter = _DEFAULT_LIMITERS.get(loop)
    if limiter is None:
        limiter = _DEFAULT_LIMITERS[loop] = new_probe_limiter()
    return limiter


def _write_and_close(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# --------------------------------------------------------------------------- headers


def _from_header(kind: _Kind, data: bytes) -> _Measured:
    try:
        if kind == "WAV":
            return _Measured(_wav_seconds(data))
        if kind == "MP3":
            return _Measured(_mp3_seconds(data))
        if kind == "WEBM":
            return _webm(data)
        return _mp4(data)
    except (
        struct.error,
        IndexError,
        KeyError,
        ValueError,
        ZeroDivisionError,
        OverflowError,
        StopIteration,
    ) as exc:
        raise _Unreadable(f"bad header: {exc!r}") from None


def _wav_seconds(data: bytes) -> float:
    byte_rate: int | None = None
    pos = 12
    for _ in range(_MAX_CHILDREN):
        if pos + 8 > len(data):
            break
        chunk = data[pos : pos + 4]
        size: int = struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise _Unreadable("short fmt chunk")
            byte_rate = int(struct.unpack_from("<I", data, body + 8)[0])
        elif chunk == b"data":
            if not byte_rate:
                raise _Unreadable("no usable fmt chunk before data")
            return float(min(size, len(data) - body) / byte_rate)
        pos = body + size + (size & 1)
    raise _Unreadable("no data chunk")


# Layer III bitrates in kbit/s by bitrate index: MPEG-1, then MPEG-2 and 2.5.
_MP3_BITRATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Sample rates by version bits (0: MPEG-2.5, 2: MPEG-2, 3: MPEG-1) and rate index.
_MP3_RATES = {0: (11025, 12000, 8000), 2: (22050, 24000, 16000), 3: (44100, 48000, 32000)}


@dataclass(frozen=True)
class _Frame:
    bitrate: int  # bit/s
    sample_rate: int
    samples: int  # per frame
    length: int  # bytes
    mpeg1: bool
    mono: bool


def _mp3_frame(data: bytes, pos: int) -> _Frame | None:
    """The Layer III frame header at ``pos``, or ``None`` if there is none."""
    if pos + 4 > len(data):
        return None
    b1, b2, b3 = data[pos + 1], data[pos + 2], data[pos + 3]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    rate_index, bitrate_index = (b2 >> 2) & 3, b2 >> 4
    if data[pos] != 0xFF or b1 & 0xE0 != 0xE0 or version == 1 or layer != 1:
        return None
    if bitrate_index in (0, 15) or rate_index == 3:
        return None  # "free" bitrate is not measurable; 15 and 3 are reserved
    mpeg1 = version == 3
    bitrate = _MP3_BITRATES[1 if mpeg1 else 2][bitrate_index] * 1000
    sample_rate = _MP3_RATES[version][rate_index]
    samples = 1152 if mpeg1 else 576
    length = samples // 8 * bitrate // sample_rate + ((b2 >> 1) & 1)
    return _Frame(bitrate, sample_rate, samples, length, mpeg1, (b3 >> 6) == 3)


def _mp3_seconds(data: bytes) -> float:
    start = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        tag_size = 0
        for byte in data[6:10]:
            tag_size = tag_size << 7 | (byte & 0x7F)
        start = 10 + tag_size + (10 if data[5] & 0x10 else 0)
    end = len(data) - (128 if data[-128:-125] == b"TAG" else 0)
    pos, frame = _first_mp3_frame(data, start, end)
    frames = _mp3_vbr_frames(data, pos, frame)
    if frames is not None:
        return frames * frame.samples / frame.sample_rate
    return (end - pos) * 8 / frame.bitrate


def _first_mp3_frame(data: bytes, start: int, end: int) -> tuple[int, _Frame]:
    for pos in range(start, min(end, start + _MP3_SEARCH)):
        frame = _mp3_frame(data, pos)
        # Two valid headers in a row: one alone is too easily found in random bytes.
        if frame is not None and (
            pos + frame.length >= end or _mp3_frame(data, pos + frame.length) is not None
        ):
            return pos, frame
    raise _Unreadable("no MPEG audio frame")


def _mp3_vbr_frames(data: bytes, pos: int, frame: _Frame) -> int | None:
    """The frame count of a Xing/Info or VBRI header in the first frame, if any."""
    side_info = (17 if frame.mono else 32) if frame.mpeg1 else (9 if frame.mono else 17)
    xing = pos + 4 + side_info
    if data[xing : xing + 4] in (b"Xing", b"Info") and len(data) >= xing + 12:
        flags = struct.unpack_from(">I", data, xing + 4)[0]
        if flags & 1:
            frames: int = struct.unpack_from(">I", data, xing + 8)[0]
            return frames or None
    vbri = pos + 36
    if data[vbri : vbri + 4] == b"VBRI" and len(data) >= vbri + 18:
        frames = struct.unpack_from(">I", data, vbri + 14)[0]
        return frames or None
    return None


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """ISO BMFF boxes between ``start`` and ``end``: (type, body start, body end)."""
    pos = start
    for _ in range(_MAX_CHILDREN):
        if pos + 8 > end:
            return
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise _Unreadable(f"box {kind!r} overruns its parent")
        yield kind, pos + header, pos + size
        pos += size
    raise _Unreadable("too many boxes")


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in _boxes(data, start, end) if k == kind), None)


def _mp4(data: bytes) -> _Measured:
    moov = _child(data, 0, len(data), b"moov")
    if moov is None:
        raise _Unreadable("no moov box")
    mvhd = _child(data, *moov, b"mvhd")
    if mvhd is None:
        raise _Unreadable("no mvhd box")
    version = data[mvhd[0]]
    if version == 1:
        timescale, duration = struct.unpack_from(">IQ", data, mvhd[0] + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, mvhd[0] + 12)
    if timescale == 0:
        raise _Unreadable("mvhd timescale is 0")
    seconds = duration / timescale if duration not in (0, 2**32 - 1, 2**64 - 1) else None
    for kind, start, end in _boxes(data, *moov):
        if kind != b"trak":
            continue
        mdia = _child(data, start, end, b"mdia")
        hdlr = _child(data, *mdia, b"hdlr") if mdia else None
        if hdlr is None or data[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
            continue
        tkhd = _child(data, start, end, b"tkhd")
        if tkhd is None or tkhd[1] - tkhd[0] < 84:
            raise _Unreadable("video track without a usable tkhd")
        width, height = struct.unpack_from(">II", data, tkhd[1] - 8)
        width, height = width >> 16, height >> 16  # 16.16 fixed point
        if width <= 0 or height <= 0:
            raise _NoStream
        return _Measured(seconds, width, height)
    raise _NoStream


# Matroska element ids (with their length marker bits, as they are usually written).
_SEGMENT, _INFO, _TRACKS, _CLUSTER = 0x18538067, 0x1549A966, 0x1654AE6B, 0x1F43B675
_TIMECODE_SCALE, _DURATION = 0x2AD7B1, 0x4489
_TRACK_ENTRY, _TRACK_TYPE, _CODEC_ID, _VIDEO = 0xAE, 0x83, 0x86, 0xE0
_PIXEL_WIDTH, _PIXEL_HEIGHT = 0xB0, 0xBA


def _ebml_vint(data: bytes, pos: int, *, is_id: bool) -> tuple[int, int]:
    """An EBML variable-length integer at ``pos``: (value, next position). Sizes with every
    value bit set mean "unknown" and come back as -1."""
    first = data[pos]
    length = 9 - first.bit_length()
    if first == 0 or pos + length > len(data):
        raise _Unreadable("bad EBML number")
    raw = int.from_bytes(data[pos : pos + length], "big")
    if is_id:
        return raw, pos + length
    value = raw & ((1 << (7 * length)) - 1)
    return (-1 if value == (1 << (7 * length)) - 1 else value), pos + length


def _elements(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """EBML elements between ``start`` and ``end``: (id, body start, body end). An element of
    unknown size runs to ``end``."""
    pos = start
    for _ in range(_MAX_CHILDREN):
        if pos >= end:
            return
        element, pos = _ebml_vint(data, pos, is_id=True)
        size, pos = _ebml_vint(data, pos, is_id=False)
        body_end = end if size < 0 else pos + size
        if body_end > end:
            raise _Unreadable("EBML element overruns its parent")
        yield element, pos, body_end
        pos = body_end
    raise _Unreadable("too many EBML elements")


def _uint(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end], "big")


def _webm(data: bytes) -> _Measured:
    after_header = next(_elements(data, 0, len(data)))[2]
    segment = next(
        ((s, e) for i, s, e in _elements(data, after_header, len(data)) if i == _SEGMENT), None
    )
    if segment is None:
        raise _Unreadable("no Segment")
    scale, duration = 1_000_000, None
    video: _Measured | None = None
    for element, start, end in _elements(data, *segment):
        if element == _CLUSTER:
            break  # the media data: Info and Tracks come before it
        if element == _INFO:
            for child, s, e in _elements(data, start, end):
                if child == _TIMECODE_SCALE:
                    scale = _uint(data, s, e)
                elif child == _DURATION and e - s in (4, 8):
                    duration = struct.unpack_from(">f" if e - s == 4 else ">d", data, s)[0]
        elif element == _TRACKS and video is None:
            video = _webm_video_track(data, start, end)
    if video is None:
        raise _NoStream
    seconds = duration * scale / 1e9 if duration is not None else None
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        seconds = None
    return _Measured(seconds, video.width, video.height, video.codec)


def _webm_video_track(data: bytes, start: int, end: int) -> _Measured | None:
    for element, s, e in _elements(data, start, end):
        if element != _TRACK_ENTRY:
            continue
        fields = {child: (cs, ce) for child, cs, ce in _elements(data, s, e)}
        if _TRACK_TYPE not in fields or _uint(data, *fields[_TRACK_TYPE]) != 1:
            continue
        width = height = None
        if _VIDEO in fields:
            sizes = {child: (cs, ce) for child, cs, ce in _elements(data, *fields[_VIDEO])}
            width = _uint(data, *sizes[_PIXEL_WIDTH]) if _PIXEL_WIDTH in sizes else None
            height = _uint(data, *sizes[_PIXEL_HEIGHT]) if _PIXEL_HEIGHT in sizes else None
        codec = None
        if _CODEC_ID in fields:
            codec = data[slice(*fields[_CODEC_ID])].decode("ascii", "replace").strip("\0")[:32]
        return _Measured(None, width, height, codec or None)
    return None


# --------------------------------------------------------------------------- messages


def _too_many_bytes(option: str, size: int, limit: int) -> MediaInputError:
    # The size rounded up and the limit down, so a refused size never reads as allowed.
    shown = math.ceil(size / 100_000) / 10
    cap = math.floor(limit / 100_000) / 10
    return MediaInputError(
        "media.too_big", option=option_name(option), size=f"{shown:g}", limit=f"{cap:g}"
    )
