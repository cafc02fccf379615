"""Media handling: streamed video download (keyframe handling comes later in this module)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- video download

DOWNLOAD_CHUNK_SIZE = 64 * 1024


class VideoTooLarge(Exception):
    """The video is over the cap. ``size`` is the declared length, or the bytes read so far."""

    def __init__(self, size: int | None, limit: int) -> None:
        self.size = size
        self.limit = limit
        shown = "unknown size" if size is None else f"{size} bytes"
        super().__init__(f"video is larger than {limit} bytes ({shown})")


@dataclass(frozen=True)
class DownloadedVideo:
    path: Path
    size: int
    content_type: str | None  # bare media type, e.g. "video/mp4"


async def download_video(
    client: httpx.AsyncClient, url: str, dest: Path, *, max_bytes: int
) -> DownloadedVideo:
    """Stream ``url`` into ``dest`` (whose folder must exist), following redirects.

    ``client`` must be a plain client with no Authorization header or auth: the video URL
    is a short link to a third-party host, and the Together key must never travel there.

    Raises ``VideoTooLarge`` as soon as the size is known to exceed ``max_bytes`` (from
    Content-Length, before reading the body, or while streaming) and ``httpx.HTTPStatusError``
    on a non-2xx answer. The body goes to a temporary file in the same folder that is renamed
    onto ``dest`` only when complete, so ``dest`` never holds a partial video.
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    if client.auth is not None or "authorization" in client.headers:
        raise ValueError("download_video needs a client without credentials")
    dest = Path(dest)
    partial = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    try:
        async with client.stream("GET", url, follow_redirects=True) as response:
            response.raise_for_status()
            _check_declared_size(response, max_bytes)
            size = await _stream_to_file(response, partial, max_bytes)
            content_type = _media_type(response)
        await asyncio.to_thread(partial.replace, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    log.debug("downloaded video %s (%d bytes, %s)", dest.name, size, content_type)
    return DownloadedVideo(path=dest, size=size, content_type=content_type)


def _check_declared_size(response: httpx.Response, max_bytes: int) -> None:
    try:
        declared = int(response.headers.get("content-length", ""))
    except ValueError:
        return  # absent or malformed: the streaming check still applies
    if declared > max_bytes:
        raise VideoTooLarge(declared, max_bytes)


async def _stream_to_file(response: httpx.Response, path: Path, max_bytes: int) -> int:
    """Write the body to ``path``; raise VideoTooLarge once more than ``max_bytes`` arrive."""
    handle: BinaryIO = await asyncio.to_thread(path.open, "xb")
    size = 0
    try:
        async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK_SIZE):
            size += len(chunk)
            if size > max_bytes:
                raise VideoTooLarge(size, max_bytes)
            await asyncio.to_thread(handle.write, chunk)
    finally:
        handle.close()
    return size


def _media_type(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type", "")
    media_type = value.split(";", 1)[0].strip().lower()
    return media_type or None
