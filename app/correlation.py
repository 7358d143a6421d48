"""One id for each cause, in every log line it leads to, in the web and the worker processes alike.

- **Requests.** Every HTTP request gets a request id: the ``X-Request-ID`` its proxy sent, when that proxy is one of
  INBOX_TRUSTED_PROXIES (``TrustedProxies`` marks such requests) and the id is a plain token (letters, digits,
  ``-_.:``, at most 128); otherwise a new one. It is answered in the ``X-Request-ID`` header and bound to every log
  line of the request (structlog's context variables; ``request_id`` in JSON logs).
- **What a request causes carries its id on.** The arq jobs it enqueues get it as their ``cause`` keyword, which the
  worker binds again around the job (workers/settings.py), so the job's log lines carry the same ``request_id``.
  The messages it stores keep it (``Message.cause``): the worker's line for the send and the web's lines for each of
  its statuses name it, so ``grep <request id>`` shows a message's whole path.
- **Work nobody asked for** (a cron, a drainer between sends) has no request id; its lines name what they are about
  (message_id, broadcast_id, run_id ...).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

HEADER = b"x-request-id"
KEY = "request_id"
VIA_TRUSTED_PROXY = "inbox.via_trusted_proxy"
"""An ASGI scope key: the request came from one of INBOX_TRUSTED_PROXIES (set by TrustedProxies)."""
_TOKEN = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def new_id() -> str:
    return uuid.uuid4().hex


def current() -> str | None:
    """The request id bound in this context (a request, or a job it caused); None outside one."""
    value = structlog.contextvars.get_contextvars().get(KEY)
    return value if isinstance(value, str) else None


@contextmanager
def bound(request_id: str | None) -> Iterator[None]:
    """Every log line inside carries ``request_id`` (nothing when None)."""
    if request_id is None:
        yield
        return
    with structlog.contextvars.bound_contextvars(**{KEY: request_id}):
        yield


def request_id_of(scope: dict[str, Any]) -> str:
    """The request's id: a trusted proxy's X-Request-ID when it is a plain token, else a new one."""
    if scope.get(VIA_TRUSTED_PROXY):
        for name, value in scope.get("headers") or ():
            if name == HEADER and _TOKEN.fullmatch(value):
                return value.decode("ascii")
    return new_id()


def answering_with(send: Any, request_id: str) -> Any:
    """``send``, with the X-Request-ID header on the response's start."""
    header = (HEADER, request_id.encode("ascii"))

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), header]}
        await send(message)

    return wrapped


class TrustedProxies:
    """uvicorn's ProxyHeadersMiddleware (X-Forwarded-For / -Proto believed from ``trusted`` peers only), which also
    marks what those peers forwarded (``VIA_TRUSTED_PROXY``): the peer's address is gone once it has rewritten it."""

    def __init__(self, app: Any, trusted: list[str]) -> None:
        self.proxy = ProxyHeadersMiddleware(app, trusted_hosts=trusted)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and client[0] in self.proxy.trusted_hosts:
            scope[VIA_TRUSTED_PROXY] = True
        await self.proxy(scope, receive, send)
