"""The inbox's door to the one send path: the outbound area's OutboxService (``runtime.outbox``).

Sends, retries and read receipts go through it unchanged; the inbox adds only what is about the
screen: an agent's reaction shows as a chip on the message at once.
"""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message, Reaction
from app.domains.outbox.service import Draft
from app.errors import ValidationFailed
from app.runtime import Runtime


class InboxSender:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.outbox = runtime.outbox

    async def send(self, conversation: Conversation, type_: str, content: dict[str, Any], *,
                   sent_by: PydanticObjectId | None, reply_to: Message | None = None) -> Message:
        """Validated, stored as queued and queued; returns at once (the live feed advances it)."""
        return await self.outbox.send(conversation.workspace_id, conversation,
                                      Draft(type_, content, str(reply_to.id) if reply_to else None),
                                      sent_by=sent_by, via="inbox")

    async def retry(self, message: Message) -> Message:
        return await self.outbox.retry(message.workspace_id, str(message.id))

    async def react(self, message: Message, emoji: str, *, by: PydanticObjectId | None) -> Message:
        """Shown as the agent's chip at once; sent to WhatsApp while the window is open."""
        if not message.wamid or message.direction == "internal":
            raise ValidationFailed("This message cannot be reacted to.", error_code="NO_WAMID",
                                   details={"message_id": str(message.id)})
        conversation = await Conversation.get_scoped(message.workspace_id, message.conversation_id)
        if conversation.window_open():  # WhatsApp refuses reactions outside the window
            await self.send(conversation, "reaction", {"message_id": message.wamid, "emoji": emoji}, sent_by=by)
        reactions = [r for r in message.reactions if not (r.by == "agent" and r.user_id == by)]
        if emoji:
            reactions.append(Reaction(by="agent", emoji=emoji, user_id=by))
        await Message.get_motor_collection().update_one(
            {"_id": message.id}, {"$set": {"reactions": [r.model_dump() for r in reactions], "updated_at": utcnow()}})
        message.reactions = reactions
        await self.runtime.live.publish(message.workspace_id, "message.updated", conversation_id=str(conversation.id),
                                        message_id=str(message.id))
        return message

    async def mark_read(self, conversation: Conversation) -> None:
        """Unread back to 0 and one read receipt to WhatsApp for the newest inbound message."""
        await self.outbox.mark_conversation_read(conversation)
