"""A file the agent attached (picked, dropped or pasted): checked, stored, sent as its media kind."""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from app.domains.conversations.models import Conversation
from app.domains.inbox.service import InboxService
from app.domains.messages.models import Message
from app.domains.outbox.media import Upload
from app.errors import PayloadTooLarge, ValidationFailed
from app.runtime import Runtime

CAPTIONED = ("image", "video", "document")
MAX_UPLOAD = 100 * 1024 * 1024


def file_too_large() -> PayloadTooLarge:
    """Also answered while the file arrives, as soon as it passes MAX_UPLOAD (the rest is not read)."""
    return PayloadTooLarge("Files are at most 100 MB.", error_code="FILE_TOO_LARGE",
                           details={"limit": f"{MAX_UPLOAD // (1024 * 1024)} MB"})


async def send_attachment(runtime: Runtime, conversation: Conversation, data: bytes | Upload, mime_type: str,
                          filename: str, caption: str, *, sent_by: PydanticObjectId | None) -> Message:
    """``data``: the bytes, or the file as received (composer.py streams it into a temporary file)."""
    size = data.size if isinstance(data, Upload) else len(data)
    if not size:
        raise ValidationFailed("The file is empty.", error_code="EMPTY_FILE", details={"file": filename[:100]})
    if size > MAX_UPLOAD:
        raise file_too_large()
    # The outbound area sniffs the real type, converts what can be fixed and uploads once per number.
    service = runtime.outbox.media
    store_upload = getattr(service, "store_upload", None) or service.store
    media = await store_upload(conversation.workspace_id, data, filename)
    kind = media.kind
    content: dict[str, Any] = {"id": str(media.id)}
    if caption and kind in CAPTIONED:
        content["caption"] = caption[:1024]
    if kind == "document":
        content["filename"] = filename[:240] or "document"
    return await InboxService(runtime).send(conversation, kind, content, sent_by=sent_by)

