"""Conversations: open or reopen per (number, contact); the 24-h window and unread counts."""

from __future__ import annotations

from datetime import datetime

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import utcnow
from app.domains.conversations.models import SERVICE_WINDOW, Conversation, ConversationStatus, MessagePreview


class ConversationService:
    async def open_for(self, workspace_id: PydanticObjectId, account_id: PydanticObjectId,
                       contact_id: PydanticObjectId, *, reopen: bool = True) -> tuple[Conversation, bool]:
        """The conversation of (number, contact), created if new, reopened if resolved or snoozed.

        Returns (conversation, created). Atomic on the unique index, so concurrent ingestion of
        the same customer yields one conversation.
        """
        now = utcnow()
        query = {"workspace_id": workspace_id, "account_id": account_id, "contact_id": contact_id}
        collection = Conversation.get_motor_collection()
        before = None
        for _ in range(2):
            try:
                before = await collection.find_one_and_update(
                    query,
                    {"$setOnInsert": {**query, "status": ConversationStatus.OPEN.value, "labels": [], "unread_count": 0,
                                      "created_at": now, "updated_at": now}},
                    upsert=True, return_document=ReturnDocument.BEFORE,
                )
                break
            except DuplicateKeyError:
                continue
        conversation = await Conversation.find_one(query)
        if reopen and before is not None and conversation.status in (ConversationStatus.RESOLVED, ConversationStatus.SNOOZED):
            conversation.status = ConversationStatus.OPEN
            conversation.snoozed_until = None
            conversation.updated_at = now
            await conversation.save()
        return conversation, before is None

    async def record_inbound(self, conversation: Conversation, at: datetime, preview: MessagePreview) -> None:
        """A customer wrote: move the window (from their newest message only), count unread, bump activity."""
        await Conversation.get_motor_collection().update_one(
            {"_id": conversation.id},
            [{"$set": {
                "unread_count": {"$add": [{"$ifNull": ["$unread_count", 0]}, 1]},
                "last_inbound_at": {"$max": [{"$ifNull": ["$last_inbound_at", at]}, at]},
                "window_expires_at": {"$max": [{"$ifNull": ["$window_expires_at", at + SERVICE_WINDOW]}, at + SERVICE_WINDOW]},
                "last_message_at": {"$max": [{"$ifNull": ["$last_message_at", at]}, at]},
                "updated_at": utcnow(),
            }}],
        )
        await self._set_preview_if_newest(conversation.id, at, preview)

    async def record_outbound(self, conversation: Conversation, at: datetime, preview: MessagePreview) -> None:
        """We wrote: bump activity (our messages never extend the service window)."""
        await Conversation.get_motor_collection().update_one(
            {"_id": conversation.id},
            [{"$set": {"last_message_at": {"$max": [{"$ifNull": ["$last_message_at", at]}, at]}, "updated_at": utcnow()}}],
        )
        await self._set_preview_if_newest(conversation.id, at, preview)

    async def mark_read(self, conversation: Conversation) -> None:
        await Conversation.find_one(Conversation.id == conversation.id).update({"$set": {"unread_count": 0}})
        conversation.unread_count = 0

    async def _set_preview_if_newest(self, conversation_id: PydanticObjectId, at: datetime, preview: MessagePreview) -> None:
        await Conversation.get_motor_collection().update_one(
            {"_id": conversation_id, "last_message_at": {"$lte": at}},
            {"$set": {"last_message": preview.model_dump()}},
        )
