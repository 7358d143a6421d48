"""Outbound media: check an uploaded file against WhatsApp's limits, convert what can be fixed, store it.

The real type comes from the bytes (``filetype``), never from the name or the client's header.
- Images: JPEG and PNG up to 5 MB go as they are. Any other image Pillow reads (WebP, GIF,
  BMP, TIFF, ...) or one over 5 MB is re-encoded (PNG when it has transparency, else JPEG)
  and downscaled until it fits.
- Stickers: WebP up to 100 KB (500 KB animated) as they are; other images become a 512x512 WebP.
- Audio and video: no transcoder ships with the product (no ffmpeg), so only WhatsApp's own
  formats are accepted (audio AAC/AMR/MP3/M4A/OGG, video MP4/3GPP, 16 MB); anything else is
  refused with the formats to use.
- Documents: PDF, Office and plain text up to 100 MB.

Files are stored once per workspace (deduplicated by the SHA-256 of the bytes we send) in the
media store, like inbound media; each number uploads a file to Meta once and keeps the media id
30 days (less a day of margin), in ``OutboundMedia.meta_ids``.

A file to check is an :class:`Upload`: a file object with its size, SHA-256 and first bytes. The
upload routes receive it straight into a temporary file (``uploads.py``), so a 100 MB document is
never held in memory: its type is sniffed from its first 8 KB, and the media store copies it from
the file into GridFS. Bytes are wrapped in one (``Upload.of``). Images to convert are decoded from
the file by Pillow; only the converted result (at most 5 MB) is held in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING

import filetype
import pymongo
from beanie import PydanticObjectId
from pydantic import BaseModel, Field
from pymongo.errors import DuplicateKeyError

from app.db import WorkspaceDocument, as_utc, utcnow
from app.domains.media.store import MediaStore
from app.errors import PayloadTooLarge, ValidationFailed
from app.whatsapp.media import KB, MB, RULES, STATIC_STICKER_MAX_BYTES, MediaKind, kind_for_mime

if TYPE_CHECKING:
    from PIL import Image  # imported where used: Pillow loads only for images

META_ID_LIFETIME = timedelta(days=29)  # Meta keeps uploads 30 days; a day of margin
MAX_UPLOAD_BYTES = 100 * MB
STICKER_SIZE = 512
SNIFF_BYTES = 8192
"""The first bytes of a file that tell its type: all ``filetype`` reads (and the text probe's 4 KB)."""
_TEXT_PROBE = 4096


class MetaUpload(BaseModel):
    media_id: str
    expires_at: datetime


class OutboundMedia(WorkspaceDocument):
    """A file ready to send: what we store and the media id each number got for it from Meta."""

    sha256: str
    kind: str
    mime_type: str
    size: int
    filename: str | None = None
    original_mime: str | None = None
    converted: bool = False
    meta_ids: dict[str, MetaUpload] = Field(default_factory=dict)
    """account id -> Meta's media id for this file (valid about 30 days)."""

    class Settings:
        name = "outbound_media"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("sha256", 1), ("kind", 1)], unique=True)]

    def meta_id_for(self, account_id: PydanticObjectId | str, now: datetime | None = None) -> str | None:
        upload = self.meta_ids.get(str(account_id))
        if upload is None or as_utc(upload.expires_at) <= (now or utcnow()):
            return None
        return upload.media_id


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge("Files may be at most 100 MB.", error_code="MEDIA_TOO_LARGE")


@dataclass(frozen=True)
class Upload:
    """A file's bytes in a readable, seekable file object, and what was learnt while receiving them."""

    file: IO[bytes]
    """Read from its start by whoever uses it; closed by whoever opened it (not by this module)."""
    size: int
    sha256: str
    head: bytes
    """The first ``SNIFF_BYTES`` bytes (all of them for a smaller file)."""

    @classmethod
    def of(cls, data: bytes) -> Upload:
        return cls(io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest(), data[:SNIFF_BYTES])


@dataclass(frozen=True)
class PreparedFile:
    kind: MediaKind
    mime_type: str
    upload: Upload
    """What to store and send: the file as received, or the converted image."""
    original_mime: str
    converted: bool


def _refuse(message: str, code: str, **details: object) -> ValidationFailed:
    return ValidationFailed(message, error_code=code, details={k: str(v) for k, v in details.items()})


def sniff(data: bytes, size: int | None = None) -> str | None:
    """The MIME type the bytes really are; plain text when they decode as UTF-8 without controls.

    ``data`` may be only the file's first ``SNIFF_BYTES`` bytes, with ``size`` the file's whole size.
    """
    kind = filetype.guess(data[:SNIFF_BYTES])
    if kind is not None:
        return str(kind.mime)
    probe = data[:_TEXT_PROBE]
    try:
        text = probe.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the probe's end is still text.
        try:
            text = probe[:-3].decode("utf-8") if (len(data) if size is None else size) > _TEXT_PROBE else ""
        except UnicodeDecodeError:
            return None
    if text and all(ch.isprintable() or ch in "\r\n\t\f" for ch in text):
        return "text/plain"
    return None


def prepare(data: bytes | Upload, requested_kind: str | None = None) -> PreparedFile:
    """Check (and if needed convert) the file to something WhatsApp accepts as ``requested_kind``.

    Blocking (it may read the file, and Pillow converts images): run it in a thread.
    """
    upload = data if isinstance(data, Upload) else Upload.of(data)
    if not upload.size:
        raise _refuse("The file is empty.", "MEDIA_EMPTY")
    if upload.size > MAX_UPLOAD_BYTES:
        raise too_large()
    if requested_kind is not None and requested_kind not in {k.value for k in MediaKind}:
        raise _refuse("type must be image, video, audio, document or sticker.", "MEDIA_KIND_INVALID",
                      type=requested_kind)
    mime = sniff(upload.head, upload.size)
    if mime is None:
        raise _refuse("This file type is not recognised; WhatsApp accepts images (JPEG, PNG), video (MP4), "
                      "audio (AAC, MP3, M4A, OGG, AMR), stickers (WebP) and documents (PDF, Office, text).",
                      "MEDIA_TYPE_UNSUPPORTED")
    kind = MediaKind(requested_kind) if requested_kind else (_natural_kind(mime))
    if kind is None:
        raise _refuse(f"WhatsApp cannot send {mime} files.", "MEDIA_TYPE_UNSUPPORTED", mime_type=mime)
    if kind is MediaKind.IMAGE:
        return _image(upload, mime)
    if kind is MediaKind.STICKER:
        return _sticker(upload, mime)
    rule = RULES[kind]
    if mime not in rule.mime_types:
        allowed = ", ".join(sorted(rule.mime_types))
        hint = " (no audio/video conversion is available: export it in one of these formats)" \
            if kind in (MediaKind.AUDIO, MediaKind.VIDEO) else ""
        raise _refuse(f"A {kind.value} must be one of {allowed}; this file is {mime}{hint}.",
                      "MEDIA_TYPE_UNSUPPORTED", mime_type=mime, kind=kind.value)
    if upload.size > rule.max_bytes:
        raise _refuse(f"A {kind.value} may be at most {rule.max_bytes // MB} MB; this file is "
                      f"{upload.size / MB:.1f} MB.", "MEDIA_TOO_LARGE", size=upload.size, limit=rule.max_bytes)
    return PreparedFile(kind, mime, upload, mime, False)


def _natural_kind(mime: str) -> MediaKind | None:
    kind = kind_for_mime(mime)
    if kind is MediaKind.STICKER:
        return MediaKind.IMAGE  # a WebP photo is sent as an image unless a sticker was asked for
    if kind is None and mime.startswith("image/"):
        return MediaKind.IMAGE  # convertible
    return kind


def _open_image(upload: Upload, mime: str) -> Image.Image:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        upload.file.seek(0)
        image = Image.open(upload.file)
        image.load()  # Pillow refuses decompression bombs here (MAX_IMAGE_PIXELS)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        raise _refuse(f"This {mime} image cannot be read: {type(exc).__name__}.", "MEDIA_TYPE_UNSUPPORTED",
                      mime_type=mime) from None
    return ImageOps.exif_transpose(image)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _image(upload: Upload, mime: str) -> PreparedFile:
    limit = RULES[MediaKind.IMAGE].max_bytes
    if mime in RULES[MediaKind.IMAGE].mime_types and upload.size <= limit:
        return PreparedFile(MediaKind.IMAGE, mime, upload, mime, False)
    if not mime.startswith("image/"):
        raise _refuse(f"An image must be JPEG or PNG; this file is {mime}.", "MEDIA_TYPE_UNSUPPORTED", mime_type=mime)
    image = _open_image(upload, mime)
    fmt = "PNG" if _has_alpha(image) else "JPEG"
    scale = 1.0
    for _ in range(12):
        out = _encode(image, fmt, scale)
        if len(out) <= limit:
            return PreparedFile(MediaKind.IMAGE, f"image/{fmt.lower()}", Upload.of(out), mime, True)
        if fmt == "PNG" and scale < 0.5:
            fmt = "JPEG"  # a huge transparent image: flatten rather than shrink to a thumbnail
        scale *= min(0.9, (limit / len(out)) ** 0.5 * 0.95)
    raise _refuse("This image could not be brought under 5 MB.", "MEDIA_TOO_LARGE")


def _encode(image: Image.Image, fmt: str, scale: float) -> bytes:
    from PIL import Image

    frame = image
    if scale < 1.0:
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        frame = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if fmt == "JPEG":
        if _has_alpha(frame) or frame.mode not in ("RGB", "L"):
            rgba = frame.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            frame = flat
        frame.save(buffer, "JPEG", quality=85, optimize=True)
    else:
        frame.convert("RGBA" if _has_alpha(frame) else "RGB").save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _sticker(upload: Upload, mime: str) -> PreparedFile:
    if mime == "image/webp":
        animated = b"ANIM" in upload.head[:256]
        limit = RULES[MediaKind.STICKER].max_bytes if animated else STATIC_STICKER_MAX_BYTES
        if upload.size <= limit:
            return PreparedFile(MediaKind.STICKER, mime, upload, mime, False)
        if animated:
            raise _refuse("An animated sticker may be at most 500 KB.", "MEDIA_TOO_LARGE", size=upload.size)
    if not mime.startswith("image/"):
        raise _refuse(f"A sticker must be a WebP image; this file is {mime}.", "MEDIA_TYPE_UNSUPPORTED", mime_type=mime)
    from PIL import Image

    image = _open_image(upload, mime).convert("RGBA")
    image.thumbnail((STICKER_SIZE, STICKER_SIZE), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (STICKER_SIZE, STICKER_SIZE), (0, 0, 0, 0))
    canvas.paste(image, ((STICKER_SIZE - image.width) // 2, (STICKER_SIZE - image.height) // 2))
    for quality in (80, 60, 40, 20):
        buffer = io.BytesIO()
        canvas.save(buffer, "WEBP", quality=quality)
        if buffer.tell() <= STATIC_STICKER_MAX_BYTES:
            return PreparedFile(MediaKind.STICKER, "image/webp", Upload.of(buffer.getvalue()), mime, True)
    raise _refuse(f"This image could not be made into a sticker under {STATIC_STICKER_MAX_BYTES // KB} KB.",
                  "MEDIA_TOO_LARGE")


class OutboundMediaService:
    """Uploads from agents and integrations, and the per-number Meta media ids.

    The bytes go to the media store (``app.domains.media``), under the same id as the
    OutboundMedia document, so ``content.id``, the message's ``media.stored_file_id`` and
    ``GET /media/{id}`` all name one file.
    """

    def __init__(self, store: MediaStore) -> None:
        self.store = store

    async def store_upload(self, workspace_id: PydanticObjectId, data: bytes | Upload, filename: str | None,
                           requested_kind: str | None = None) -> OutboundMedia:
        """Check, convert if needed and store the file (once per workspace); an Upload is read, not closed."""
        prepared = await asyncio.to_thread(prepare, data, requested_kind)
        upload = prepared.upload
        sha = upload.sha256
        existing = await self._find(workspace_id, sha, prepared.kind.value)
        if existing is not None:
            return existing
        name = (filename or "").strip()[:240] or None
        if name and prepared.converted:
            name = f"{name.rsplit('.', 1)[0]}.{prepared.mime_type.split('/')[1]}"
        stored = await self.store.put(workspace_id, upload.file, sha256=sha, kind=prepared.kind.value,
                                      content_type=prepared.mime_type, filename=name or "")
        media = OutboundMedia(id=stored.id, workspace_id=workspace_id, sha256=sha, kind=prepared.kind.value,
                              mime_type=prepared.mime_type, size=upload.size, filename=name,
                              original_mime=prepared.original_mime, converted=prepared.converted)
        try:
            return await media.insert()
        except DuplicateKeyError:  # the same file uploaded twice at once
            found = await self._find(workspace_id, sha, prepared.kind.value)
            assert found is not None
            return found

    async def _find(self, workspace_id: PydanticObjectId, sha: str, kind: str) -> OutboundMedia | None:
        return await OutboundMedia.find_one_scoped(workspace_id, OutboundMedia.sha256 == sha, OutboundMedia.kind == kind)

    async def get(self, workspace_id: PydanticObjectId, media_id: str) -> OutboundMedia:
        return await OutboundMedia.get_scoped(workspace_id, media_id)

    async def read(self, media: OutboundMedia) -> bytes:
        return await self.store.read(await self.store.get(media.workspace_id, str(media.id)))

    async def remember_meta_id(self, media: OutboundMedia, account_id: PydanticObjectId | str, meta_id: str) -> None:
        upload = MetaUpload(media_id=meta_id, expires_at=utcnow() + META_ID_LIFETIME)
        media.meta_ids[str(account_id)] = upload
        await OutboundMedia.find_one(OutboundMedia.id == media.id).update(
            {"$set": {f"meta_ids.{account_id}": upload.model_dump()}})
