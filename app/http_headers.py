"""The headers every HTTP answer carries, pages, API, 404s and Meta's webhook fast path alike.

Applied around the whole application (``InboxApp.__call__``), not as a Litestar middleware: those
run only for routes that exist, so a 404 and the webhook fast path went without them.

- A strict CSP (no inline script), nosniff, same-origin referrers, no framing.
- ``Strict-Transport-Security`` when the public URL is https (browsers then never try http).
- ``Cache-Control: no-store`` on every answer that does not set its own (pages with a customer's
  conversation, API answers); static files and media set theirs.
"""

from __future__ import annotations

from typing import Any

from litestar.types import Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)
HSTS = b"max-age=31536000; includeSubDomains"
_ALWAYS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


def with_security_headers(send: Send, *, https: bool) -> Send:
    """``send``, adding what an answer lacks of the headers above."""

    async def send_with_headers(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {bytes(k).lower() for k, _ in headers}
            extra = [*_ALWAYS, (b"cache-control", b"no-store")]
            if https:
                extra.append((b"strict-transport-security", HSTS))
            headers.extend((key, value) for key, value in extra if key not in names)
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers
