"""Where the bot may fetch from: an address policy, DNS resolution under it, and pinned requests.

A URL handed to us by a third party (Together's ``video_url`` and every redirect after it)
must not make the bot reach its own machine or network: loopback, private ranges, the cloud
metadata service at 169.254.169.254 and the like. The host is resolved once, every address is
checked, and the request is then sent to a checked address, so a second DNS answer cannot
swap in a forbidden one (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses it resolves to, as text, best first.
Resolver = Callable[[str, int], Awaitable[list[str]]]

SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598


class BlockedAddress(Exception):
    """A host resolved to an address the bot must not connect to."""

    def __init__(self, host: str, address: str, kind: str) -> None:
        self.host = host
        self.address = address
        self.kind = kind
        super().__init__(f"{host} resolves to {address} ({kind})")


class NoAddress(OSError):
    """A host name resolved to no address at all."""


def forbidden_kind(address: IPAddress) -> str | None:
    """Why ``address`` is off limits ("loopback", "private", ...), or None if it is public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        # ::ffff:127.0.0.1 and 2002:7f00:1:: reach 127.0.0.1: judge what they carry.
        return forbidden_kind(embedded)
    checks: tuple[tuple[str, bool], ...] = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared address space", address in SHARED_ADDRESS_SPACE),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not global", not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    return address.ipv4_mapped or address.sixtofour


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is a literal one (brackets and zone allowed), else None."""
    text = host.removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer for ``host`` (getaddrinfo), best address first."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def safe_addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    """The addresses to connect to for ``host``, in order, all of them public.

    Raises ``BlockedAddress`` if ANY address is forbidden (a name that also resolves to a
    private address is not trusted at all), ``NoAddress`` or the resolver's ``OSError`` when
    the name does not resolve.
    """
    literal = parse_ip(host)
    answers = [str(literal)] if literal is not None else await resolver(host, port)
    addresses = list(dict.fromkeys(answers))  # unique, order kept
    if not addresses:
        raise NoAddress(f"{host} has no address")
    for text in addresses:
        address = parse_ip(text)
        kind = "unparsable" if address is None else forbidden_kind(address)
        if kind is not None:
            raise BlockedAddress(host, text, kind)
    return addresses


def pinned_request(
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    address: str,
    headers: Mapping[str, str] | None = None,
) -> httpx.Request:
    """A request for ``url`` that connects to ``address`` without looking the host up again.

    The URL's host becomes the IP; the Host header keeps the real name and the
    ``sni_hostname`` extension makes httpcore send it in TLS and verify the certificate
    against it, not against the IP. ``Connection: close`` keeps a TLS connection verified
    for one name from being reused for another name that resolved to the same IP.
    """
    real_host = url.raw_host.decode("ascii")
    all_headers = {
        **(headers or {}),
        "Host": url.netloc.decode("ascii"),
        "Connection": "close",
    }
    target = url.copy_with(host=address)
    return client.build_request(
        method, target, headers=all_headers, extensions={"sni_hostname": real_host}
    )
