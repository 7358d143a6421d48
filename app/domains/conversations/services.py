"""Conversations: open or reopen per (number, contact); the 24-h window and unread counts."""

from __future__ import annotations

from datetime import datetime

from beanie import PydanticObjectId
from beanie.operators import In
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import parse_object_id, utcnow
from app.domains.access.scope import Scope, scope_of
from app.domains.contacts.models import Contact, holding, identity_of_customer
from app.domains.conversations.models import SERVICE_WINDOW, Conversation, ConversationStatus, MessagePreview
from app.errors import NotFound
from app.pagination import DEFAULT_LIMIT, Page, paginate

CONVERSATION_LISTING = "conversations"
"""The cursor listing of conversations by latest activity (last_message_at, _id), newest first:
the API's list and the inbox's list page the same order, so their cursors are interchangeable."""


class ConversationService:
    async def with_contact(self, who: PydanticObjectId | Scope, conversation_id: str | PydanticObjectId | None
                           ) -> tuple[Conversation, Contact | None]:
        """A conversation of this workspace that ``who`` sees (NotFound otherwise: access/scope.py) and its
        contact, in one database operation (every send needs both: the window and the recipient)."""
        scope = scope_of(who)
        workspace_id = scope.workspace_id
        oid = parse_object_id(conversation_id)
        raw = None
        if oid is not None:
            found = await Conversation.get_motor_collection().aggregate([
                {"$match": scope.restrict({"_id": oid, "workspace_id": workspace_id})},
                {"$limit": 1},
                {"$lookup": {"from": Contact.get_collection_name(), "localField": "contact_id",
                             "foreignField": "_id", "as": "_contact"}},
            ]).to_list(1)
            raw = found[0] if found else None
        if raw is None:
            raise NotFound("conversation not found", details={"id": str(conversation_id)})
        contacts = raw.pop("_contact", [])
        contact = Contact.model_validate(contacts[0]) if contacts else None
        if contact is not None and contact.workspace_id != workspace_id:
            contact = None
        return Conversation.model_validate(raw), contact

    async def open_for(self, workspace_id: PydanticObjectId, account_id: PydanticObjectId,
                       contact_id: PydanticObjectId, *, reopen: bool = True,
                       status_if_new: ConversationStatus = ConversationStatus.OPEN) -> tuple[Conversation, bool]:
        """The conversation of (number, contact), created if new (``status_if_new``: a broadcast's recipient's
        is created resolved, so it shows when they answer), reopened if resolved or snoozed.

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
                    {"$setOnInsert": {**query, "_id": new_id, "status": status_if_new.value, "labels": [],
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

    async def record_inbound(self, conversation: Conversation, at: datetime, preview: MessagePreview | None,
                             *, unread: bool = True, reopen: bool = False) -> None:
        """A customer wrote: move the window (from their newest message only), count unread, bump activity,
        show the message as the last one if it is the newest, and (``reopen``) open a resolved or snoozed
        conversation again. One update: every expression reads the document as it was before it.

        ``unread=False`` for activity that is not a new message to read (a reaction) or that was
        already counted once (ingestion re-run after a crash).
        """
        changes: dict = {
            "unread_count": {"$add": [{"$ifNull": ["$unread_count", 0]}, 1 if unread else 0]},
            "last_inbound_at": {"$max": [{"$ifNull": ["$last_inbound_at", at]}, at]},
            "window_expires_at": {"$max": [{"$ifNull": ["$window_expires_at", at + SERVICE_WINDOW]}, at + SERVICE_WINDOW]},
            **_activity(at, preview),
        }
        if reopen:
            closed = {"$in": ["$status", [ConversationStatus.RESOLVED.value, ConversationStatus.SNOOZED.value]]}
            changes["status"] = {"$cond": [closed, ConversationStatus.OPEN.value, "$status"]}
            changes["snoozed_until"] = {"$cond": [closed, None, "$snoozed_until"]}
        await Conversation.get_motor_collection().update_one({"_id": conversation.id}, [{"$set": changes}])

    async def record_outbound(self, conversation: Conversation, at: datetime, preview: MessagePreview) -> None:
        """We wrote: bump activity and show it as the last message if it is the newest (our messages
        never extend the service window). One update."""
        await Conversation.get_motor_collection().update_one({"_id": conversation.id},
                                                             [{"$set": _activity(at, preview)}])

    async def mark_read(self, conversation: Conversation) -> None:
        await Conversation.find_one(Conversation.id == conversation.id).update({"$set": {"unread_count": 0}})
        conversation.unread_count = 0

    async def page(self, who: PydanticObjectId | Scope, *, status: ConversationStatus | None = None,
                   account_id: PydanticObjectId | None = None, limit: int = DEFAULT_LIMIT,
                   cursor: str | None = None, assignee_id: PydanticObjectId | str | None = None,
                   team_id: PydanticObjectId | None = None, label: str | None = None,
                   updated_since: datetime | None = None, contact_id: PydanticObjectId | None = None,
                   wa_id: str | None = None) -> Page[Conversation]:
        """The workspace's conversations, latest activity first, filtered by status and number
        (and, for the API, by assignee ("none": unassigned), team, label id, last change, and the
        customer: our contact id or their WhatsApp id); only what ``who`` sees (access/scope.py)."""
        scope = scope_of(who)
        workspace_id = scope.workspace_id
        filters: list = []
        if not scope.everything:
            filters.append(scope.conversation_filter())
        if wa_id is not None:
            contact = await Contact.find_one({"workspace_id": workspace_id, "$or": [
                holding(identity_of_customer(wa_id)), {"key": identity_of_customer(wa_id)}]})
            if contact is None:
                return Page(items=[], next_cursor=None)
            if contact_id is not None and contact_id != contact.id:
                return Page(items=[], next_cursor=None)
            contact_id = contact.id
        if contact_id is not None:
            filters.append(Conversation.contact_id == contact_id)
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
        return await paginate(Conversation.scoped(workspace_id, *filters), CONVERSATION_LISTING,
                              field="last_message_at", limit=limit, cursor=cursor)

    async def contacts_of(self, workspace_id: PydanticObjectId,
                          conversations: list[Conversation]) -> dict[PydanticObjectId, Contact]:
        """The contacts of a page of conversations, in one query."""
        ids = list({c.contact_id for c in conversations})
        if not ids:
            return {}
        return {c.id: c for c in await Contact.scoped(workspace_id, In(Contact.id, ids)).to_list()}


def _activity(at: datetime, preview: MessagePreview | None) -> dict:
    """Pipeline-update fields for a message at ``at``: the latest activity, and the preview when it is
    the newest message (compared with the activity before this update)."""
    fields: dict = {"last_message_at": {"$max": [{"$ifNull": ["$last_message_at", at]}, at]}, "updated_at": utcnow()}
    if preview is not None:
        newest = {"$lte": [{"$ifNull": ["$last_message_at", at]}, at]}
        # $literal: a customer's text may start with "$", which an expression would read as a field path.
        fields["last_message"] = {"$cond": [newest, {"$literal": preview.model_dump()}, "$last_message"]}
    return fields
