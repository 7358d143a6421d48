"""Media ids, their bytes and short-lived download URLs, as Meta's media endpoints see them.

Lifetimes follow WHATSAPP.md: uploaded media 30 days, media from webhooks 7 days, and a
download URL 5 minutes after ``GET /{media_id}`` issued it.  Expiry is checked lazily on
lookup, so nothing runs in the background.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from app.sandbox.models import MediaItem

if TYPE_CHECKING:
    from app.sandbox.models import Number

URL_TTL_S = 300.0
UPLOAD_TTL_S = 30 * 86400.0
_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "audio/ogg": "ogg", "video/mp4": "mp4",
        "application/pdf": "pdf", "text/plain": "txt", "audio/mpeg": "mp3", "audio/aac": "aac",
        "audio/amr": "amr", "audio/mp4": "m4a", "video/3gpp": "3gp"}


def download_url(base: str, item: MediaItem, token: str, *, source: str | None = None) -> str:
    """``{base}?mid=..&ext=..&hash=..`` like Meta's lookaside URLs (``source=webhook`` in webhooks)."""
    query: dict[str, str] = {"mid": item.id}
    if source:
        query["source"] = source
    query["ext"] = _EXT.get(item.mime_type.split(";")[0].strip(), "bin")
    query["hash"] = token
    return f"{base}?{urlencode(query)}"


def sha256_pair(data: bytes) -> tuple[str, str]:
    """(hex, base64) SHA-256 of ``data``: GET /{media_id} reports hex, webhooks base64."""
    digest = hashlib.sha256(data).digest()
    return digest.hex(), base64.b64encode(digest).decode()


class MediaStore:
    """Media items by id plus the download-URL tokens issued for them."""

    def __init__(self) -> None:
        self._items: dict[str, MediaItem] = {}
        self._urls: dict[str, tuple[str, float]] = {}  # url token -> (media id, expires at)

    def add(self, media_id: str, owner: Number, data: bytes, mime_type: str, *, ttl_s: float = UPLOAD_TTL_S,
            filename: str | None = None) -> MediaItem:
        now = time.time()
        hex_digest, b64_digest = sha256_pair(data)
        item = MediaItem(media_id, owner.phone_number_id, owner.waba_id, data, mime_type, hex_digest, b64_digest,
                         now, now + ttl_s, filename)
        self._items[media_id] = item
        return item

    def get(self, media_id: str, now: float | None = None) -> MediaItem | None:
        item = self._items.get(media_id)
        if item is not None and item.expires_at <= (now or time.time()):
            del self._items[media_id]
            return None
        return item

    def delete(self, media_id: str) -> bool:
        return self._items.pop(media_id, None) is not None

    def issue_url(self, item: MediaItem) -> str:
        """A new download token for ``item``, valid for five minutes."""
        now = time.time()
        if len(self._urls) > 10_000:  # keep the table small without a sweeper task
            self._urls = {k: v for k, v in self._urls.items() if v[1] > now}
        token = secrets.token_urlsafe(18)
        self._urls[token] = (item.id, now + URL_TTL_S)
        return token

    def resolve_url(self, token: str) -> MediaItem | None:
        """The media behind a download token, or None when unknown, expired or deleted."""
        entry = self._urls.get(token)
        if entry is None:
            return None
        media_id, expires_at = entry
        if expires_at <= time.time():
            del self._urls[token]
            return None
        return self.get(media_id)

    def expire_urls(self) -> None:
        """Make every issued URL stale at once (tests of the 'URL expired' path)."""
        self._urls = {k: (v[0], 0.0) for k, v in self._urls.items()}

    def clear(self) -> None:
        self._items.clear()
        self._urls.clear()
