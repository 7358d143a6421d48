"""Per-API-key rate limit for /api: a Redis counter per key and minute, shared by every web process.

Every /api answer carries ``X-RateLimit-Limit`` (requests per window), ``X-RateLimit-Remaining``
and ``X-RateLimit-Reset`` (seconds until the window restarts); over the limit the answer is 429
with ``Retry-After`` in our one error shape. The subject is the API key (its SHA-256, so no
database lookup is needed before the check) or, without a key, the client's address.

Two pieces, because Litestar runs app middleware only for routes that exist: the middleware
counts and refuses before auth touches the database; a ``before_send`` hook puts the headers on
every /api answer, counting the requests no route matched (404 / 405) too.

Each process takes its counts from Redis a few at a time (``share``: 1 % of the limit, at most 10,
one for small limits, one at a time near the limit), so most API calls cost no Redis round trip:
as the sliding ``sync_rate`` of Kong's rate limiting does. One process alone counts exactly; with
several, a process may hold up to ``share - 1`` counts it has not used yet, which the others see as
used (they may refuse that many requests early: 6 of 600 a minute per other process).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body
from app.logging import get_logger
from app.ratelimit import LocalWindows, _degraded
from app.security import token_digest

log = get_logger(__name__)

WINDOW_SECONDS = 60
SCOPE_KEY = "inbox_ratelimit"
LOCAL = LocalWindows()
"""This process's counts while Redis cannot answer."""
# Documentation pages are not the API: no key, no limit.
EXEMPT_PREFIXES = ("/api/docs",)

_HIT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if n == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""


@dataclass(frozen=True)
class Verdict:
    limit: int
    used: int
    reset: int

    @property
    def allowed(self) -> bool:
        return self.used <= self.limit

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(0, self.limit - self.used)),
                "X-RateLimit-Reset": str(self.reset)}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def subject_of(scope: Scope) -> str:
    """The API key's digest when the request carries one, else the client address."""
    scheme, _, key = (_header(scope, b"authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return "key:" + token_digest(key.strip())[:40]
    client = scope.get("client") or ("unknown", 0)
    return f"ip:{client[0]}"


def applies(scope: Scope) -> bool:
    path = scope.get("path", "")
    return scope.get("type") == "http" and path.startswith("/api/") and not path.startswith(EXEMPT_PREFIXES)


@dataclass
class _Share:
    """Counts this process took from the shared counter and has not used yet: ``next`` .. ``last``."""

    next: int
    last: int
    resets_at: float  # time.monotonic() when the window restarts


MAX_SHARE = 10
MAX_SHARES = 10_000  # subjects remembered per process; past it the ended windows are dropped


def _shares(runtime: Any) -> dict[str, _Share]:
    """This process's shares (one per web app: each is a process of its own in production)."""
    shares = getattr(runtime, "_api_rate_shares", None)
    if shares is None:
        shares = runtime._api_rate_shares = {}
    return shares


def share_size(limit: int, last_used: int) -> int:
    """How many counts to take at once: 1 % of the limit (at most MAX_SHARE), one near the limit."""
    size = max(1, min(MAX_SHARE, limit // 100))
    return 1 if last_used + 2 * size > limit else size


async def check(scope: Scope) -> Verdict | None:
    """Count this request once (cached on the scope); in this process alone while Redis cannot answer."""
    if SCOPE_KEY in scope:
        return scope[SCOPE_KEY]
    runtime = scope["litestar_app"].state.runtime
    limit = runtime.settings.api_rate_limit_per_minute
    key = f"inbox:api-rl:{subject_of(scope)}"
    now = time.monotonic()
    shares = _shares(runtime)
    share = shares.get(key)
    if share is not None and share.next <= share.last and now < share.resets_at:
        used, ttl = share.next, share.resets_at - now
        share.next += 1
    else:
        size = share_size(limit, share.last if share is not None and now < share.resets_at else 0)
        try:
            script = getattr(runtime, "_api_rate_script", None)
            if script is None:
                script = runtime._api_rate_script = runtime.redis.register_script(_HIT)
            last, ttl = await script(keys=[key], args=[WINDOW_SECONDS, size])
            used = int(last) - size + 1
            if len(shares) >= MAX_SHARES:
                for stale in [k for k, v in shares.items() if v.resets_at <= now]:
                    del shares[stale]
            shares[key] = _Share(next=used + 1, last=int(last), resets_at=now + int(ttl))
        except Exception as exc:  # Redis down: this process counts alone (weaker than shared, never none)
            _degraded(exc)
            shares.pop(key, None)
            used, ttl = LOCAL.hit(key, WINDOW_SECONDS)
    verdict = Verdict(limit=limit, used=int(used), reset=max(1, math.ceil(ttl)))
    scope[SCOPE_KEY] = verdict
    return verdict


def too_many(verdict: Verdict) -> tuple[dict[str, Any], dict[str, str]]:
    body = error_body(f"Too many requests: at most {verdict.limit} per minute for this API key. "
                      f"Try again in {verdict.reset} s.", "RATE_LIMITED",
                      {"limit": verdict.limit, "retry_after": verdict.reset})
    return body, {**verdict.headers(), "Retry-After": str(verdict.reset)}


def rate_limit_middleware(app: ASGIApp) -> ASGIApp:
    """Refuses over-limit /api requests with 429 before any handler (or auth lookup) runs."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if applies(scope):
            verdict = await check(scope)
            if verdict is not None and not verdict.allowed:
                body, headers = too_many(verdict)
                raw = json.dumps(body).encode()
                await send({"type": "http.response.start", "status": 429, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items())]})
                await send({"type": "http.response.body", "body": raw})
                return
        await app(scope, receive, send)

    return middleware


async def add_rate_limit_headers(message: Message, scope: Scope) -> None:
    """before_send hook: the X-RateLimit-* headers on every /api answer."""
    if message["type"] != "http.response.start" or not applies(scope):
        return
    verdict = await check(scope)
    if verdict is None:
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in verdict.headers().items():
        headers[name] = value
