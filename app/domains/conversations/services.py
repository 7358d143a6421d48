"""Conversations: open or reopen per (number, contact); the 24-h window and unread counts."""

from __future__ import annotations

from datetime import datetime

from beanie import PydanticObjectId
from bson import ObjectId
from beanie.operators import In
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import utcnow
from app.domains.contacts.models import Contact
from app.domains.conversations.models import SERVICE_WINDOW, Conversation, ConversationStatus, MessagePreview
from app.pagination import DEFAULT_LIMIT, Page, paginate


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
        new_id = ObjectId()  # ours on insert: created exactly when the document comes back with it
        raw = None
        for _ in range(2):
            try:
                raw = await collection.find_one_and_update(
                    query,
                    {"$setOnInsert": {**query, "_id": new_id, "status": ConversationStatus.OPEN.value, "labels": [],
                                      "unread_count": 0, "created_at": now, "updated_at": now}},
                    upsert=True, return_document=ReturnDocument.AFTER,
                )
                break
            except DuplicateKeyError:
                continue
        if raw is None:  # lost the race twice: the other upsert's conversation is there now
            raw = await collection.find_one(query)
        conversation = Conversation.model_validate(raw)
        created = conversation.id == new_id
        if reopen and not created and conversation.status in (ConversationStatus.RESOLVED, ConversationStatus.SNOOZED):
            conversation.status = ConversationStatus.OPEN
            conversation.snoozed_until = None
            conversation.updated_at = now
            await conversation.save()
        return conversation, created

    async def reopen(self, conversation: Conversation) -> bool:
        """Back to open when the customer writes to a resolved or snoozed conversation; True if it changed."""
        result = await Conversation.get_motor_collection().update_one(
            {"_id": conversation.id,
             "status": {"$in": [ConversationStatus.RESOLVED.value, ConversationStatus.SNOOZED.value]}},
            {"$set": {"status": ConversationStatus.OPEN.value, "snoozed_until": None, "updated_at": utcnow()}},
        )
        if result.modified_count:
            conversation.status = ConversationStatus.OPEN
            conversation.snoozed_until = None
        return bool(result.modified_count)

    async def record_inbound(self, conversation: Conversation, at: datetime, preview: MessagePreview | None,
                             *, unread: bool = True) -> None:
        """A customer wrote: move the window (from their newest message only), count unread, bump activity.

        ``unread=False`` for activity that is not a new message to read (a reaction) or that was
        already counted once (ingestion re-run after a crash).
        """
        await Conversation.get_motor_collection().update_one(
            {"_id": conversation.id},
            [{"$set": {
                "unread_count": {"$add": [{"$ifNull": ["$unread_count", 0]}, 1 if unread else 0]},
                "last_inbound_at": {"$max": [{"$ifNull": ["$last_inbound_at", at]}, at]},
                "window_expires_at": {"$max": [{"$ifNull": ["$window_expires_at", at + SERVICE_WINDOW]}, at + SERVICE_WINDOW]},
                "last_message_at": {"$max": [{"$ifNull": ["$last_message_at", at]}, at]},
                "updated_at": utcnow(),
            }}],
        )
        if preview is not None:
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

    async def page(self, workspace_id: PydanticObjectId, *, status: ConversationStatus | None = None,
                   account_id: PydanticObjectId | None = None, limit: int = DEFAULT_LIMIT,
                   cursor: str | None = None, assignee_id: PydanticObjectId | str | None = None,
                   team_id: PydanticObjectId | None = None, label: str | None = None,
                   updated_since: datetime | None = None) -> Page[Conversation]:
        """The workspace's conversations, latest activity first, filtered by status and number
        (and, for the API, by assignee ("none": unassigned), team, label id and last change)."""
        filters: list = []
        if status is not None:
            filters.append(Conversation.status == status)
        if account_id is not None:
            filters.append(Conversation.account_id == account_id)
        if assignee_id is not None:
            filters.append(Conversation.assignee_id == (None if assignee_id == "none" else assignee_id))
        if team_id is not None:
            filters.append(Conversation.team_id == team_id)
        if label is not None:
            filters.append({"labels": label})
        if updated_since is not None:
            filters.append(Conversation.updated_at >= updated_since)
        return await paginate(Conversation.scoped(workspace_id, *filters), "conversations",
                              field="last_message_at", limit=limit, cursor=cursor)

    async def contacts_of(self, workspace_id: PydanticObjectId,
                          conversations: list[Conversation]) -> dict[PydanticObjectId, Contact]:
        """The contacts of a page of conversations, in one query."""
        ids = list({c.contact_id for c in conversations})
        if not ids:
            return {}
        return {c.id: c for c in await Contact.scoped(workspace_id, In(Contact.id, ids)).to_list()}
