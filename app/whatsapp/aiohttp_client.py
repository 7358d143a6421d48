"""The HTTP client of the send path: GraphClient's calls over one aiohttp session.

Client CPU per small Graph-style POST (measured at concurrency 1 / 8 / 64): aiohttp 152 / 119 /
147 µs, httpx 827 / 861 / 2,280 µs (httpx's pool scans every kept-alive connection on each
request), on a worker that spends about 0.6 ms of CPU per sent message on everything else. So
sends, their media uploads and read receipts go through :class:`AiohttpClient` (the hand-written
HTTP/1.1 client it replaced saved ~0.1-0.2 ms more a request; measured on the whole worker by
bench/outbound.py, the two were within its noise). Calls where the cost does not matter (templates, profiles, media downloads, the
web process's checks) keep the shared httpx client.

:class:`AiohttpClient` duck-types the part of ``httpx.AsyncClient`` that GraphClient uses for
them (``request`` and ``aclose``; not ``stream``): JSON bodies encoded as httpx encodes them,
multipart uploads, query parameters; redirects are not followed and cookies are not kept. Its
failures are aiohttp's exceptions (``aiohttp.ClientError``, ``TimeoutError``), which
GraphClient maps as it maps httpx's: a timeout (connecting, waiting for a free connection or for
the answer) becomes GraphTimeout, any other transport failure (refused, reset, TLS, a broken
answer) GraphConnectionError; the outbox retries both. A POST is never sent twice: aiohttp
retries a request on a kept-alive connection the server closed only for idempotent methods.

Certificates are checked against httpx's trust store (certifi, or ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set), as every other outbound call. A proxy from the environment
(``HTTPS_PROXY`` / ``HTTP_PROXY``, ``NO_PROXY``) is used; it is looked up once per origin rather
than through aiohttp's ``trust_env``, which looks the proxy and ~/.netrc up again in a thread on
every request (0.6-0.9 ms of CPU each here, three times the request itself).
"""

from __future__ import annotations

import functools
import json as jsonlib
import os
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

USER_AGENT = "wa-inbox"
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


class AiohttpResponse:
    """What GraphClient reads of an ``httpx.Response``."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class AiohttpClient:
    """One aiohttp session (opened on first use, on the running loop): at most ``size`` connections
    per origin, idle ones kept ``keepalive_expiry`` seconds; ``timeout`` bounds a whole request
    (waiting for a connection, connecting, sending, reading the answer) unless the call gives one."""

    def __init__(self, *, size: int = 16, keepalive_expiry: float = 5.0, timeout: float = 15.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.size = size
        self.keepalive_expiry = keepalive_expiry
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._proxies: dict[tuple[str, str], tuple[URL | None, aiohttp.BasicAuth | None]] = {}

    async def request(self, method: str, url: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                      data: Mapping[str, Any] | None = None, files: Mapping[str, Any] | None = None,
                      headers: Mapping[str, str] | None = None, timeout: float | None = None) -> AiohttpResponse:
        session = self._session if self._session is not None else self._open()
        sent_headers = dict(headers or {})
        body: Any = None
        if files:
            body = aiohttp.FormData()
            for name, value in (data or {}).items():
                body.add_field(name, str(value))
            for name, (filename, content, content_type) in files.items():
                body.add_field(name, content, filename=filename, content_type=content_type)
        elif data:
            body = dict(data)
        elif json is not None:  # as httpx encodes it: compact, UTF-8
            body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
            sent_headers["Content-Type"] = "application/json"
        proxy, proxy_auth = self._proxy(url)
        async with session.request(method, url, params=params, data=body, headers=sent_headers,
                                   timeout=self._timeout(timeout), proxy=proxy, proxy_auth=proxy_auth,
                                   ssl=self._tls() if url.startswith("https:") else True,
                                   allow_redirects=False) as response:
            return AiohttpResponse(response.status, response.headers, await _read(response))

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.size, limit_per_host=self.size,
                                         keepalive_timeout=self.keepalive_expiry)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout(None), cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT}, trust_env=False)
        return self._session

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = default_ssl_context()
        return self._ssl_context

    def _timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        seconds = self.timeout if seconds is None else float(seconds)
        found = self._timeouts.get(seconds)
        if found is None:
            found = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return found

    def _proxy(self, url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
        """The environment's proxy for this URL's origin (as ``trust_env`` would pick it), looked up once."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        found = self._proxies.get(key)
        if found is None:
            try:
                found = get_env_proxy_for_url(URL(url))
            except LookupError:
                found = (None, None)
            self._proxies[key] = found
        return found


def default_ssl_context() -> ssl.SSLContext:
    """httpx's trust store (certifi, or SSL_CERT_FILE / SSL_CERT_DIR when set), one context per process:
    loading the CA bundle costs ~45 ms of CPU, so it is not done per number, nor for plain http."""
    return _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    context = httpx.create_ssl_context()  # reads the same two variables
    context.set_alpn_protocols(["http/1.1"])
    return context


async def _read(response: aiohttp.ClientResponse) -> bytes:
    """The answer's body, refusing more than MAX_RESPONSE_BYTES."""
    length = response.content_length
    if length is not None:
        if length > MAX_RESPONSE_BYTES:
            raise aiohttp.ClientPayloadError("the answer is larger than expected")
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise aiohttp.ClientPayloadError("the answer is larger than expected")
        chunks.append(chunk)
    return b"".join(chunks)
