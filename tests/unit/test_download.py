"""Unit tests for bot.media.download_video: streaming, redirects, size cap, clean failure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from bot.media import DOWNLOAD_CHUNK_SIZE, DownloadedVideo, VideoTooLarge, download_video

VIDEO_URL = "https://api.together.test/shrt/abc"
CDN_URL = "https://cdn.test/videos/abc.mp4"

Handler = Callable[[httpx.Request], httpx.Response]


class CountingStream(httpx.AsyncByteStream):
    """A body of ``chunks`` chunks of ``chunk_size`` bytes that counts how many were pulled."""

    def __init__(self, chunks: int, chunk_size: int = DOWNLOAD_CHUNK_SIZE) -> None:
        self.chunks = chunks
        self.chunk_size = chunk_size
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"v" * self.chunk_size


def client_for(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_streams_body_to_file(tmp_path: Path) -> None:
    body = bytes(range(256)) * 1000  # 256 000 bytes: several chunks
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=body, headers={"Content-Type": "video/MP4; codecs=avc1"})

    dest = tmp_path / "out.mp4"
    async with client_for(handler) as client:
        result = await download_video(client, CDN_URL, dest, max_bytes=1_000_000)

    assert result == DownloadedVideo(path=dest, size=len(body), content_type="video/mp4")
    assert dest.read_bytes() == body
    assert leftovers(tmp_path) == ["out.mp4"]
    assert "authorization" not in seen[0].headers


async def test_follows_redirect_without_credentials(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert "authorization" not in request.headers
        if str(request.url) == VIDEO_URL:
            return httpx.Response(302, headers={"Location": CDN_URL})
        return httpx.Response(200, content=b"video-bytes", headers={"Content-Type": "video/mp4"})

    dest = tmp_path / "v.mp4"
    async with client_for(handler) as client:
        result = await download_video(client, VIDEO_URL, dest, max_bytes=100)

    assert seen == [VIDEO_URL, CDN_URL]
    assert result.size == len(b"video-bytes")
    assert dest.read_bytes() == b"video-bytes"


async def test_refuses_by_content_length_before_reading_body(tmp_path: Path) -> None:
    stream = CountingStream(chunks=10)
    declared = 10 * DOWNLOAD_CHUNK_SIZE

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream, headers={"Content-Length": str(declared)})

    async with client_for(handler) as client:
        with pytest.raises(VideoTooLarge) as info:
            await download_video(client, CDN_URL, tmp_path / "big.mp4", max_bytes=1000)

    assert info.value.size == declared
    assert info.value.limit == 1000
    assert stream.pulled == 0
    assert leftovers(tmp_path) == []


async def test_aborts_unsized_body_past_the_cap(tmp_path: Path) -> None:
    stream = CountingStream(chunks=1000)  # ~64 MiB if read to the end
    max_bytes = 3 * DOWNLOAD_CHUNK_SIZE + 10

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    async with client_for(handler) as client:
        with pytest.raises(VideoTooLarge) as info:
            await download_video(client, CDN_URL, tmp_path / "big.mp4", max_bytes=max_bytes)

    assert info.value.limit == max_bytes
    assert info.value.size == 4 * DOWNLOAD_CHUNK_SIZE
    assert stream.pulled == 4
    assert leftovers(tmp_path) == []


async def test_body_exactly_at_the_cap_is_accepted(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=CountingStream(chunks=2))

    dest = tmp_path / "v.mp4"
    async with client_for(handler) as client:
        result = await download_video(client, CDN_URL, dest, max_bytes=2 * DOWNLOAD_CHUNK_SIZE)
    assert result.size == 2 * DOWNLOAD_CHUNK_SIZE
    assert result.content_type is None
    assert dest.stat().st_size == result.size


@pytest.mark.parametrize("status", [403, 404, 500])
async def test_http_error_leaves_no_file(tmp_path: Path, status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=b"nope")

    async with client_for(handler) as client:
        with pytest.raises(httpx.HTTPStatusError) as info:
            await download_video(client, CDN_URL, tmp_path / "v.mp4", max_bytes=100)
    assert info.value.response.status_code == status
    assert leftovers(tmp_path) == []


async def test_failure_keeps_an_existing_file_intact(tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"previous")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=CountingStream(chunks=5))

    async with client_for(handler) as client:
        with pytest.raises(VideoTooLarge):
            await download_video(client, CDN_URL, dest, max_bytes=DOWNLOAD_CHUNK_SIZE)
    assert dest.read_bytes() == b"previous"
    assert leftovers(tmp_path) == ["v.mp4"]


async def test_transport_error_mid_body_leaves_no_file(tmp_path: Path) -> None:
    class BrokenStream(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"x" * 100
            raise httpx.ReadError("connection reset")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=BrokenStream())

    async with client_for(handler) as client:
        with pytest.raises(httpx.ReadError):
            await download_video(client, CDN_URL, tmp_path / "v.mp4", max_bytes=10_000)
    assert leftovers(tmp_path) == []


async def test_refuses_a_client_with_credentials(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("must not send anything")

    client = httpx.AsyncClient(
        transport=httpx.MockTransport(handler), headers={"Authorization": "Bearer k"}
    )
    async with client:
        with pytest.raises(ValueError):
            await download_video(client, CDN_URL, tmp_path / "v.mp4", max_bytes=100)
    assert leftovers(tmp_path) == []
