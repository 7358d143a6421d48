"""Meta's POSTs to ``/webhooks/whatsapp/{key}`` answered by a bare ASGI handler, first in the middleware list.

Every delivery Meta makes lands here, so this path skips what it does not need: sessions, API-key
rate limits, idempotency keys, CSRF, dependency injection and response building. Measured with
bench/webhooks.py, that stack cost more than the work itself (verify, store, enqueue). The logic
is the same WebhookReceiver the rest of the app uses; errors are AppErrors, so they get the
product's JSON error shape from the exception handler around every route. GET (Meta's
verification) and anything else still go through the Litestar controller.
"""

from __future__ import annotations

from typing import Any

from litestar.types import ASGIApp, Receive, Scope, Send

from app.domains.webhooks.services import MAX_BODY_BYTES, WebhookReceiver, body_too_large
from app.errors import ClientError, NotFound, PayloadTooLarge

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


def webhook_fast_path(app: ASGIApp) -> ASGIApp:
    """Middleware: POST /webhooks/whatsapp/{key} is answered here; every other request passes on."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith(PREFIX):
            await receive_webhook(scope["litestar_app"].state.runtime.webhooks, scope, receive, send)
            return
        await app(scope, receive, send)

    return middleware
