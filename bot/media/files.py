"""What a video download hands back or raises: the file, its format, plain-worded errors.

No I/O here, so the engine can speak of downloads without importing an HTTP client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

log = logging.getLogger(__name__)


VideoFormat = Literal["MP4", "WEBM"]


class VideoTooLarge(Exception):
    """The video is over the cap. ``size`` is the declared length, or the bytes read so far."""

    def __init__(self, size: int | None, limit: int) -> None:
        self.size = size
        self.limit = limit
        shown = "unknown size" if size is None else f"{size} bytes"
        super().__init__(f"video is larger than {limit} bytes ({shown})")


class DownloadError(Exception):
    """The video could not be downloaded.

    ``reason`` is one plain sentence a Discord member can read (no URL, no internals);
    ``permanent`` says whether trying again could help; ``code`` is a short stable tag for
    logs and tests ("too_slow", "blocked_address", ...); ``status`` the HTTP status, if any.
    ``str(exc)`` adds the technical detail (a host name at most, never the signed URL).
    """

    permanent: ClassVar[bool] = False

    def __init__(
        self, reason: str, *, code: str, detail: str = "", status: int | None = None
    ) -> None:
        super().__init__(f"{reason} [{code}: {detail}]" if detail else f"{reason} [{code}]")
        self.reason = reason
        self.code = code
        self.status = status


class DownloadRefused(DownloadError):
    """Retrying cannot help: an unsafe URL or redirect, too many redirects, a non-https hop,
    an HTTP 4xx other than 408/429, or a body that is not a video of the expected format."""

    permanent: ClassVar[bool] = True


class DownloadFailed(DownloadError):
    """Worth another try later: connection errors, timeouts, a too slow or too long download,
    HTTP 5xx/408/429, or not enough free disk space."""

    permanent: ClassVar[bool] = False


# Sentences for members; the engine puts them in the job's failure message.
UNSAFE_LINK = "The video link pointed to a place the bot is not allowed to download from."
TOO_MANY_REDIRECTS = "The video link redirected too many times."
HOST_REFUSED = "The video host refused to send the video; the link may have expired."
HOST_TROUBLE = "The video host is having trouble right now."
NOT_A_VIDEO = "The file behind the video link is not a valid {format} video."
CONNECTION_FAILED = "The bot could not connect to the video host."
TOO_SLOW = "The video download was too slow."
TOO_LONG = "The video download took too long."
DISK_FULL = "The bot's server is short of disk space right now."
DISK_ERROR = "The bot could not save the video file."


@dataclass(frozen=True)
class DownloadedVideo:
    path: Path
    size: int
    content_type: str | None  # bare media type, e.g. "video/mp4"
