"""X-Hub-Signature-256: HMAC-SHA256 of the raw request body with the app secret."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(app_secret: str, body: bytes) -> str:
    """Return the header value Meta sends for ``body``: ``sha256=<hex digest>``."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify(app_secret: str, body: bytes, header_value: str | None) -> bool:
    """True when ``header_value`` is the signature of the exact ``body`` bytes.

    Compared in constant time; never re-serialise the JSON before calling this.
    """
    if not header_value or not app_secret or not header_value.startswith(_PREFIX):
        return False
    # hmac.digest: OpenSSL's one-shot HMAC, a few times cheaper than an hmac.new() object per call.
    expected = hmac.digest(app_secret.encode(), body, "sha256").hex().encode()
    return hmac.compare_digest(expected, header_value[len(_PREFIX):].strip().encode())
