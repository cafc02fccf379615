"""Unit tests for bot.media.download_video: streaming, checked redirects, address pinning,
size cap, format check, time limits, free space and clean failure; then a few over loopback
against the real Together stand-in."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from bot.media.download import DownloadPolicy, download_video
from bot.media.files import (
    DownloadedVideo,
    DownloadError,
    DownloadFailed,
    DownloadRefused,
    VideoTooLarge,
)
from sandbox.together import JobScript, TogetherSandbox
from sandbox.together.app import FIXTURE_MP4

CHUNK = 64 * 1024
VIDEO_URL = "https://api.together.test/shrt/abc"
CDN_URL = "https://cdn.test/videos/abc.mp4"
API_IP = "104.18.0.1"
CDN_IP = "93.184.216.34"
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00"
WEBM_HEAD = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01"
MODEL = "minimax/video-01-director"
SAMPLE_MP4 = FIXTURE_MP4.read_bytes()
HTML = b"<!doctype html><html><body>Access denied</body></html>"

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeResolver:
    answers: dict[str, list[str]] = field(
        default_factory=lambda: {"api.together.test": [API_IP], "cdn.test": [CDN_IP]}
    )
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


def policy_with(resolver: FakeResolver | None = None, **changes: Any) -> DownloadPolicy:
    """A policy that needs no disk reserve and resolves the test names to public addresses."""
    fields: dict[str, Any] = {"reserve_bytes": 0, "resolver": resolver or FakeResolver()}
    return DownloadPolicy(**(fields | changes))


POLICY = policy_with()


class CountingStream(httpx.AsyncByteStream):
    """A body of ``chunks`` chunks of ``chunk_size`` bytes that counts how many were pulled.

    The first chunk starts like an MP4, so the format check passes."""

    def __init__(self, chunks: int, chunk_size: int = CHUNK, head: bytes = MP4_HEAD) -> None:
        self.chunks = chunks
        self.chunk_size = chunk_size
        self.head = head
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index in range(self.chunks):
            self.pulled += 1
            if index == 0:
                yield self.head + b"v" * (self.chunk_size - len(self.head))
            else:
                yield b"v" * self.chunk_size


class SlowStream(httpx.AsyncByteStream):
    """An MP4 head, then ``piece`` bytes every ``pause`` seconds, forever (or ``pieces``)."""

    def __init__(self, piece: int, pause: float, pieces: int | None = None) -> None:
        self.piece = piece
        self.pause = pause
        self.pieces = pieces
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield MP4_HEAD
        sent = 0
        while self.pieces is None or sent < self.pieces:
            await asyncio.sleep(self.pause)
            sent += 1
            yield b"v" * self.piece

    async def aclose(self) -> None:
        self.closed = True


class StalledStream(httpx.AsyncByteStream):
    """An MP4 head, then nothing at all."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield MP4_HEAD
        await asyncio.Event().wait()


def client_for(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def mp4(body: bytes = b"video-bytes") -> bytes:
    return MP4_HEAD + body


def never_called(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"must not send anything, sent {request.url}")


async def fetch(
    handler: Handler,
    dest: Path,
    url: str = CDN_URL,
    *,
    max_bytes: int = 1_000_000,
    expected_format: Any = "MP4",
    policy: DownloadPolicy = POLICY,
) -> DownloadedVideo:
    async with client_for(handler) as client:
        return await download_video(
            client, url, dest, max_bytes=max_bytes, expected_format=expected_format, policy=policy
        )


# -- streaming and size ----------------------------------------------------------------


async def test_streams_body_to_file(tmp_path: Path) -> None:
    body = mp4(bytes(range(256)) * 1000)  # 256 012 bytes: several chunks
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=body, headers={"Content-Type": "video/MP4; codecs=avc1"})

    dest = tmp_path / "out.mp4"
    result = await fetch(handler, dest)

    assert result == DownloadedVideo(path=dest, size=len(body), content_type="video/mp4")
    assert dest.read_bytes() == body
    assert leftovers(tmp_path) == ["out.mp4"]
    assert "authorization" not in seen[0].headers
    assert seen[0].headers["accept-encoding"] == "identity"


async def test_follows_redirect_without_credentials(tmp_path: Path) -> None:
    seen: list[tuple[str, str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers["host"], request.url.path))
        assert "authorization" not in request.headers
        if request.headers["host"] == "api.together.test":
            return httpx.Response(302, headers={"Location": CDN_URL})
        return httpx.Response(200, content=mp4(), headers={"Content-Type": "video/mp4"})

    dest = tmp_path / "v.mp4"
    result = await fetch(handler, dest, VIDEO_URL, max_bytes=100)

    assert seen == [
        (API_IP, "api.together.test", "/shrt/abc"),
        (CDN_IP, "cdn.test", "/videos/abc.mp4"),
    ]
    assert result.size == len(mp4())
    assert dest.read_bytes() == mp4()


async def test_refuses_by_content_length_before_reading_body(tmp_path: Path) -> None:
    stream = CountingStream(chunks=10)
    declared = 10 * CHUNK

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream, headers={"Content-Length": str(declared)})

    with pytest.raises(VideoTooLarge) as info:
        await fetch(handler, tmp_path / "big.mp4", max_bytes=1000)

    assert info.value.size == declared
    assert info.value.limit == 1000
    assert stream.pulled == 0
    assert leftovers(tmp_path) == []


async def test_aborts_unsized_body_past_the_cap(tmp_path: Path) -> None:
    stream = CountingStream(chunks=1000)  # ~64 MiB if read to the end
    max_bytes = 3 * CHUNK + 10

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    with pytest.raises(VideoTooLarge) as info:
        await fetch(handler, tmp_path / "big.mp4", max_bytes=max_bytes)

    assert info.value.limit == max_bytes
    assert info.value.size == 4 * CHUNK
    assert stream.pulled == 4
    assert leftovers(tmp_path) == []


async def test_body_exactly_at_the_cap_is_accepted(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=CountingStream(chunks=2))

    dest = tmp_path / "v.mp4"
    result = await fetch(handler, dest, max_bytes=2 * CHUNK)
    assert result.size == 2 * CHUNK
    assert result.content_type is None
    assert dest.stat().st_size == result.size


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, DownloadRefused),
        (403, DownloadRefused),
        (404, DownloadRefused),
        (410, DownloadRefused),
        (408, DownloadFailed),
        (429, DownloadFailed),
        (500, DownloadFailed),
        (503, DownloadFailed),
    ],
)
async def test_http_error_leaves_no_file(
    tmp_path: Path, status: int, error: type[DownloadError]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=b"nope")

    with pytest.raises(error) as info:
        await fetch(handler, tmp_path / "v.mp4", max_bytes=100)
    assert info.value.status == status
    assert info.value.code == "http_status"
    assert info.value.permanent is (error is DownloadRefused)
    assert leftovers(tmp_path) == []


async def test_failure_keeps_an_existing_file_intact(tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"previous")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=CountingStream(chunks=5))

    with pytest.raises(VideoTooLarge):
        await fetch(handler, dest, max_bytes=CHUNK)
    assert dest.read_bytes() == b"previous"
    assert leftovers(tmp_path) == ["v.mp4"]


async def test_transport_error_mid_body_leaves_no_file(tmp_path: Path) -> None:
    class BrokenStream(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield MP4_HEAD + b"x" * 100
            raise httpx.ReadError("connection reset")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=BrokenStream())

    with pytest.raises(DownloadFailed) as info:
        await fetch(handler, tmp_path / "v.mp4", max_bytes=10_000)
    assert isinstance(info.value.__cause__, httpx.ReadError)
    assert info.value.code == "connection"
    assert leftovers(tmp_path) == []


async def test_connect_error_is_a_passing_failure(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(DownloadFailed) as info:
        await fetch(handler, tmp_path / "v.mp4")
    assert info.value.code == "connection"
    assert leftovers(tmp_path) == []


async def test_dns_failure_is_a_passing_failure(tmp_path: Path) -> None:
    with pytest.raises(DownloadFailed) as info:
        await fetch(never_called, tmp_path / "v.mp4", "https://nowhere.test/v.mp4")
    assert info.value.code == "dns"


async def test_refuses_a_client_with_credentials(tmp_path: Path) -> None:
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(never_called), headers={"Authorization": "Bearer k"}
    )
    async with client:
        with pytest.raises(ValueError):
            await download_video(
                client, CDN_URL, tmp_path / "v.mp4", max_bytes=100, expected_format="MP4"
            )
    assert leftovers(tmp_path) == []


async def test_cancellation_leaves_no_file(tmp_path: Path) -> None:
    started = asyncio.Event()

    class Stream(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield MP4_HEAD
            started.set()
            await asyncio.Event().wait()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Stream())

    task = asyncio.create_task(fetch(handler, tmp_path / "v.mp4"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(tmp_path) == []


# -- redirects ---------------------------------------------------------------------------


def redirect_chain(hops: int, seen: list[str]) -> Handler:
    """/0 redirects to /1 ... up to /hops, which serves the video."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        step = int(request.url.path.strip("/"))
        if step < hops:
            return httpx.Response(302, headers={"Location": f"/{step + 1}"})
        return httpx.Response(200, content=mp4())

    return handler


async def test_five_redirects_are_followed(tmp_path: Path) -> None:
    seen: list[str] = []
    result = await fetch(redirect_chain(5, seen), tmp_path / "v.mp4", "https://cdn.test/0")
    assert seen == ["/0", "/1", "/2", "/3", "/4", "/5"]
    assert result.size == len(mp4())


async def test_a_sixth_redirect_is_refused(tmp_path: Path) -> None:
    seen: list[str] = []
    with pytest.raises(DownloadRefused) as info:
        await fetch(redirect_chain(6, seen), tmp_path / "v.mp4", "https://cdn.test/0")
    assert info.value.code == "too_many_redirects"
    assert seen == ["/0", "/1", "/2", "/3", "/4", "/5"]  # the 7th request is never sent
    assert leftovers(tmp_path) == []


async def test_max_redirects_is_a_policy_value(tmp_path: Path) -> None:
    seen: list[str] = []
    with pytest.raises(DownloadRefused):
        await fetch(
            redirect_chain(2, seen),
            tmp_path / "v.mp4",
            "https://cdn.test/0",
            policy=policy_with(max_redirects=1),
        )
    assert seen == ["/0", "/1"]


@pytest.mark.parametrize(
    ("location", "expected_path"),
    [("/files/abc.mp4", "/files/abc.mp4"), ("abc.mp4", "/shrt/abc.mp4"), ("../x.mp4", "/x.mp4")],
)
async def test_relative_location_resolves_against_the_current_url(
    tmp_path: Path, location: str, expected_path: str
) -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["host"], request.url.path))
        if request.url.path == "/shrt/abc":
            return httpx.Response(307, headers={"Location": location})
        return httpx.Response(200, content=mp4())

    await fetch(handler, tmp_path / "v.mp4", VIDEO_URL)
    assert seen == [("api.together.test", "/shrt/abc"), ("api.together.test", expected_path)]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_every_redirect_status_is_checked(tmp_path: Path, status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"Location": "https://169.254.169.254/latest"})

    with pytest.raises(DownloadRefused) as info:
        await fetch(handler, tmp_path / "v.mp4", VIDEO_URL)
    assert info.value.code == "blocked_address"


async def test_redirect_status_without_location_is_refused(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302)

    with pytest.raises(DownloadRefused) as info:
        await fetch(handler, tmp_path / "v.mp4")
    assert info.value.status == 302


async def test_plain_http_link_is_refused_unsent(tmp_path: Path) -> None:
    with pytest.raises(DownloadRefused) as info:
        await fetch(never_called, tmp_path / "v.mp4", "http://cdn.test/videos/abc.mp4")
    assert info.value.code == "not_https"
    assert info.value.permanent


async def test_redirect_to_plain_http_is_refused(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["host"])
        return httpx.Response(302, headers={"Location": "http://cdn.test/videos/abc.mp4"})

    with pytest.raises(DownloadRefused) as info:
        await fetch(handler, tmp_path / "v.mp4", VIDEO_URL)
    assert info.value.code == "not_https"
    assert seen == ["api.together.test"]


@pytest.mark.parametrize("link", ["https://", "https://[::1/x", "ftp://cdn.test/a.mp4"])
async def test_malformed_or_foreign_links_are_refused(tmp_path: Path, link: str) -> None:
    with pytest.raises(DownloadRefused):
        await fetch(never_called, tmp_path / "v.mp4", link)
    assert leftovers(tmp_path) == []


# -- the allowed origin (a local stand-in as TOGETHER_BASE_URL) ---------------------------

LOCAL = "http://127.0.0.1:8080"


async def test_allowed_origin_is_fetched_as_configured(tmp_path: Path) -> None:
    resolver = FakeResolver()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/shrt/abc":
            return httpx.Response(302, headers={"Location": "/files/abc.mp4"})
        return httpx.Response(200, content=mp4())

    policy = policy_with(resolver, allowed_origin=LOCAL + "/v1")
    await fetch(handler, tmp_path / "v.mp4", f"{LOCAL}/shrt/abc", policy=policy)
    assert seen == [f"{LOCAL}/shrt/abc", f"{LOCAL}/files/abc.mp4"]
    assert resolver.asked == []


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:8081/x",  # another port
        "https://127.0.0.1:8080/x",  # another scheme
        "http://localhost:8080/x",  # another host name
        "http://127.0.0.1/x",  # the default port
    ],
)
async def test_allowed_origin_exempts_only_itself(tmp_path: Path, target: str) -> None:
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": target})

    policy = policy_with(resolver, allowed_origin=LOCAL)
    with pytest.raises(DownloadRefused) as info:
        await fetch(handler, tmp_path / "v.mp4", f"{LOCAL}/shrt/abc", policy=policy)
    assert info.value.code in {"not_https", "blocked_address"}
    assert seen == [f"{LOCAL}/shrt/abc"]


def test_allowed_origin_must_be_a_web_url() -> None:
    with pytest.raises(ValueError):
        DownloadPolicy(allowed_origin="file:///etc")


# -- address checks and pinning ------------------------------------------------------------

FORBIDDEN_ANSWERS = [
    ["127.0.0.1"],
    ["10.0.0.7"],
    ["172.16.5.4"],
    ["192.168.0.1"],
    ["169.254.169.254"],
    ["100.64.0.1"],
    ["0.0.0.0"],
    ["224.0.0.251"],
    ["240.0.0.1"],
    ["::1"],
    ["fe80::1"],
    ["fd00::1"],
    ["::ffff:127.0.0.1"],
    ["::ffff:169.254.169.254"],
    ["2002:7f00:1::"],
    [CDN_IP, "10.0.0.7"],  # one bad answer is enough
]


@pytest.mark.parametrize("answers", FORBIDDEN_ANSWERS)
async def test_forbidden_addresses_are_refused_unsent(tmp_path: Path, answers: list[str]) -> None:
    resolver = FakeResolver({"cdn.test": answers})
    with pytest.raises(DownloadRefused) as info:
        await fetch(never_called, tmp_path / "v.mp4", policy=policy_with(resolver))
    assert info.value.code == "blocked_address"
    assert leftovers(tmp_path) == []


async def test_redirect_to_a_name_resolving_privately_is_refused(tmp_path: Path) -> None:
    resolver = FakeResolver({"api.together.test": [API_IP], "metadata.test": ["169.254.169.254"]})
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["host"])
        return httpx.Response(302, headers={"Location": "https://metadata.test/latest"})

    with pytest.raises(DownloadRefused):
        await fetch(handler, tmp_path / "v.mp4", VIDEO_URL, policy=policy_with(resolver))
    assert seen == ["api.together.test"]
    assert resolver.asked == ["api.together.test", "metadata.test"]


@pytest.mark.parametrize(
    "link",
    [
        "https://127.0.0.1/v.mp4",
        "https://169.254.169.254/latest",
        "https://[::1]/v.mp4",
        "https://[::ffff:127.0.0.1]/v.mp4",
        "https://[::ffff:a9fe:a9fe]/latest",
        "https://100.100.100.200/latest",
    ],
)
async def test_literal_forbidden_ips_are_refused_without_dns(tmp_path: Path, link: str) -> None:
    resolver = FakeResolver()
    with pytest.raises(DownloadRefused) as info:
        await fetch(never_called, tmp_path / "v.mp4", link, policy=policy_with(resolver))
    assert info.value.code == "blocked_address"
    assert resolver.asked == []


async def test_public_literal_ip_is_fetched_without_dns(tmp_path: Path) -> None:
    resolver = FakeResolver()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=mp4())

    link = f"https://{CDN_IP}/v.mp4"
    await fetch(handler, tmp_path / "v.mp4", link, policy=policy_with(resolver))
    assert resolver.asked == []
    assert str(seen[0].url) == link
    assert seen[0].headers["host"] == CDN_IP


async def test_request_goes_to_the_checked_ip_with_the_real_name(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=mp4())

    await fetch(handler, tmp_path / "v.mp4", "https://cdn.test:8443/videos/abc.mp4?sig=s3cret")
    (request,) = seen
    assert str(request.url) == f"https://{CDN_IP}:8443/videos/abc.mp4?sig=s3cret"
    assert request.headers["host"] == "cdn.test:8443"
    assert request.extensions["sni_hostname"] == "cdn.test"


async def test_ipv6_address_is_bracketed(tmp_path: Path) -> None:
    resolver = FakeResolver({"cdn.test": ["2606:4700::6810:84e5"]})
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=mp4())

    await fetch(handler, tmp_path / "v.mp4", policy=policy_with(resolver))
    assert seen == ["https://[2606:4700::6810:84e5]/videos/abc.mp4"]


async def test_next_address_is_tried_when_one_does_not_connect(tmp_path: Path) -> None:
    resolver = FakeResolver({"cdn.test": ["2606:4700::1", CDN_IP]})
    tried: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tried.append(request.url.host)
        if request.url.host == "2606:4700::1":
            raise httpx.ConnectError("network unreachable")
        return httpx.Response(200, content=mp4())

    await fetch(handler, tmp_path / "v.mp4", policy=policy_with(resolver))
    assert tried == ["2606:4700::1", CDN_IP]


async def test_refusal_is_logged_with_the_host_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = FakeResolver({"cdn.test": ["10.0.0.7"]})
    caplog.set_level(logging.WARNING, logger="bot.media.download")
    with pytest.raises(DownloadRefused) as info:
        await fetch(
            never_called,
            tmp_path / "v.mp4",
            "https://cdn.test/v.mp4?Signature=s3cret",
            policy=policy_with(resolver),
        )
    (record,) = [r for r in caplog.records if r.name == "bot.media.download"]
    assert record.levelno == logging.WARNING
    assert "cdn.test" in record.getMessage()
    assert "s3cret" not in caplog.text
    assert "s3cret" not in str(info.value)
    assert "cdn.test" not in info.value.reason  # the member's sentence names no host


# -- format check --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected_format"),
    [(mp4(b"\x00" * 100), "MP4"), (WEBM_HEAD + b"\x00" * 100, "WEBM")],
)
async def test_body_of_the_expected_format_is_kept(
    tmp_path: Path, body: bytes, expected_format: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    dest = tmp_path / "v.bin"
    await fetch(handler, dest, expected_format=expected_format)
    assert dest.read_bytes() == body


@pytest.mark.parametrize(
    ("body", "expected_format"),
    [
        (HTML, "MP4"),
        (HTML, "WEBM"),
        (WEBM_HEAD + b"\x00" * 100, "MP4"),
        (mp4(b"\x00" * 100), "WEBM"),
        (b"\x00\x00\x00", "MP4"),
        (b"", "MP4"),
    ],
)
async def test_body_of_another_kind_is_refused(
    tmp_path: Path, body: bytes, expected_format: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "video/mp4"})

    dest = tmp_path / "v.mp4"
    with pytest.raises(DownloadRefused) as info:
        await fetch(handler, dest, expected_format=expected_format)
    assert info.value.code == "not_a_video"
    assert expected_format in info.value.reason
    assert leftovers(tmp_path) == []


async def test_foreign_body_is_refused_from_its_first_bytes(tmp_path: Path) -> None:
    stream = CountingStream(chunks=100, head=HTML)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    with pytest.raises(DownloadRefused):
        await fetch(handler, tmp_path / "v.mp4", max_bytes=200 * CHUNK)
    assert stream.pulled == 1


async def test_format_is_judged_across_tiny_first_chunks(tmp_path: Path) -> None:
    class Bytewise(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for byte in mp4(b"tail"):
                yield bytes([byte])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Bytewise())

    dest = tmp_path / "v.mp4"
    await fetch(handler, dest)
    assert dest.read_bytes() == mp4(b"tail")


# -- free space ----------------------------------------------------------------------------


def fake_free_space(monkeypatch: pytest.MonkeyPatch, free: int, asked: list[Path]) -> None:
    def disk_usage(path: Any) -> Any:
        asked.append(Path(path))
        return SimpleNamespace(total=10 * free, used=9 * free, free=free)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)


async def test_refuses_to_start_without_room_for_the_cap_and_reserve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Path] = []
    fake_free_space(monkeypatch, 1_000 + 499, asked)
    policy = policy_with(reserve_bytes=500)
    with pytest.raises(DownloadFailed) as info:
        await fetch(never_called, tmp_path / "v.mp4", max_bytes=1_000, policy=policy)
    assert info.value.code == "disk_full"
    assert not info.value.permanent
    assert asked == [tmp_path]
    assert leftovers(tmp_path) == []


async def test_starts_with_just_enough_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_free_space(monkeypatch, 1_000 + 500, [])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=mp4())

    policy = policy_with(reserve_bytes=500)
    result = await fetch(handler, tmp_path / "v.mp4", max_bytes=1_000, policy=policy)
    assert result.size == len(mp4())


def test_default_policy_keeps_a_reserve() -> None:
    assert DownloadPolicy().reserve_bytes == 256 * 1024 * 1024


# -- time limits ---------------------------------------------------------------------------

# A generous deadline: only the throughput floor should end these downloads.
QUICK_FLOOR: dict[str, Any] = {
    "min_bytes_per_second": 10_000,
    "window": 0.2,
    "grace": 0.1,
    "deadline": 60.0,
}


async def test_trickle_below_the_floor_is_abandoned(tmp_path: Path) -> None:
    stream = SlowStream(piece=10, pause=0.01)  # ~1 000 bytes/s

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    with pytest.raises(DownloadFailed) as info:
        await fetch(handler, tmp_path / "v.mp4", policy=policy_with(**QUICK_FLOOR))
    assert info.value.code == "too_slow"
    assert stream.closed
    assert leftovers(tmp_path) == []


async def test_stalled_body_is_abandoned(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=StalledStream())

    with pytest.raises(DownloadFailed) as info:
        await fetch(handler, tmp_path / "v.mp4", policy=policy_with(**QUICK_FLOOR))
    assert info.value.code == "too_slow"
    assert leftovers(tmp_path) == []


async def test_stalled_headers_are_abandoned(tmp_path: Path) -> None:
    class StallingTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    async with httpx.AsyncClient(transport=StallingTransport()) as client:
        with pytest.raises(DownloadFailed) as info:
            await download_video(
                client,
                CDN_URL,
                tmp_path / "v.mp4",
                max_bytes=1000,
                expected_format="MP4",
                policy=policy_with(**QUICK_FLOOR),
            )
    assert info.value.code == "too_slow"


async def test_download_above_the_floor_completes(tmp_path: Path) -> None:
    # ~6 MB/s against a floor of 10 kB/s: far above it even on a loaded machine.
    stream = SlowStream(piece=CHUNK, pause=0.01, pieces=30)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    policy = policy_with(**QUICK_FLOOR)
    result = await fetch(handler, tmp_path / "v.mp4", max_bytes=100 * CHUNK, policy=policy)
    assert result.size == len(MP4_HEAD) + 30 * CHUNK


async def test_overall_deadline_ends_a_steady_download(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=SlowStream(piece=1000, pause=0.01))

    policy = policy_with(min_bytes_per_second=0, deadline=0.3)
    with pytest.raises(DownloadFailed) as info:
        await fetch(handler, tmp_path / "v.mp4", max_bytes=10**9, policy=policy)
    assert info.value.code == "deadline"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"max_redirects": -1},
        {"deadline": 0},
        {"window": 0},
        {"grace": -1},
        {"min_bytes_per_second": -1},
        {"reserve_bytes": -1},
    ],
)
def test_policy_rejects_nonsense(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DownloadPolicy(**changes)


def test_error_kinds() -> None:
    assert DownloadRefused("r", code="c").permanent is True
    assert DownloadFailed("r", code="c").permanent is False
    assert issubclass(DownloadRefused, DownloadError)
    assert issubclass(DownloadFailed, DownloadError)


# -- over loopback, against the Together stand-in ------------------------------------------


@dataclass
class Canary:
    """A listener on another loopback port that counts who connects to it."""

    port: int
    connections: int = 0


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    canary = Canary(port=0)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        canary.connections += 1
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    canary.port = server.sockets[0].getsockname()[1]
    async with server:
        yield canary


@pytest.fixture
async def together() -> AsyncIterator[TogetherSandbox]:
    async with TogetherSandbox(default_script=JobScript(queue_seconds=0, run_seconds=0)) as sb:
        yield sb


async def finished_video_url(together: TogetherSandbox, script: JobScript) -> str:
    together.script_next(script)
    headers = {"Authorization": f"Bearer {together.api_key}"}
    async with httpx.AsyncClient(base_url=together.base_url, headers=headers) as api:
        created = await api.post("/v2/videos", json={"model": MODEL, "prompt": "a fox"})
        job = (await api.get(f"/v2/videos/{created.json()['id']}")).json()
    assert job["status"] == "completed", job
    url: str = job["outputs"]["video_url"]
    return url


async def fetch_from(
    together: TogetherSandbox, url: str, dest: Path, **changes: Any
) -> DownloadedVideo:
    # The real resolver: the stand-in's origin is exempt, every other host is checked.
    policy = DownloadPolicy(reserve_bytes=0, allowed_origin=together.base_url, **changes)
    async with httpx.AsyncClient(timeout=30.0) as web:
        return await download_video(
            web, url, dest, max_bytes=10_000_000, expected_format="MP4", policy=policy
        )


async def test_stand_in_video_downloads(together: TogetherSandbox, tmp_path: Path) -> None:
    url = await finished_video_url(together, JobScript(queue_seconds=0, run_seconds=0))
    dest = tmp_path / "v.mp4"
    result = await fetch_from(together, url, dest)
    assert result == DownloadedVideo(dest, len(SAMPLE_MP4), "video/mp4")
    assert dest.read_bytes() == SAMPLE_MP4
    assert leftovers(tmp_path) == ["v.mp4"]


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_stand_in_redirect_to_another_loopback_port_is_refused(
    together: TogetherSandbox, canary: Canary, tmp_path: Path, scheme: str
) -> None:
    script = JobScript(
        queue_seconds=0, run_seconds=0, redirect_to=f"{scheme}://127.0.0.1:{canary.port}/x"
    )
    url = await finished_video_url(together, script)
    with pytest.raises(DownloadRefused):
        await fetch_from(together, url, tmp_path / "v.mp4")
    assert canary.connections == 0
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest", "https://169.254.169.254/latest"]
)
async def test_stand_in_redirect_to_metadata_service_is_refused(
    together: TogetherSandbox, tmp_path: Path, target: str
) -> None:
    url = await finished_video_url(
        together, JobScript(queue_seconds=0, run_seconds=0, redirect_to=target)
    )
    with pytest.raises(DownloadRefused):
        await fetch_from(together, url, tmp_path / "v.mp4")


async def test_stand_in_body_that_is_no_video_is_refused(
    together: TogetherSandbox, tmp_path: Path
) -> None:
    script = JobScript(queue_seconds=0, run_seconds=0, video_body=HTML)
    url = await finished_video_url(together, script)
    with pytest.raises(DownloadRefused) as info:
        await fetch_from(together, url, tmp_path / "v.mp4")
    assert info.value.code == "not_a_video"
    assert leftovers(tmp_path) == []


async def test_stand_in_trickle_is_abandoned(together: TogetherSandbox, tmp_path: Path) -> None:
    script = JobScript(queue_seconds=0, run_seconds=0, trickle_bytes_per_second=500.0)
    url = await finished_video_url(together, script)
    with pytest.raises(DownloadFailed) as info:
        await fetch_from(together, url, tmp_path / "v.mp4", **QUICK_FLOOR)
    assert info.value.code == "too_slow"
    assert leftovers(tmp_path) == []
