"""Guarded, streamed video download: the only way a video link from Together is fetched.

Together's ``video_url`` is a short link that redirects to a storage host; the bot follows it
by hand, one checked hop at a time, because whoever answers may be hostile: it may redirect to
the bot's own network, trickle bytes forever, or send something that is not a video.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import socket
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx

from bot.media.files import (
    CONNECTION_FAILED,
    DISK_ERROR,
    DISK_FULL,
    HOST_REFUSED,
    HOST_TROUBLE,
    NOT_A_VIDEO,
    TOO_LONG,
    TOO_MANY_REDIRECTS,
    TOO_SLOW,
    UNSAFE_LINK,
    DownloadedVideo,
    DownloadError,
    DownloadFailed,
    DownloadRefused,
    VideoFormat,
    VideoTooLarge,
)
from bot.media.netguard import (
    BlockedAddress,
    NoAddress,
    Resolver,
    pinned_request,
    safe_addresses,
    system_resolver,
)

log = logging.getLogger(__name__)


T = TypeVar("T")
# --------------------------------------------------------------------------- policy

MiB = 1024 * 1024
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Never ask for compression: a video does not shrink, and a gzip bomb would grow in memory.
DOWNLOAD_HEADERS = {"Accept-Encoding": "identity"}
SNIFF_BYTES = 8
EBML_MAGIC = b"\x1a\x45\xdf\xa3"


@dataclass(frozen=True)
class DownloadPolicy:
    """The limits one download runs under; tests shrink them.

    ``allowed_origin`` (the configured Together base URL) is the one origin exempt from the
    https-only rule and the address check, so a local stand-in on http://127.0.0.1 works.
    Throughput: after ``grace`` seconds, fewer than ``min_bytes_per_second`` averaged over the
    last ``window`` seconds (or since the start, if shorter) aborts; 0 turns that check off.
    """

    max_redirects: int = 5
    deadline: float = 300.0
    min_bytes_per_second: float = 32 * 1024
    window: float = 30.0
    grace: float = 10.0
    reserve_bytes: int = 256 * MiB
    allowed_origin: str | None = None
    resolver: Resolver = field(default=system_resolver, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_redirects < 0 or self.reserve_bytes < 0:
            raise ValueError("max_redirects and reserve_bytes must not be negative")
        if self.deadline <= 0 or self.window <= 0 or self.grace < 0:
            raise ValueError("deadline and window must be positive, grace not negative")
        if self.min_bytes_per_second < 0:
            raise ValueError("min_bytes_per_second must not be negative")
        if self.allowed_origin is not None:
            origin = httpx.URL(self.allowed_origin)
            if origin.scheme not in ("http", "https") or not origin.host:
                raise ValueError("allowed_origin must be an http(s) URL with a host")


DEFAULT_POLICY = DownloadPolicy()

# --------------------------------------------------------------------------- download


async def download_video(
    client: httpx.AsyncClient,
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    expected_format: VideoFormat,
    policy: DownloadPolicy = DEFAULT_POLICY,
) -> DownloadedVideo:
    """Stream ``url`` into ``dest`` (whose folder must exist), following redirects by hand.

    ``client`` must be a plain client with no Authorization header or auth: the video URL
    is a short link to a third-party host, and the Together key must never travel there.
    Its own redirect setting is ignored: every hop is checked here (see ``DownloadPolicy``).

    Raises ``VideoTooLarge`` as soon as the size is known to exceed ``max_bytes``,
    ``DownloadRefused`` or ``DownloadFailed`` for anything else that goes wrong (or
    ``CancelledError``). The body goes to a temporary file in the same folder that is renamed
    onto ``dest`` only when complete and of the expected format, so ``dest`` never holds a
    partial or foreign file, and the temporary file never outlives the call.
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    if client.auth is not None or "authorization" in client.headers:
        raise ValueError("download_video needs a client without credentials")
    dest = Path(dest)
    await _ensure_free_space(dest.parent, max_bytes, policy)
    partial = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    try:
        meter = _Meter(asyncio.get_running_loop().time())
        fetch = _fetch(client, url, partial, max_bytes, expected_format, policy, meter)
        content_type, size = await _translating_errors(_watched(fetch, meter, policy))
        await asyncio.to_thread(partial.replace, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    log.debug("downloaded video %s (%d bytes, %s)", dest.name, size, content_type)
    return DownloadedVideo(path=dest, size=size, content_type=content_type)


async def _ensure_free_space(folder: Path, max_bytes: int, policy: DownloadPolicy) -> None:
    try:
        free = (await asyncio.to_thread(shutil.disk_usage, folder)).free
    except OSError as exc:
        raise DownloadFailed(DISK_ERROR, code="disk_error", detail=str(exc)) from exc
    needed = max_bytes + policy.reserve_bytes
    if free < needed:
        raise DownloadFailed(
            DISK_FULL, code="disk_full", detail=f"{free} bytes free, {needed} needed"
        )


async def _fetch(
    client: httpx.AsyncClient,
    link: str,
    partial: Path,
    max_bytes: int,
    expected_format: VideoFormat,
    policy: DownloadPolicy,
    meter: _Meter,
) -> tuple[str | None, int]:
    """Follow up to ``max_redirects`` checked hops, then stream the body into ``partial``."""
    url = _parse_link(link)
    for _ in range(policy.max_redirects + 1):
        response = await _open_hop(client, url, policy)
        try:
            next_url = _redirect_target(response, url)
            if next_url is None:
                _check_status(response, url)
                _check_declared_size(response, max_bytes)
                size = await _stream_to_file(response, partial, max_bytes, expected_format, meter)
                return _media_type(response), size
        finally:
            await response.aclose()
        url = next_url
    raise _refused(url, TOO_MANY_REDIRECTS, "too_many_redirects", f"over {policy.max_redirects}")


def _parse_link(link: str) -> httpx.URL:
    try:
        return httpx.URL(link)
    except httpx.InvalidURL as exc:
        log.warning("Refused video download: the link is not a valid URL")
        raise DownloadRefused(UNSAFE_LINK, code="bad_url", detail="invalid URL") from exc


async def _open_hop(
    client: httpx.AsyncClient, url: httpx.URL, policy: DownloadPolicy
) -> httpx.Response:
    """Send the GET for one hop, to a checked address, and return the streaming response."""
    if _is_allowed_origin(url, policy):
        request = client.build_request("GET", url, headers=DOWNLOAD_HEADERS)
        return await client.send(request, stream=True, follow_redirects=False)
    if url.scheme != "https":
        raise _refused(url, UNSAFE_LINK, "not_https", f"scheme {url.scheme!r}")
    host = url.raw_host.decode("ascii")
    if not host:
        raise _refused(url, UNSAFE_LINK, "no_host", "no host")
    try:
        addresses = await safe_addresses(host, url.port or 443, policy.resolver)
    except BlockedAddress as exc:
        raise _refused(url, UNSAFE_LINK, "blocked_address", f"{exc.address} is {exc.kind}") from exc
    return await _send_to_first_reachable(client, url, addresses)


async def _send_to_first_reachable(
    client: httpx.AsyncClient, url: httpx.URL, addresses: list[str]
) -> httpx.Response:
    # What httpx would do with the name itself: try each address until one connects.
    for address in addresses[:-1]:
        request = pinned_request(client, "GET", url, address, DOWNLOAD_HEADERS)
        try:
            return await client.send(request, stream=True, follow_redirects=False)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            log.debug("could not connect to %s at %s; trying the next address", url.host, address)
    request = pinned_request(client, "GET", url, addresses[-1], DOWNLOAD_HEADERS)
    return await client.send(request, stream=True, follow_redirects=False)


def _is_allowed_origin(url: httpx.URL, policy: DownloadPolicy) -> bool:
    if policy.allowed_origin is None:
        return False
    return _origin(url) == _origin(httpx.URL(policy.allowed_origin))


def _origin(url: httpx.URL) -> tuple[str, bytes, int | None]:
    default_port = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.raw_host.lower(), url.port or default_port


def _redirect_target(response: httpx.Response, url: httpx.URL) -> httpx.URL | None:
    """Where a redirect points, resolved against ``url``; None if this is no redirect."""
    location = response.headers.get("location")
    if response.status_code not in REDIRECT_STATUSES or location is None:
        return None
    try:
        return url.join(location)
    except httpx.InvalidURL as exc:
        raise _refused(url, UNSAFE_LINK, "bad_redirect", "unparsable Location") from exc


def _check_status(response: httpx.Response, url: httpx.URL) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = f"HTTP {status} from {url.host}"
    if status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
        raise DownloadFailed(HOST_TROUBLE, code="http_status", detail=detail, status=status)
    raise _refused(url, HOST_REFUSED, "http_status", f"HTTP {status}", status=status)


def _refused(
    url: httpx.URL, reason: str, code: str, detail: str, *, status: int | None = None
) -> DownloadRefused:
    # The host only: the query string of a signed URL is a credential.
    log.warning("Refused video download from %s: %s (%s)", url.host or "?", detail, code)
    return DownloadRefused(reason, code=code, detail=f"{detail} from {url.host}", status=status)


def _check_declared_size(response: httpx.Response, max_bytes: int) -> None:
    try:
        declared = int(response.headers.get("content-length", ""))
    except ValueError:
        return  # absent or malformed: the streaming check still applies
    if declared > max_bytes:
        raise VideoTooLarge(declared, max_bytes)


async def _stream_to_file(
    response: httpx.Response,
    path: Path,
    max_bytes: int,
    expected_format: VideoFormat,
    meter: _Meter,
) -> int:
    """Write the body to ``path``; raise VideoTooLarge once more than ``max_bytes`` arrive,
    DownloadRefused as soon as its first bytes show it is not the expected kind of video."""
    handle: BinaryIO = await asyncio.to_thread(path.open, "xb")
    head = b""
    try:
        # No chunk size: each piece as it arrives, so a trickle is measured as it trickles.
        async for chunk in response.aiter_bytes():
            meter.received += len(chunk)
            if meter.received > max_bytes:
                raise VideoTooLarge(meter.received, max_bytes)
            if len(head) < SNIFF_BYTES:
                head += chunk[:SNIFF_BYTES]
                if len(head) >= SNIFF_BYTES:
                    _check_format(head, expected_format, response.url)
            await asyncio.to_thread(handle.write, chunk)
    finally:
        handle.close()
    if len(head) < SNIFF_BYTES:
        _check_format(head, expected_format, response.url)
    return meter.received


def _check_format(head: bytes, expected_format: VideoFormat, url: httpx.URL) -> None:
    if looks_like(head, expected_format):
        return
    reason = NOT_A_VIDEO.format(format=expected_format)
    raise _refused(url, reason, "not_a_video", f"body starts {head[:SNIFF_BYTES]!r}")


def looks_like(head: bytes, expected_format: VideoFormat) -> bool:
    """Whether a file starting with ``head`` is an MP4 (ISO-BMFF ``ftyp`` box) or a WEBM (EBML)."""
    if expected_format == "MP4":
        return head[4:8] == b"ftyp"
    return head[:4] == EBML_MAGIC


def _media_type(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type", "")
    media_type = value.split(";", 1)[0].strip().lower()
    return media_type or None


# --------------------------------------------------------------------------- time limits


@dataclass
class _Meter:
    """Body bytes received so far, and when the download began (event loop time)."""

    started: float
    received: int = 0


async def _watched(work: Coroutine[Any, Any, T], meter: _Meter, policy: DownloadPolicy) -> T:
    """Run ``work`` under the overall deadline and the throughput floor."""
    async with asyncio.timeout(policy.deadline):
        if policy.min_bytes_per_second <= 0:
            return await work
        worker = asyncio.create_task(work)
        watcher = asyncio.create_task(_until_too_slow(meter, policy))
        try:
            await asyncio.wait({worker, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            worker.cancel()  # no effect if it is done
            # Wait for the worker to close its file and connection before the caller cleans up.
            await asyncio.gather(worker, watcher, return_exceptions=True)
        if not worker.cancelled():
            return worker.result()
        raise DownloadFailed(TOO_SLOW, code="too_slow", detail=f"{meter.received} bytes received")


async def _until_too_slow(meter: _Meter, policy: DownloadPolicy) -> None:
    """Return once the average rate over the sliding window falls below the floor."""
    loop = asyncio.get_running_loop()
    tick = min(1.0, policy.window / 10)
    samples: deque[tuple[float, int]] = deque([(meter.started, 0)])
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        samples.append((now, meter.received))
        # Keep the newest sample at or before the window's start as its baseline.
        while len(samples) > 1 and samples[1][0] <= now - policy.window:
            samples.popleft()
        if now - meter.started < policy.grace:
            continue
        since, baseline = samples[0]
        if now > since and (meter.received - baseline) / (now - since) < (
            policy.min_bytes_per_second
        ):
            return


async def _translating_errors(work: Coroutine[Any, Any, T]) -> T:
    """Turn what httpx, the OS and the deadline raise into DownloadError."""
    try:
        return await work
    except (DownloadError, VideoTooLarge):
        raise
    except TimeoutError as exc:  # the overall deadline
        raise DownloadFailed(TOO_LONG, code="deadline") from exc
    except httpx.TimeoutException as exc:
        raise DownloadFailed(TOO_SLOW, code="timeout", detail=type(exc).__name__) from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        log.warning("Refused video download: %s", type(exc).__name__)
        raise DownloadRefused(UNSAFE_LINK, code="bad_url", detail=type(exc).__name__) from exc
    except httpx.HTTPError as exc:
        raise DownloadFailed(CONNECTION_FAILED, code="connection", detail=repr(exc)) from exc
    except (socket.gaierror, NoAddress) as exc:
        raise DownloadFailed(CONNECTION_FAILED, code="dns", detail=repr(exc)) from exc
    except OSError as exc:  # opening or writing the file
        raise DownloadFailed(DISK_ERROR, code="disk_error", detail=repr(exc)) from exc
