"""WhatsApp's accepted MIME types and size limits per media kind (see WHATSAPP.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MB = 1024 * 1024
KB = 1024


class MediaKind(StrEnum):
    """The message types that carry a media object."""

    AUDIO = "audio"
    DOCUMENT = "document"
    IMAGE = "image"
    STICKER = "sticker"
    VIDEO = "video"


@dataclass(frozen=True)
class MediaRule:
    """What WhatsApp accepts for one media kind."""

    mime_types: frozenset[str]
    max_bytes: int


RULES: dict[MediaKind, MediaRule] = {
    MediaKind.AUDIO: MediaRule(
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}), 16 * MB
    ),
    MediaKind.DOCUMENT: MediaRule(
        frozenset(
            {
                "text/plain",
                "application/pdf",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
        100 * MB,
    ),
    MediaKind.IMAGE: MediaRule(frozenset({"image/jpeg", "image/png"}), 5 * MB),
    # Animated stickers may reach 500 KB; static ones 100 KB (checked by sticker_limit()).
    MediaKind.STICKER: MediaRule(frozenset({"image/webp"}), 500 * KB),
    MediaKind.VIDEO: MediaRule(frozenset({"video/mp4", "video/3gpp"}), 16 * MB),
}

STATIC_STICKER_MAX_BYTES = 100 * KB


def base_mime(mime_type: str) -> str:
    """``audio/ogg; codecs=opus`` -> ``audio/ogg`` (lower-cased, parameters dropped)."""
    return mime_type.split(";", 1)[0].strip().lower()


def max_bytes(kind: MediaKind | str, *, animated: bool = True) -> int:
    """The size cap for ``kind``; a static sticker is capped lower than an animated one."""
    kind = MediaKind(kind)
    if kind is MediaKind.STICKER and not animated:
        return STATIC_STICKER_MAX_BYTES
    return RULES[kind].max_bytes


def is_allowed(kind: MediaKind | str, mime_type: str) -> bool:
    """True when WhatsApp accepts ``mime_type`` for ``kind``."""
    return base_mime(mime_type) in RULES[MediaKind(kind)].mime_types


def kind_for_mime(mime_type: str) -> MediaKind | None:
    """The media kind a MIME type is sent as (webp is a sticker), or None if none accepts it."""
    mime = base_mime(mime_type)
    for kind in (MediaKind.IMAGE, MediaKind.STICKER, MediaKind.VIDEO, MediaKind.AUDIO, MediaKind.DOCUMENT):
        if mime in RULES[kind].mime_types:
            return kind
    return None
