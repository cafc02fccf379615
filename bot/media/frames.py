"""The last frame of a clip, as a JPEG: where the next part of an "Extend" starts.

:func:`last_frame` decodes the end of the clip with ffmpeg and returns the final decoded frame
at full resolution (the stored pixel size; rotation metadata is applied), encoded as a
three-component (RGB) JPEG with no chroma subsampling.

The clip is untrusted and is read exactly as :mod:`bot.media.reencode` reads one: the demuxer
named outright for ``source_format``, ``-format_whitelist`` and ``-protocol_whitelist file``
(:func:`bot.media.reencode.input_restrictions`), the path absolute and one argv item.

How the last frame is found: ``-sseof`` seeks :data:`SEEK_FROM_END` seconds before the end
(to the keyframe before that point, decoding on from there and dropping what comes before it,
so a last frame that is not a keyframe is reached), and every frame from there on is written
over the same JPEG (``-update 1``, timestamps passed through so none is dropped or repeated);
what is left when ffmpeg ends is the last frame. A clip shorter than the window, or one whose
duration is unknown, is decoded from the start (ffmpeg ignores ``-sseof`` then). If the seek
leaves no frame (a container duration longer than the video, as when the audio runs on), the
whole clip is decoded once more.

One slot of the shared ffmpeg limiter (:func:`bot.media.reencode.shared_fit_limiter`, unless a
``limiter`` is passed) is held while ffmpeg runs; ``timeout`` starts once it is held. The JPEG
is written to a fresh name in ``workdir`` and always deleted. Every failure is a
:class:`FrameError` whose ``reason`` is a short sentence (ffmpeg's own words are only logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from pathlib import Path

from bot.media.files import VideoFormat
from bot.media.reencode import (
    DEMUXERS,
    THREADS,
    arg_path,
    ffmpeg_argv,
    input_restrictions,
    last_line,
    run_tool,
    shared_fit_limiter,
)

log = logging.getLogger(__name__)

# Seconds before the end where decoding starts; long enough to hold a frame of any sane rate.
SEEK_FROM_END = 2.0
FRAME_TIMEOUT_SECONDS = 60.0
# mjpeg's quality scale: 2 is near the best (1 is allowed but much larger for no visible gain).
JPEG_QUALITY = "2"
_JPEG_MAGIC = b"\xff\xd8\xff"


class FrameError(Exception):
    """No last frame could be taken from the clip; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def last_frame(
    source: Path,
    *,
    source_format: VideoFormat,
    workdir: Path,
    ffmpeg: str = "ffmpeg",
    timeout: float = FRAME_TIMEOUT_SECONDS,  # noqa: ASYNC109 (bounds the ffmpeg work only)
    limiter: asyncio.Semaphore | None = None,
) -> bytes:
    """The JPEG bytes of the last frame of ``source`` (read only as ``source_format``).

    Raises :class:`FrameError`; ``ValueError`` for an unknown ``source_format``. ``workdir`` is
    created if missing; nothing is left in it.
    """
    demuxer = DEMUXERS.get(source_format)
    if demuxer is None:
        raise ValueError(f"source_format must be one of {sorted(DEMUXERS)}")
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    jpeg = workdir / f".lastframe-{secrets.token_hex(6)}.jpg"
    async with limiter if limiter is not None else shared_fit_limiter():
        try:
            async with asyncio.timeout(timeout):
                data = await _extract(ffmpeg, demuxer, source, jpeg, seek=True)
                if data is None:
                    log.info("%s: nothing decoded after the seek; decoding it all", source.name)
                    data = await _extract(ffmpeg, demuxer, source, jpeg, seek=False)
        except TimeoutError:
            raise FrameError(f"timed out after {timeout:g} s") from None
        finally:
            _remove(jpeg)
    if data is None:
        raise FrameError("the clip has no frame that could be decoded")
    return data


async def _extract(
    ffmpeg: str, demuxer: str, source: Path, jpeg: Path, *, seek: bool
) -> bytes | None:
    """Run ffmpeg once; the JPEG it left, or ``None`` when it decoded no frame."""
    _remove(jpeg)
    argv = [
        *ffmpeg_argv(ffmpeg),
        "-threads",
        THREADS,
        *(["-sseof", f"-{SEEK_FROM_END:g}"] if seek else []),
        *input_restrictions(demuxer),
        "-i",
        arg_path(source),
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        # Every decoded frame reaches the muxer once, in order: the last one written is the
        # last one decoded.
        "-fps_mode",
        "passthrough",
        "-c:v",
        "mjpeg",
        # Full-range 4:4:4: no colour resolution is lost (the "j" formats are mjpeg's way of
        # saying full range; ffmpeg converts the range).
        "-pix_fmt",
        "yuvj444p",
        "-q:v",
        JPEG_QUALITY,
        "-update",
        "1",
        "-f",
        "image2",
        arg_path(jpeg),
    ]
    try:
        code, _, err = await run_tool(argv)
    except FileNotFoundError:
        raise FrameError("ffmpeg is not installed") from None
    except OSError as exc:
        log.warning("could not run %s: %s", ffmpeg, exc)
        raise FrameError("ffmpeg could not be started") from None
    if code != 0:
        log.info("last frame of %s: ffmpeg failed: %s", source.name, last_line(err, code))
        raise FrameError("the clip could not be read as a video")
    try:
        data = await asyncio.to_thread(jpeg.read_bytes)
    except FileNotFoundError:
        return None
    if not data:
        return None
    if not data.startswith(_JPEG_MAGIC):
        log.warning("last frame of %s: ffmpeg wrote %d bytes that are no JPEG", source, len(data))
        raise FrameError("the frame could not be saved as a JPEG")
    return data


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
