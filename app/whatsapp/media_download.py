"""Safe media downloads: read at most a size cap, verify Meta's SHA-256, send the token only to Meta.

Used by :meth:`GraphClient.download_media`; kept apart because these are the rules that protect
us from a huge or tampered file and from handing the access token to a foreign host.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from urllib.parse import urlsplit

import httpx

from app.whatsapp.errors import MediaTooLarge, MediaUrlExpired, error_from_response

# Media download URLs (lookaside.fbsbx.com) need the bearer token; we only ever send it to
# Meta's hosts or to the host of our own base URL (the sandbox), never to an arbitrary link.
META_MEDIA_HOST_SUFFIXES = (".facebook.com", ".fbsbx.com", ".fbcdn.net", ".whatsapp.net")


def may_receive_token(url: str, own_base_url: str) -> bool:
    """True when ``url`` is on one of Meta's hosts or on the host our Graph base URL points at."""
    host = (urlsplit(url).hostname or "").lower()
    own_host = (urlsplit(own_base_url).hostname or "").lower()
    return host == own_host or host.endswith(META_MEDIA_HOST_SUFFIXES)


async def read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bytes]:
    """The body and its SHA-256 digest, stopping as soon as more than ``max_bytes`` arrive.

    A 404 means the short-lived download URL expired (MediaUrlExpired); other failures become
    the matching GraphError.
    """
    if response.status_code == 404:
        raise MediaUrlExpired("the media URL is no longer valid", http_status=404)
    if not response.is_success:
        await response.aread()
        raise error_from_response(response.status_code, response.content)
    cap = f"the cap is {max_bytes} bytes"
    announced = response.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > max_bytes:
        raise MediaTooLarge(f"{announced} bytes announced", details=cap, http_status=response.status_code)
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > max_bytes:
            raise MediaTooLarge(f"more than {max_bytes} bytes", details=cap, http_status=response.status_code)
        digest.update(chunk)
        chunks.append(chunk)
    return b"".join(chunks), digest.digest()


def sha256_matches(digest: bytes, expected: str) -> bool:
    """Meta gives SHA-256 as hex from ``GET /{media_id}`` and as base64 in webhooks: accept both."""
    expected = expected.strip()
    if expected.lower() == digest.hex():
        return True
    try:
        return base64.b64decode(expected, validate=True) == digest
    except (binascii.Error, ValueError):
        return False
