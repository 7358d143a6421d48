"""Meta's POSTs to ``/webhooks/whatsapp/{key}`` answered by a bare ASGI handler, before Litestar's router.

Every delivery Meta makes lands here, so this path skips what it does not need: routing, the
exception middleware, before-send hooks, sessions, API-key rate limits, idempotency keys, CSRF,
dependency injection and response building. Measured with bench/webhooks.py, that stack cost more
than the work itself (verify, store, enqueue). The logic is the same WebhookReceiver the rest of
the app uses; its AppErrors are answered here in the product's JSON error shape. GET (Meta's
verification) and anything else still go through the Litestar controller.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Litestar
from litestar.types import Receive, Scope, Send

from app import correlation
from app.db import DATABASE_DOWN, database_unavailable
from app.domains.webhooks.services import MAX_BODY_BYTES, WebhookReceiver, body_too_large
from app.errors import AppError, ClientError, NotFound, PayloadTooLarge
from app.http_headers import with_security_headers
from app.logging import get_logger
from app.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = get_logger(__name__)

PREFIX = "/webhooks/whatsapp/"
_SIGNATURE = b"x-hub-signature-256"
_RECEIVED = b'{"received":true,"duplicate":false}'
_DUPLICATE = b'{"received":true,"duplicate":true}'


def _answer_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]


def answer_body(duplicate: bool) -> bytes:
    return _DUPLICATE if duplicate else _RECEIVED


def unknown_webhook_key() -> NotFound:
    return NotFound("No WhatsApp number has this webhook URL.", error_code="UNKNOWN_WEBHOOK")


async def read_capped(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing (413) as soon as more than ``limit`` bytes have arrived."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            raise ClientError("The client went away before sending the whole body.", error_code="CLIENT_DISCONNECTED")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Webhook bodies are at most {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def receive_webhook(receiver: WebhookReceiver, scope: Scope, receive: Receive, send: Send) -> None:
    """Verify, store and acknowledge one delivery (the enqueue happens off the answer)."""
    account_key = scope["path"][len(PREFIX):]
    signature = content_length = None
    for name, value in scope["headers"]:
        if name == _SIGNATURE:
            signature = value.decode("latin-1")
        elif name == b"content-length":
            content_length = value
    if body_too_large(content_length):
        raise PayloadTooLarge(f"Webhook bodies are at most {MAX_BODY_BYTES} bytes.")
    if not account_key or "/" in account_key:
        raise unknown_webhook_key()
    endpoint = await receiver.endpoint(account_key)
    if endpoint is None:
        raise unknown_webhook_key()
    body = await read_capped(receive)
    receipt = await receiver.receive(account_key, endpoint, body, signature)
    answer = answer_body(receipt.duplicate)
    await send({"type": "http.response.start", "status": 200, "headers": _answer_headers(answer)})
    await send({"type": "http.response.body", "body": answer})


async def answer_webhook(receiver: WebhookReceiver, scope: Scope, receive: Receive, send: Send) -> None:
    """``receive_webhook`` with its errors answered as JSON (``{"error", "error_code", "details"}``)."""
    try:
        await receive_webhook(receiver, scope, receive, send)
        return
    except AppError as exc:
        error = exc
    except DATABASE_DOWN as exc:  # a 503 within the driver's server selection timeout; Meta retries it
        log.warning("webhook delivery not stored: database unavailable", error=type(exc).__name__)
        error = database_unavailable()
    except Exception:  # Meta retries a 5xx, so nothing is lost
        log.exception("webhook delivery not stored")  # not the path: its key is the URL's secret
        error = AppError("Something went wrong on our side. It has been logged.")
    body = msgspec.json.encode(error.to_dict())
    headers = _answer_headers(body) + [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


WEBHOOK_ROUTE = PREFIX + "{account_key}"
_QUIET = ("/static", "/metrics", "/health")  # counted, not logged: every scrape, probe and asset would be a line


def _count_request(scope: Any, status: int, seconds: float) -> None:
    """The request in the HTTP metrics, and one access log line (by route template, never the path: a webhook's or a
    workflow hook's path holds its secret key)."""
    route = scope.get("path_template") or "unmatched"
    HTTP_REQUESTS.labels(method=scope["method"], route=route, status=str(status)).inc()
    HTTP_LATENCY.labels(method=scope["method"], route=route).observe(seconds)
    if not route.startswith(_QUIET):
        log.info("request", method=scope["method"], route=route, status=status, ms=round(seconds * 1000, 1))


class InboxApp(Litestar):
    """Litestar, with Meta's webhook POSTs answered before the router (see the module docstring)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await super().__call__(scope, receive, send)
            return
        request_id = correlation.request_id_of(scope)
        with correlation.bound(request_id):  # every log line of the request, and what it enqueues (app/correlation.py)
            if scope["type"] == "websocket":
                await super().__call__(scope, receive, send)
                return
            started, answered = time.perf_counter(), [500]

            async def counted(message: Any) -> None:
                if message["type"] == "http.response.start":
                    answered[0] = message["status"]
                await send(message)

            # Every answer, the fast path's and a 404 included (app/http_headers.py).
            secured = with_security_headers(correlation.answering_with(counted, request_id),
                                            https=self.state.runtime.settings.public_url.startswith("https://"))
            try:
                if scope["method"] == "POST" and scope["path"].startswith(PREFIX):
                    scope["path_template"] = WEBHOOK_ROUTE
                    await answer_webhook(self.state.runtime.webhooks, scope, receive, secured)
                else:
                    await super().__call__(scope, receive, secured)
            finally:
                _count_request(scope, answered[0], time.perf_counter() - started)
