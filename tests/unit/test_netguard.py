"""Unit tests for bot.media.netguard: the address policy, checked resolution, pinned requests."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bot.media.netguard import (
    BlockedAddress,
    NoAddress,
    forbidden_kind,
    parse_ip,
    pinned_request,
    safe_addresses,
)

FORBIDDEN = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared address space"),
    ("100.127.255.254", "shared address space"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.1.2.3", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("198.18.0.1", "private"),  # benchmarking
    ("192.0.2.7", "private"),  # documentation
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "private"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"),
    ("2002:7f00:1::1", "loopback"),  # 6to4 wrapping 127.0.0.1
    ("2002:a9fe:a9fe::", "link-local"),  # 6to4 wrapping 169.254.169.254
    ("64:ff9b::a00:1", "reserved"),  # NAT64 of 10.0.0.1
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("text", "kind"), FORBIDDEN)
def test_forbidden_addresses(text: str, kind: str) -> None:
    assert forbidden_kind(ipaddress.ip_address(text)) == kind


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_pass(text: str) -> None:
    assert forbidden_kind(ipaddress.ip_address(text)) is None


def test_parse_ip_accepts_literals_only() -> None:
    assert parse_ip("[::1]") == ipaddress.ip_address("::1")
    assert parse_ip("10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert parse_ip("cdn.test") is None
    assert parse_ip("2130706433") is None  # a name to the resolver, which is then checked


@dataclass
class FakeResolver:
    answers: dict[str, list[str]]
    calls: int = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return self.answers[host]


async def test_safe_addresses_returns_every_public_address_in_order() -> None:
    resolver = FakeResolver({"cdn.test": ["93.184.216.34", "2606:4700::1", "93.184.216.34"]})
    assert await safe_addresses("cdn.test", 443, resolver) == ["93.184.216.34", "2606:4700::1"]


async def test_one_forbidden_address_blocks_the_whole_name() -> None:
    resolver = FakeResolver({"evil.test": ["93.184.216.34", "10.0.0.1"]})
    with pytest.raises(BlockedAddress) as info:
        await safe_addresses("evil.test", 443, resolver)
    assert (info.value.host, info.value.address, info.value.kind) == (
        "evil.test",
        "10.0.0.1",
        "private",
    )


@pytest.mark.parametrize("host", ["169.254.169.254", "[::ffff:127.0.0.1]", "::1"])
async def test_literal_ips_are_checked_without_resolving(host: str) -> None:
    resolver = FakeResolver({})
    with pytest.raises(BlockedAddress):
        await safe_addresses(host, 443, resolver)
    assert resolver.calls == 0


async def test_public_literal_ip_is_used_as_is() -> None:
    resolver = FakeResolver({})
    assert await safe_addresses("93.184.216.34", 443, resolver) == ["93.184.216.34"]
    assert resolver.calls == 0


async def test_unparsable_answer_is_blocked() -> None:
    with pytest.raises(BlockedAddress):
        await safe_addresses("odd.test", 443, FakeResolver({"odd.test": ["not-an-ip"]}))


async def test_name_without_addresses_is_an_error() -> None:
    with pytest.raises(NoAddress):
        await safe_addresses("empty.test", 443, FakeResolver({"empty.test": []}))


def test_pinned_request_targets_the_ip_and_keeps_the_name() -> None:
    client = httpx.AsyncClient()
    url = httpx.URL("https://cdn.test:8443/v/a.mp4?sig=1")
    request = pinned_request(client, "GET", url, "93.184.216.34", {"Accept-Encoding": "identity"})
    assert str(request.url) == "https://93.184.216.34:8443/v/a.mp4?sig=1"
    assert request.headers["host"] == "cdn.test:8443"
    assert request.headers["connection"] == "close"
    assert request.headers["accept-encoding"] == "identity"
    assert request.extensions["sni_hostname"] == "cdn.test"


def test_pinned_request_brackets_ipv6_and_uses_punycode() -> None:
    client = httpx.AsyncClient()
    request = pinned_request(client, "GET", httpx.URL("https://bücher.test/x"), "2606:4700::1")
    assert str(request.url) == "https://[2606:4700::1]/x"
    assert request.headers["host"] == "xn--bcher-kva.test"
    assert request.extensions["sni_hostname"] == "xn--bcher-kva.test"


# -- the pinning against a real TLS server on loopback ----------------------------------


@dataclass(frozen=True)
class TlsSite:
    port: int
    cert: Path
    hosts_seen: list[str]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) that names only video.test."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = [
        *("openssl", "req", "-x509", "-nodes", "-days", "1"),
        *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
        *("-keyout", str(key), "-out", str(cert)),
        *("-subj", "/CN=video.test", "-addext", "subjectAltName=DNS:video.test"),
    ]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


@pytest.fixture
async def tls_site(certificate: tuple[Path, Path]) -> AsyncIterator[TlsSite]:
    """An HTTPS server on 127.0.0.1 serving that certificate."""
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    hosts_seen: list[str] = []

    async def clip(request: web.Request) -> web.Response:
        hosts_seen.append(request.headers["Host"])
        return web.Response(body=b"clip")

    app = web.Application()
    app.router.add_get("/clip", clip)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield TlsSite(port, cert, hosts_seen)
    finally:
        await runner.cleanup()


def trusting(site: TlsSite) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(site.cert)))


async def test_pinned_tls_request_verifies_the_real_name(tls_site: TlsSite) -> None:
    url = httpx.URL(f"https://video.test:{tls_site.port}/clip")
    async with trusting(tls_site) as client:
        response = await client.send(pinned_request(client, "GET", url, "127.0.0.1"))
    assert response.status_code == 200
    assert response.content == b"clip"
    assert tls_site.hosts_seen == [f"video.test:{tls_site.port}"]


async def test_pinned_tls_request_fails_for_a_name_the_certificate_lacks(
    tls_site: TlsSite,
) -> None:
    url = httpx.URL(f"https://other.test:{tls_site.port}/clip")
    async with trusting(tls_site) as client:
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await client.send(pinned_request(client, "GET", url, "127.0.0.1"))
    assert tls_site.hosts_seen == []


async def test_without_the_sni_name_the_ip_fails_verification(tls_site: TlsSite) -> None:
    # The control: it is the sni_hostname extension that makes the pinned request verify.
    async with trusting(tls_site) as client:
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await client.get(f"https://127.0.0.1:{tls_site.port}/clip")
