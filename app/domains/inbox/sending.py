"""The inbox's door to the one send path (validate -> queued -> send -> accepted / failed).

Until the outbound area's outbox lands this module carries the smallest version of it: validate
with the WhatsApp payload builders and the 24-h rule, insert the message as ``queued`` (so the
composer never waits), then send in a background task and publish each change live.
"""

from __future__ import annotations

import asyncio
from typing import Any

from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact
from app.domains.conversations.actions import preview_of, sync_preview_status
from app.domains.conversations.models import Conversation
from app.domains.conversations.services import ConversationService
from app.domains.messages.models import Message, MessageError, MessageStatus, Reaction
from app.domains.messages.status import advance_status, apply_pending_statuses
from app.errors import ValidationFailed
from app.logging import get_logger
from app.runtime import Runtime
from app.whatsapp.errors import GraphError
from app.whatsapp.payloads import build_message

log = get_logger(__name__)
_background: set[asyncio.Task] = set()


def preview_text(type_: str, content: dict[str, Any]) -> str:
    if type_ == "text":
        return str(content.get("body") or "")
    if type_ in ("image", "video", "document", "audio", "sticker"):
        return str(content.get("caption") or "")
    if type_ == "interactive":
        body = content.get("body") or {}
        return str(body.get("text") or "") if isinstance(body, dict) else ""
    if type_ == "template":
        return f"Template: {content.get('name', '')}"
    return ""


class InboxSender:
    """Uses ``runtime.outbox`` (the outbound area's OutboxService) when the runtime has one."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.outbox = getattr(runtime, "outbox", None)

    async def send(self, conversation: Conversation, type_: str, content: dict[str, Any], *,
                   sent_by: PydanticObjectId | None, reply_to: Message | None = None) -> Message:
        """Validate, store as queued, publish, and send without making the agent wait."""
        if self.outbox is not None:
            from app.domains.messages.outbox import Draft

            return await self.outbox.send(conversation.workspace_id, conversation,
                                          Draft(type_, content, str(reply_to.id) if reply_to else None),
                                          sent_by=sent_by, via="inbox")
        if type_ != "template" and not conversation.window_open():
            raise ValidationFailed("The 24-hour window is closed: only a template can be sent now.",
                                   error_code="WINDOW_CLOSED", details={"window_expires_at": str(conversation.window_expires_at)})
        contact = await Contact.get_scoped(conversation.workspace_id, conversation.contact_id)
        if not contact.wa_id:
            raise ValidationFailed("This contact has no WhatsApp number to send to.", error_code="NO_WA_ID",
                                   details={"contact_id": str(contact.id)})
        try:
            build_message(contact.wa_id, type_, content, reply_to.wamid if reply_to and reply_to.wamid else None)
        except ValueError as exc:  # PayloadError names the field
            raise ValidationFailed(str(exc), error_code="INVALID_MESSAGE", details={"content": str(exc)}) from None
        now = utcnow()
        message = Message(workspace_id=conversation.workspace_id, conversation_id=conversation.id,
                          account_id=conversation.account_id, contact_id=conversation.contact_id,
                          direction="outbound", type=type_, content=content, status=MessageStatus.QUEUED,
                          status_at={"queued": now}, sent_by=sent_by, via="inbox", timestamp=now, updated_at=now,
                          reply_to_id=reply_to.id if reply_to else None,
                          reply_to_wamid=reply_to.wamid if reply_to else None)
        await message.insert()
        await ConversationService().record_outbound(conversation, now, preview_of(message, preview_text(type_, content)))
        await self._publish(message, created=True)
        self._spawn(self._deliver(message.id))
        return message

    async def retry(self, message: Message) -> Message:
        """A failed message goes out again as a new attempt (same message, back to queued)."""
        if self.outbox is not None:
            return await self.outbox.retry(message.workspace_id, str(message.id))
        if message.direction != "outbound" or message.status is not MessageStatus.FAILED:
            raise ValidationFailed("Only failed messages can be retried.", error_code="NOT_FAILED",
                                   details={"status": message.status.value})
        now = utcnow()
        await Message.get_motor_collection().update_one(
            {"_id": message.id, "status": MessageStatus.FAILED.value},
            {"$set": {"status": MessageStatus.QUEUED.value, "error": None, "wamid": None, "updated_at": now,
                      "status_at": {"queued": now}}, "$inc": {"attempts": 1}})
        message.status, message.error, message.wamid = MessageStatus.QUEUED, None, None
        await sync_preview_status(message)
        await self._publish(message)
        self._spawn(self._deliver(message.id))
        return message

    async def react(self, message: Message, emoji: str, *, by: PydanticObjectId | None) -> Message:
        """An agent reaction: sent to WhatsApp as a reaction message and shown as a chip at once."""
        conversation = await Conversation.get_scoped(message.workspace_id, message.conversation_id)
        if not message.wamid:
            raise ValidationFailed("This message cannot be reacted to yet.", error_code="NO_WAMID",
                                   details={"message_id": str(message.id)})
        reactions = [r for r in message.reactions if not (r.by == "agent" and r.user_id == by)]
        if emoji:
            reactions.append(Reaction(by="agent", emoji=emoji, user_id=by))
        await Message.get_motor_collection().update_one(
            {"_id": message.id}, {"$set": {"reactions": [r.model_dump() for r in reactions], "updated_at": utcnow()}})
        message.reactions = reactions
        await self._publish(message)
        if conversation.window_open():  # outside the window WhatsApp refuses it: the chip stays ours only
            await self.send(conversation, "reaction", {"message_id": message.wamid, "emoji": emoji}, sent_by=by)
        return message

    async def mark_read(self, conversation: Conversation) -> None:
        """Tell WhatsApp the customer's newest message was read (blue ticks on their phone)."""
        if self.outbox is not None:
            await self.outbox.mark_conversation_read(conversation)
            return
        newest = await Message.find(Message.workspace_id == conversation.workspace_id,
                                    Message.conversation_id == conversation.id, Message.direction == "inbound",
                                    ).sort([("_id", -1)]).limit(1).to_list()
        if not newest or not newest[0].wamid:
            return
        self._spawn(self._mark_read(conversation.account_id, newest[0].wamid, conversation.workspace_id))

    # --- background ----------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _deliver(self, message_id: PydanticObjectId) -> None:
        message = await Message.get(message_id)
        if message is None or message.status is not MessageStatus.QUEUED:
            return
        try:
            account = await WhatsAppAccount.get_scoped(message.workspace_id, message.account_id)
            contact = await Contact.get_scoped(message.workspace_id, message.contact_id)
            body = build_message(contact.wa_id, message.type, message.content, message.reply_to_wamid)
            result = await self.runtime.accounts.graph(account).send(account.phone_number_id, body)
        except GraphError as exc:
            await advance_status(message, MessageStatus.FAILED, utcnow(), MessageError(
                code=exc.code, title=exc.title or "", detail=exc.details or "", agent_message=exc.agent_message))
        except Exception as exc:  # never leave a message queued forever without a reason
            log.warning("send failed", message_id=str(message_id), error=type(exc).__name__)
            await advance_status(message, MessageStatus.FAILED, utcnow(), MessageError(
                title=type(exc).__name__, agent_message="The message could not be sent. Try again."))
        else:
            await Message.get_motor_collection().update_one(
                {"_id": message.id}, {"$set": {"wamid": result.wamid, "updated_at": utcnow()}})
            message.wamid = result.wamid
            await advance_status(message, MessageStatus.ACCEPTED, utcnow())
            await apply_pending_statuses(message)
        await sync_preview_status(message)
        await self._publish(message)

    async def _mark_read(self, account_id: PydanticObjectId, wamid: str, workspace_id: PydanticObjectId) -> None:
        try:
            account = await WhatsAppAccount.get_scoped(workspace_id, account_id)
            await self.runtime.accounts.graph(account).mark_read(account.phone_number_id, wamid)
        except Exception as exc:  # a missed read receipt is cosmetic for the customer
            log.info("mark-as-read failed", error=type(exc).__name__)

    async def _publish(self, message: Message, created: bool = False) -> None:
        await self.runtime.live.publish(message.workspace_id, "message.created" if created else "message.updated",
                                        conversation_id=str(message.conversation_id), message_id=str(message.id))
