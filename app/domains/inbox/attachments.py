"""A file the agent attached (picked, dropped or pasted): checked, stored, sent as its media kind."""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from app.domains.conversations.models import Conversation
from app.domains.inbox.sending import InboxSender
from app.domains.messages.models import Message
from app.errors import PayloadTooLarge, ValidationFailed
from app.runtime import Runtime
from app.whatsapp.media import is_allowed, kind_for_mime, max_bytes

CAPTIONED = ("image", "video", "document")
MAX_UPLOAD = 100 * 1024 * 1024


async def send_attachment(runtime: Runtime, conversation: Conversation, data: bytes, mime_type: str, filename: str,
                          caption: str, *, sent_by: PydanticObjectId | None) -> Message:
    if not data:
        raise ValidationFailed("The file is empty.", error_code="EMPTY_FILE", details={"file": filename[:100]})
    if len(data) > MAX_UPLOAD:
        raise PayloadTooLarge("Files are at most 100 MB.", error_code="FILE_TOO_LARGE", details={"size": len(data)})
    outbox = getattr(runtime, "outbox", None)
    content: dict[str, Any]
    if outbox is not None:
        # The outbound area sniffs the real type, converts what can be fixed and uploads once per number.
        media = await outbox.media.store(conversation.workspace_id, data, filename)
        kind = media.kind
        content = {"id": str(media.id)}
    else:
        kind = kind_for_mime(mime_type) if mime_type else None
        if kind is None or not is_allowed(kind, mime_type):
            raise ValidationFailed("WhatsApp does not accept this kind of file: send JPEG/PNG images, MP4 video, "
                                   "AAC/MP3/OGG audio, or PDF/Office/text documents.", error_code="MEDIA_TYPE",
                                   details={"mime_type": mime_type[:100]})
        if len(data) > max_bytes(kind):
            raise PayloadTooLarge(f"This {kind} is over WhatsApp's limit.", error_code="FILE_TOO_LARGE",
                                  details={"size": len(data), "max": max_bytes(kind)})
        account = await _account(conversation)
        meta_id = await runtime.accounts.graph(account).upload_media(account.phone_number_id, data, mime_type, filename)
        content = {"id": meta_id}
        kind = str(kind)
    if caption and kind in CAPTIONED:
        content["caption"] = caption[:1024]
    if kind == "document":
        content["filename"] = filename[:240] or "document"
    return await InboxSender(runtime).send(conversation, kind, content, sent_by=sent_by)


async def _account(conversation: Conversation):
    from app.domains.accounts.models import WhatsAppAccount

    return await WhatsAppAccount.get_scoped(conversation.workspace_id, conversation.account_id)
