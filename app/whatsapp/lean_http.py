"""A lean HTTP/1.1 client for the Graph calls the send path makes: small JSON requests, many of them.

httpx spends about 1.4 ms of CPU per request on this kind of call (measured against the sandbox:
request and URL objects, the cookie jar, a pool that polls every idle socket before each request,
headers and body written separately); a worker sending 1,000 messages a second cannot afford it.
:class:`LeanHTTP` keeps asyncio protocol connections alive per origin, writes each request in one
call, parses answers with httptools (C) and notices a connection the server closed as soon as it
happens, so checking out an idle connection costs nothing. It does only that, the way httpx
would: anything else (query parameters, form or multipart bodies, streaming, a proxy from the
environment, unusual URLs) goes to the ``fallback`` httpx client unchanged.

It duck-types the part of ``httpx.AsyncClient`` that GraphClient uses (``request``, ``stream``,
``aclose``) and raises httpx's exceptions (ConnectError, ConnectTimeout, PoolTimeout,
ReadTimeout, ReadError, RemoteProtocolError, LocalProtocolError), so GraphClient's error mapping
is the same whichever path a call took. A request is never sent twice: when a kept-alive
connection turns out closed before any answer, the caller sees a connection error (which the
outbox retries), as with httpx.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import re
import ssl
import time
import urllib.request
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import httptools
import httpx

USER_AGENT = "wa-inbox"
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_PLAIN_TARGET = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")  # nothing httpx would re-encode
_ENCODED = {"GET", "DELETE", "POST"}


class LeanResponse:
    """What GraphClient reads of an ``httpx.Response``."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
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


class _Connection(asyncio.Protocol):
    """One kept-alive connection; at most one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[LeanResponse] | None = None
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._headers_done = False

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for: the connection's state is unknown
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid HTTP answer: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # half-closed by the server: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self._headers_done and "content-length" not in self._headers \
                    and "chunked" not in self._headers.get("transfer-encoding", ""):
                self.reusable = False  # an answer delimited by the end of the connection
                self.on_message_complete()
            elif self._headers_done:
                self._fail(httpx.ReadError("the connection closed in the middle of the answer"))
            else:
                self._fail(httpx.RemoteProtocolError("Server disconnected without sending a response."))

    # -- httptools callbacks --------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_RESPONSE_BYTES:
            self._fail(httpx.RemoteProtocolError("the answer is larger than expected"))
            self.close()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        self.reusable = not self.closed and self.parser.should_keep_alive()
        waiter.set_result(LeanResponse(self.parser.get_status_code(), self._headers, b"".join(self._body)))

    # -- use ------------------------------------------------------------------------------------

    def start(self, raw: bytes) -> asyncio.Future[LeanResponse]:
        assert self.transport is not None
        self._headers, self._body, self._size, self._headers_done = {}, [], 0, False
        self.reusable = False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter

    def expire(self) -> None:
        self._fail(httpx.ReadTimeout("no answer in time"))

    def _fail(self, error: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Pool:
    """Connections to one origin: idle ones reused most recent first, at most ``size`` open."""

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None, size: int, expiry: float) -> None:
        self.host, self.port, self.ssl = host, port, ssl_context
        self.size, self.expiry = size, expiry
        self.idle: deque[_Connection] = deque()
        self.open = 0
        self.waiting: deque[asyncio.Future[None]] = deque()

    async def acquire(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        while True:
            now = time.monotonic()
            while self.idle:
                connection = self.idle.pop()
                if not connection.closed and now - connection.idle_since < self.expiry:
                    return connection
                self._drop(connection)
            if self.open < self.size:
                self.open += 1
                try:
                    return await self._connect(deadline)
                except BaseException:
                    self.open -= 1
                    self._wake_one()
                    raise
            turn = loop.create_future()
            self.waiting.append(turn)
            timer = loop.call_at(loop.time() + max(0.0, deadline - now), _expire_turn, turn)
            try:
                await turn
            except TimeoutError:
                raise httpx.PoolTimeout("no connection free in time") from None
            except BaseException:
                if turn.done() and not turn.cancelled() and turn.exception() is None:
                    self._wake_one()  # our turn came as we were cancelled: pass it on
                raise
            finally:
                timer.cancel()

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                _, connection = await loop.create_connection(
                    _Connection, self.host, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl is not None else None)
        except TimeoutError:
            raise httpx.ConnectTimeout("connecting timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
        return connection

    def release(self, connection: _Connection, reusable: bool) -> None:
        if reusable and not connection.closed:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
        else:
            connection.close()
            self.open -= 1
        self._wake_one()

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self.open -= 1

    def _wake_one(self) -> None:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    def close(self) -> None:
        while self.idle:
            self._drop(self.idle.pop())


def _expire_turn(turn: asyncio.Future[None]) -> None:
    if not turn.done():
        turn.set_exception(TimeoutError())


class LeanHTTP:
    """See the module docstring. ``size``: connections per origin; ``fallback``: the httpx client for
    everything else (not closed by :meth:`aclose` unless ``owns_fallback``)."""

    def __init__(self, fallback: httpx.AsyncClient, *, size: int = 16, keepalive_expiry: float = 5.0,
                 timeout: float = 15.0, ssl_context: ssl.SSLContext | None = None, owns_fallback: bool = False) -> None:
        self.fallback = fallback
        self.size = size
        self.keepalive_expiry = keepalive_expiry
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._owns_fallback = owns_fallback
        self._pools: dict[tuple[str, str, int], _Pool | None] = {}  # None: this origin goes through httpx

    async def request(self, method: str, url: str, *, json: Any = None, params: Any = None, data: Any = None,
                      files: Any = None, headers: dict[str, str] | None = None, timeout: Any = None,
                      **other: Any) -> Any:
        pool = target = None
        if not (params or data or files or other) and method in _ENCODED:
            pool, target = self._route(url)
        if pool is None or target is None:
            return await self.fallback.request(method, url, json=json, params=params, data=data, files=files,
                                               headers=headers, timeout=timeout, **other)
        body = None
        if json is not None:
            body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        seconds = timeout if isinstance(timeout, (int, float)) else self.timeout
        raw = _request_bytes(method, target, _host_header(pool), headers or {}, body)
        return await self._exchange(pool, raw, time.monotonic() + seconds)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return self.fallback.stream(*args, **kwargs)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            if pool is not None:
                pool.close()
        if self._owns_fallback:
            await self.fallback.aclose()

    def _route(self, url: str) -> tuple[_Pool | None, str | None]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.fragment:
            return None, None
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if not _PLAIN_TARGET.match(target):
            return None, None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, parts.hostname, port)
        if key not in self._pools:
            self._pools[key] = None if _proxied(parts.scheme, parts.hostname) else _Pool(
                parts.hostname, port, self._tls() if parts.scheme == "https" else None, self.size, self.keepalive_expiry)
        return self._pools[key], target

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()  # httpx's trust store (certifi, SSL_CERT_FILE/DIR)
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context

    async def _exchange(self, pool: _Pool, raw: bytes, deadline: float) -> LeanResponse:
        connection = await pool.acquire(deadline)
        loop = asyncio.get_running_loop()
        timer = None
        reusable = False
        try:
            waiter = connection.start(raw)
            timer = loop.call_at(loop.time() + max(0.0, deadline - time.monotonic()), connection.expire)
            response = await waiter
            reusable = connection.reusable
            return response
        finally:
            if timer is not None:
                timer.cancel()
            connection.waiter = None
            pool.release(connection, reusable)  # an error, a timeout or a cancel: never reused


def _host_header(pool: _Pool) -> str:
    default = 443 if pool.ssl is not None else 80
    host = f"[{pool.host}]" if ":" in pool.host else pool.host
    return host if pool.port == default else f"{host}:{pool.port}"


def _request_bytes(method: str, target: str, host: str, headers: dict[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept: */*", f"User-Agent: {USER_AGENT}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise httpx.LocalProtocolError("illegal header")
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    elif method == "POST":
        lines.append("Content-Length: 0")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise httpx.LocalProtocolError("header values must be latin-1") from None
    return head + body if body else head


def _proxied(scheme: str, host: str) -> bool:
    """httpx (trust_env) would send this through a proxy from the environment: leave it to httpx."""
    proxies = urllib.request.getproxies()
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)
