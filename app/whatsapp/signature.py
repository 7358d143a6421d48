"""X-Hub-Signature-256: HMAC-SHA256 of the raw request body with the app secret."""

from __future__ import annotations

import functools
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
    mac = _keyed(app_secret).copy()  # OpenSSL 3's key setup is most of an HMAC of a small body: done once
    mac.update(body)
    return hmac.compare_digest(mac.hexdigest().encode(), header_value[len(_PREFIX):].strip().encode())


@functools.lru_cache(maxsize=256)
def _keyed(app_secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with ``app_secret`` and fed nothing yet, to be copied per body."""
    return hmac.new(app_secret.encode(), digestmod=hashlib.sha256)
