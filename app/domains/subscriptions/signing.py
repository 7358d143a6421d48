"""Signatures of event webhooks: ``X-Inbox-Signature: sha256=HMAC(secret, timestamp + "." + body)``.

The timestamp is in the signed string, so a captured request cannot be replayed later with a
fresh ``X-Inbox-Timestamp``; receivers reject old timestamps (verify() does, 5 minutes).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Inbox-Signature"
TIMESTAMP_HEADER = "X-Inbox-Timestamp"
SECRET_PREFIX = "whsec_"


def new_signing_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str | None, body: bytes, signature: str | None, *,
           tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """What a receiver does (the README shows the same lines): constant-time compare, fresh timestamp."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
