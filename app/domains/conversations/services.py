"""Conversations: open or reopen per (number, contact); the 24-h window and unread counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from beanie.operators import In
from bson import ObjectId
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from app.db import as_utc, parse_object_id, utcnow
from app.domains.access.scope import Scope, scope_of
from app.domains.contacts.models import Contact, holding, identity_of_customer
from app.domains.conversations.models import SERVICE_WINDOW, Conversation, ConversationStatus, MessagePreview
from app.domains.messages.models import Message, MessageStatus
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

    async def open_many(self, workspace_id: PydanticObjectId, account_id: PydanticObjectId,
                        contact_ids: Sequence[PydanticObjectId], *,
                        status_if_new: ConversationStatus = ConversationStatus.OPEN,
                        previews: dict[PydanticObjectId, tuple[datetime, MessagePreview]] | None = None
                        ) -> dict[PydanticObjectId, tuple[Conversation, bool]]:
        """``open_for(reopen=False)`` of many contacts on one number (a broadcast's batch): per contact, its
        conversation and whether it was created now; one bulk upsert and one read, whatever their number.
        ``previews``: per contact, the message a new conversation starts with (its activity and preview: the
        new ones need no ``record_outbound``)."""
        if not contact_ids:
            return {}
        now = utcnow()
        collection = Conversation.get_motor_collection()
        new_ids = {contact_id: ObjectId() for contact_id in contact_ids}

        def created(contact_id: PydanticObjectId) -> dict[str, Any]:
            fields = {"_id": new_ids[contact_id], "status": status_if_new.value, "labels": [], "unread_count": 0,
                      "created_at": now, "updated_at": now}
            if previews and contact_id in previews:
                at, preview = previews[contact_id]
                fields.update(last_message_at=at, last_message=preview.model_dump())
            return fields

        upserts = [UpdateOne({"workspace_id": workspace_id, "account_id": account_id, "contact_id": contact_id},
                             {"$setOnInsert": created(contact_id)}, upsert=True) for contact_id in contact_ids]
        try:
            await collection.bulk_write(upserts, ordered=False)
        except BulkWriteError as exc:  # created meanwhile by ingestion (the unique index): read below
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
        found = await Conversation.find({"workspace_id": workspace_id, "account_id": account_id,
                                         "contact_id": {"$in": list(contact_ids)}}).to_list()
        return {c.contact_id: (c, c.id == new_ids.get(c.contact_id)) for c in found}

    async def record_inbound(self, conversation: Conversation, at: datetime, preview: MessagePreview | None,
                             *, unread: bool = True, reopen: bool = False) -> bool:
        """A customer wrote: move the window (from their newest message only), count unread, bump activity,
        show the message as the last one if it is the newest, and (``reopen``) open a resolved or snoozed
        conversation again. One update: every expression reads the document as it was before it.

        ``unread=False`` for activity that is not a new message to read (a reaction) or that was
        already counted once (ingestion re-run after a crash). Returns whether it reopened the conversation.
        """
        changes: dict = {
            "unread_count": {"$add": [{"$ifNull": ["$unread_count", 0]}, 1 if unread else 0]},
            "last_inbound_at": {"$max": [{"$ifNull": ["$last_inbound_at", at]}, at]},
            "window_expires_at": {"$max": [{"$ifNull": ["$window_expires_at", at + SERVICE_WINDOW]}, at + SERVICE_WINDOW]},
            **_activity(at, preview),
        }
        collection = Conversation.get_motor_collection()
        closed_states = [ConversationStatus.RESOLVED.value, ConversationStatus.SNOOZED.value]
        closed = {"$in": ["$status", closed_states]}
        if unread:  # a new message: the customer waits for an answer from it, unless they already were
            starts = {"$or": [closed, {"$eq": [{"$ifNull": ["$last_reply_at", None]}, None]}]} if reopen else \
                {"$eq": [{"$ifNull": ["$last_reply_at", None]}, None]}
            changes["awaiting_first"] = {"$cond": [{"$eq": [{"$ifNull": ["$awaiting_since", None]}, None]},
                                                   starts, {"$ifNull": ["$awaiting_first", False]}]}
            changes["awaiting_since"] = {"$ifNull": ["$awaiting_since", at]}
        if reopen:
            changes["status"] = {"$cond": [closed, ConversationStatus.OPEN.value, "$status"]}
            changes["snoozed_until"] = {"$cond": [closed, None, "$snoozed_until"]}
            resolved = {"$eq": ["$status", ConversationStatus.RESOLVED.value]}  # (a snooze ending is no new start)
            changes["opened_at"] = {"$cond": [resolved, utcnow(), {"$ifNull": ["$opened_at", None]}]}
        before = await collection.find_one_and_update(  # the document as it was
            {"_id": conversation.id}, [{"$set": changes}], projection={"status": 1, "last_message": 1, "last_message_at": 1})
        if unread and before is not None:
            await _answer_to_template(before, at)
        return reopen and before is not None and before.get("status") in closed_states

    async def record_outbound(self, conversation: Conversation, at: datetime, preview: MessagePreview, *,
                              reply: Message | None = None) -> None:
        """We wrote: bump activity and show it as the last message if it is the newest (our messages
        never extend the service window). One update (and one more on an answer to a waiting customer).

        ``reply``: the message is a person's answer (an agent in the inbox, the API, the WhatsApp Business
        app; not a broadcast or a workflow): it ends the customer's wait, and when they were waiting the
        message keeps ``response`` = {"since": when they started waiting, "first": their first wait since the
        conversation was started or reopened} (what the reports' response times are made of)."""
        collection = Conversation.get_motor_collection()
        if reply is None:
            await collection.update_one({"_id": conversation.id}, [{"$set": _activity(at, preview)}])
            return
        before = await collection.find_one_and_update(
            {"_id": conversation.id},
            [{"$set": {**_activity(at, preview), "awaiting_since": None, "awaiting_first": False,
                       "last_reply_at": at}}],
            projection={"awaiting_since": 1, "awaiting_first": 1})
        since = before.get("awaiting_since") if before else None
        if since is not None:
            response = {"since": since, "first": bool(before.get("awaiting_first"))}
            await Message.get_motor_collection().update_one({"_id": reply.id},
                                                            {"$set": {"response": response, "updated_at": utcnow()}})

    async def record_outbound_many(self, messages: Sequence[tuple[Conversation, datetime, MessagePreview]]) -> None:
        """``record_outbound`` of many conversations, in one bulk write."""
        if messages:
            await Conversation.get_motor_collection().bulk_write(
                [UpdateOne({"_id": conversation.id}, [{"$set": _activity(at, preview)}])
                 for conversation, at, preview in messages], ordered=False)

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


def internal_line(conversation: Conversation, type_: str, content: dict[str, Any], *,
                  by: PydanticObjectId | None = None, idempotency_key: str | None = None) -> Message:
    """A line of the thread that is no message to or from the customer: a note, or an event (assigned,
    resolved, reopened ...: ``content["kind"]``), timed now. Not stored yet."""
    now = utcnow()
    return Message(workspace_id=conversation.workspace_id, conversation_id=conversation.id,
                   account_id=conversation.account_id, contact_id=conversation.contact_id, direction="internal",
                   type=type_, content=content, status=MessageStatus.DELIVERED, sent_by=by, via="inbox",
                   timestamp=now, updated_at=now, idempotency_key=idempotency_key)


TEMPLATE_REPLY_WITHIN = timedelta(hours=24)
"""A customer's message answers our template when it is the next message after it, within this long (the reports'
replies per template)."""
_SENT = [s.value for s in (MessageStatus.ACCEPTED, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ,
                           MessageStatus.PLAYED)]


async def _answer_to_template(before: dict[str, Any], at: datetime) -> None:
    """The conversation's last message, before the customer's new one, was our template, sent within
    TEMPLATE_REPLY_WITHIN: the template is marked ``replied_at`` (once; its hour is counted again by the reports).
    Read from the conversation as it was before the customer's message (no read of its own): one write, only for
    the first answer to a template."""
    last = before.get("last_message") or {}
    sent_at = before.get("last_message_at")
    if (last.get("direction") != "outbound" or last.get("type") != "template" or last.get("message_id") is None
            or sent_at is None
            # (Meta's timestamps are whole seconds, ours are not: an answer in the same second counts)
            or not as_utc(at) - TEMPLATE_REPLY_WITHIN <= as_utc(sent_at) < as_utc(at) + timedelta(seconds=1)):
        return
    await Message.get_motor_collection().update_one(
        {"_id": last["message_id"], "type": "template", "replied_at": None, "status": {"$in": _SENT}},
        {"$set": {"replied_at": at, "updated_at": utcnow()}})


def _activity(at: datetime, preview: MessagePreview | None) -> dict:
    """Pipeline-update fields for a message at ``at``: the latest activity, and the preview when it is
    the newest message (compared with the activity before this update)."""
    fields: dict = {"last_message_at": {"$max": [{"$ifNull": ["$last_message_at", at]}, at]}, "updated_at": utcnow()}
    if preview is not None:
        newest = {"$lte": [{"$ifNull": ["$last_message_at", at]}, at]}
        # $literal: a customer's text may start with "$", which an expression would read as a field path.
        fields["last_message"] = {"$cond": [newest, {"$literal": preview.model_dump()}, "$last_message"]}
    return fields
