"""Fetching a job's video and audio inputs, as Together fetches the URLs it is given.

A create that names video or audio URLs (frame_videos, reference_videos, source_video,
audio_inputs) is answered at once; a task then fetches each URL in order. A dead one (an HTTP
error, no connection, a timeout, an empty body) fails the job with a message naming the input,
which the next GET shows, the way a real job fails after it was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from sandbox.together.scripts import MediaFetch, SandboxJob
from sandbox.together.validation import media_urls

# Seconds one input may take, connection to last byte. Short: the inputs are on loopback.
MEDIA_FETCH_TIMEOUT = 5.0
# Bytes read from one input at most (counted, not kept); the facts cap audio at 15 MB.
MEDIA_FETCH_MAX_BYTES = 64 * 1024 * 1024
_CHUNK = 64 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class MediaFetcher:
    """Runs the fetch tasks; `close` cancels those still running.

    Only loopback URLs are fetched (the stand-in must never reach out of the machine); any
    other host fails the job like a dead link, saying so.
    """

    def __init__(self, timeout: float = MEDIA_FETCH_TIMEOUT) -> None:
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, job: SandboxJob) -> None:
        """Fetch the job's video and audio inputs in the background (nothing to do: no task)."""
        urls = media_urls(job.body)
        if not urls:
            return
        job.fetch_pending = True
        task = asyncio.create_task(self._fetch_all(job, urls), name=f"sandbox-fetch-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Wait for every fetch under way (tests use it instead of sleeping)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _fetch_all(self, job: SandboxJob, urls: list[tuple[str, str]]) -> None:
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                for name, url in urls:
                    fetch = await _fetch_one(session, name, url)
                    job.fetches.append(fetch)
                    if fetch.error is not None:
                        job.fail_fetch(f"could not fetch {name}: {fetch.error}")
                        return
        finally:
            job.fetch_pending = False


async def _fetch_one(session: aiohttp.ClientSession, name: str, url: str) -> MediaFetch:
    try:
        return await _follow(session, name, url)
    except TimeoutError:
        return MediaFetch(name, url, None, 0, "timed out")
    except aiohttp.ClientConnectionError as exc:
        return MediaFetch(name, url, None, 0, _connection_error(exc))
    except aiohttp.ClientError as exc:
        return MediaFetch(name, url, None, 0, type(exc).__name__)


async def _follow(session: aiohttp.ClientSession, name: str, url: str) -> MediaFetch:
    """GET `url`, following redirects by hand so that every hop is checked to be loopback."""
    target = url
    for _ in range(MAX_REDIRECTS + 1):
        if not _is_loopback(target):
            return MediaFetch(name, url, None, 0, "the stand-in fetches only loopback URLs")
        async with session.get(target, allow_redirects=False) as response:
            location = response.headers.get("Location")
            if response.status in _REDIRECTS and location:
                target = str(response.url.join(URL(location)))
                continue
            size = await _drain(response)
            status = response.status
        if not 200 <= status < 300:
            return MediaFetch(name, url, status, size, f"HTTP {status}")
        if size == 0:
            return MediaFetch(name, url, status, 0, "empty body")
        return MediaFetch(name, url, status, size, None)
    return MediaFetch(name, url, None, 0, "too many redirects")


async def _drain(response: aiohttp.ClientResponse) -> int:
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size >= MEDIA_FETCH_MAX_BYTES:
            break
    return size


def _connection_error(exc: aiohttp.ClientConnectionError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        refused = exc.os_error.errno == errno.ECONNREFUSED
        return "connection refused" if refused else "could not connect"
    return "connection lost"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
