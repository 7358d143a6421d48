"""``Idempotency-Key`` for every POST under /api/v1: a repeat within 24 h gets the first answer back.

One mechanism for the whole API (sends, contacts, notes, subscriptions, admin objects ...):
(workspace, method + path, key) -> the first successful answer (status, body, content type),
kept in Redis for 24 hours and shared by every web process.
- The same key with a different body is a client bug: 422 IDEMPOTENCY_KEY_REUSED.
- While the first request is still running, a repeat gets 409 IDEMPOTENCY_IN_PROGRESS (retry).
- Only successes are kept: after a 4xx/5xx the client may fix the request and use the key again.
Replayed answers carry ``Idempotent-Replayed: true``.

Sends are the one place where a lost record would cost more than a replay: a message sent twice. So
the outbox also stores the key on the message it creates (a unique index per workspace) and
answers a repeat with that message: with Redis away (this middleware then lets requests through)
or after the 24 hours, a repeated send still finds its first message instead of sending again.
One header, one rule for the caller; two records only because of what a duplicate send costs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.domains.workspaces.services import Principal
from app.errors import error_body
from app.logging import get_logger

log = get_logger(__name__)

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 200
KEEP_SECONDS = 24 * 3600
PENDING_SECONDS = 120
MAX_STORED_BODY = 1024 * 1024
_KEPT_HEADERS = (b"content-type", b"location")


def _json_error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    return status, json.dumps(error_body(message, code)).encode(), headers or {}


async def _send_raw(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _key_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == HEADER:
            return value.decode("latin-1")
    return None


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    """Put after the auth middleware (it needs the caller's workspace)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_of(scope) if scope["type"] == "http" and scope.get("method") == "POST" else None
        principal = scope.get("user")
        if key is None or not scope["path"].startswith("/api/v1/") or not isinstance(principal, Principal):
            await app(scope, receive, send)
            return
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            status, body, _ = _json_error(422, f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
                                          "IDEMPOTENCY_KEY_INVALID")
            await _send_raw(send, status, body, [(b"content-type", b"application/json")])
            return

        # The whole body: to fingerprint it, then to hand it to the handler unchanged.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        content_type = next((v for k, v in scope.get("headers", []) if k == b"content-type"), b"")
        fingerprint = hashlib.sha256(content_type + b"\n" + body).hexdigest()
        where = hashlib.sha256(f"{scope['path']}\n{key}".encode()).hexdigest()
        redis_key = f"inbox:idem:{principal.workspace_id}:{where}"
        redis = scope["litestar_app"].state.runtime.redis

        pending = json.dumps({"state": "pending", "fp": fingerprint})
        try:
            claimed = await redis.set(redis_key, pending, nx=True, ex=PENDING_SECONDS)
        except Exception as exc:  # Redis down: better to serve the request than refuse it
            log.warning("idempotency store unavailable", error=type(exc).__name__)
            claimed, redis = True, None
        if not claimed:
            raw = await redis.get(redis_key)
            stored = json.loads(raw) if raw else None
            if stored is None:
                status, answer, _ = _json_error(409, "The first request with this Idempotency-Key just ended; "
                                                     "send it again.", "IDEMPOTENCY_IN_PROGRESS")
                await _send_raw(send, status, answer, [(b"content-type", b"application/json"), (b"retry-after", b"1")])
            elif stored["fp"] != fingerprint:
                status, answer, _ = _json_error(422, "This Idempotency-Key was used with a different request body.",
                                                "IDEMPOTENCY_KEY_REUSED")
                await _send_raw(send, status, answer, [(b"content-type", b"application/json")])
            elif stored["state"] == "pending":
                status, answer, _ = _json_error(409, "A request with this Idempotency-Key is still running; "
                                                     "retry in a moment.", "IDEMPOTENCY_IN_PROGRESS")
                await _send_raw(send, status, answer, [(b"content-type", b"application/json"), (b"retry-after", b"1")])
            else:
                headers = [(k.encode(), v.encode()) for k, v in stored["headers"]]
                await _send_raw(send, stored["status"], base64.b64decode(stored["body"]),
                                [*headers, (b"idempotent-replayed", b"true")])
            return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = [(k.decode("latin-1"), v.decode("latin-1"))
                                       for k, v in message.get("headers", []) if k.lower() in _KEPT_HEADERS]
            elif message["type"] == "http.response.body" and len(captured["body"]) <= MAX_STORED_BODY:
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await app(scope, replay, capture)
        finally:
            if redis is not None:
                ok = 200 <= captured["status"] < 300 and len(captured["body"]) <= MAX_STORED_BODY
                try:
                    if ok:
                        await redis.set(redis_key, json.dumps({
                            "state": "done", "fp": fingerprint, "status": captured["status"],
                            "headers": captured["headers"], "body": base64.b64encode(captured["body"]).decode()}),
                            ex=KEEP_SECONDS)
                    else:
                        await redis.delete(redis_key)
                except Exception as exc:
                    log.warning("idempotency answer not stored", error=type(exc).__name__)

    return middleware
