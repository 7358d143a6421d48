"""SSRF guard for event webhooks: only public addresses, checked after DNS and pinned for the connection.

A subscriber URL is an admin's input that our server will call. Checking the hostname's
addresses once at registration is not enough (DNS can change, or answer differently a second
later: "DNS rebinding"), so the check lives in the HTTP client's network backend: it resolves
the host itself, refuses if ANY address is not public, and connects to the exact address it
checked. Nothing resolves the name a second time between the check and the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from app.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedTarget(httpcore.ConnectError):
    """The endpoint resolves to an address we refuse to call (httpx surfaces it as ConnectError)."""


def refusal(ip: IPAddress) -> str | None:
    """Why we would not connect to ``ip`` (None: a public address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address (cloud metadata lives there)"
    if ip.is_private:
        return f"{ip} is a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return f"{ip} is not a public address"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to right now (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedTarget(f"{host} does not resolve ({exc})") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise BlockedTarget(f"{host} does not resolve")
    return addresses


async def vetted_address(host: str, port: int, *, allow_private: bool) -> IPAddress:
    """The address to connect to; BlockedTarget when any address of ``host`` is not public."""
    addresses = await resolve(host, port)
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason:
                raise BlockedTarget(f"{host} is refused: {reason}")
    return addresses[0]


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but every TCP connection goes to an address vetted just now."""

    def __init__(self, allow_private: bool) -> None:
        from httpcore._backends.auto import AutoBackend

        self._inner = AutoBackend()
        self.allow_private = allow_private

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None, socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        address = await vetted_address(host, port, allow_private=self.allow_private)
        # The URL keeps the hostname, so the Host header, TLS SNI and certificate check all use it.
        return await self._inner.connect_tcp(str(address), port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        raise BlockedTarget("unix sockets are never event webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(*, allow_private: bool, timeout: float) -> httpx.AsyncClient:
    """The client for event webhooks: pinned, vetted connections; no proxies from the env; no redirects."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    # httpx has no public hook for the network backend; swap the pool it built for one using ours.
    transport._pool = httpcore.AsyncConnectionPool(  # noqa: SLF001
        ssl_context=httpx.create_ssl_context(), max_connections=100, max_keepalive_connections=20,
        keepalive_expiry=30.0, network_backend=PinnedBackend(allow_private))
    return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False,
                             timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))


async def check_endpoint_url(url: str, *, allow_private: bool) -> str:
    """A subscriber URL we will call, normalised; ValidationFailed (422) says what is wrong with it."""
    url = (url or "").strip()
    if len(url) > 2000:
        raise ValidationFailed("The URL is too long (2000 characters at most).", error_code="URL_INVALID",
                               details={"url": "too long"})
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationFailed("This is not a valid URL.", error_code="URL_INVALID", details={"url": "invalid"}) from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValidationFailed("The endpoint must be an https:// URL.", error_code="URL_NOT_HTTPS",
                               details={"url": "must start with https://"})
    if parts.username or parts.password:
        raise ValidationFailed("Put credentials in the endpoint, not in the URL: we sign every request.",
                               error_code="URL_INVALID", details={"url": "no user:password@ part"})
    try:
        await vetted_address(parts.hostname, port or (443 if parts.scheme == "https" else 80),
                             allow_private=allow_private)
    except BlockedTarget as exc:
        raise ValidationFailed(f"We will not send events there: {exc}.", error_code="URL_NOT_ALLOWED",
                               details={"url": str(exc)}) from None
    return url
