"""Contacts for the JSON API: search with a cursor, create, edit, export (one person's data) and erase (GDPR).

Edits go through ContactEditing (the inbox's side panel uses the same rules); creation through
ContactService.upsert (the webhook path's identity rules). Erasing removes the contact, their
conversations, messages, stored media files, the events we kept for integrations about them, and
the raw webhook bodies that carry their number, so nothing of theirs is left to leak.
"""

from __future__ import annotations

import re
from typing import Any

from beanie import PydanticObjectId
from beanie.operators import In

from app.domains.contacts.editing import ContactEditing
from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation
from app.domains.media.store import MediaStore
from app.domains.messages.models import Message
from app.domains.subscriptions.events import IntegrationEvents
from app.domains.subscriptions.models import Delivery, EventType, IntegrationEvent
from app.domains.webhooks.models import WebhookEvent
from app.errors import Conflict, ValidationFailed
from app.pagination import Page, paginate
from app.realtime import LiveEvents
from app.whatsapp.payloads import normalize_recipient
from app.whatsapp.validation import PayloadError

MAX_SEARCH = 100


def wa_id_of(phone: str) -> str:
    try:
        return normalize_recipient(phone)[1:]
    except PayloadError as exc:
        raise ValidationFailed(exc.message, error_code="PHONE_INVALID", details={"phone": exc.message}) from None


class ContactDirectory:
    def __init__(self, live: LiveEvents, integrations: IntegrationEvents) -> None:
        self.editing = ContactEditing(live)
        self.integrations = integrations
        self.contacts = ContactService()

    async def page(self, workspace_id: PydanticObjectId, *, search: str | None, tag: str | None, limit: int,
                   cursor: str | None) -> Page[Contact]:
        """Newest first by id: a contact created while a client pages never shifts what it has seen."""
        filters: list[Any] = []
        if search:
            if len(search) > MAX_SEARCH:
                raise ValidationFailed(f"Search at most {MAX_SEARCH} characters.", details={"q": "too long"},
                                       status_code=400)
            pattern = {"$regex": re.escape(search.strip()), "$options": "i"}
            digits = re.sub(r"\D", "", search)
            ors: list[dict[str, Any]] = [{"name": pattern}, {"profile_name": pattern}, {"username": pattern},
                                         {"user_id": search.strip()}]
            if digits:
                ors += [{"wa_id": {"$regex": re.escape(digits)}}, {"phone": {"$regex": re.escape(digits)}}]
            filters.append({"$or": ors})
        if tag:
            filters.append({"tags": tag})
        return await paginate(Contact.scoped(workspace_id, *filters), "contacts", field="_id", limit=limit,
                              cursor=cursor)

    async def get(self, workspace_id: PydanticObjectId, contact_id: str) -> Contact:
        return await Contact.get_scoped(workspace_id, contact_id)

    async def create(self, workspace_id: PydanticObjectId, phone: str, *, name: str = "",
                     attributes: dict[str, str] | None = None, tags: list[str] | None = None,
                     opted_out_marketing: bool = False) -> Contact:
        wa_id = wa_id_of(phone)
        existing = await self.contacts.find(workspace_id, wa_id=wa_id)
        if existing is not None:  # checked first: the upsert would touch the existing contact
            raise Conflict("A contact with this number exists already.", error_code="CONTACT_EXISTS",
                           details={"id": str(existing.id)})
        contact, created = await self.contacts.upsert(workspace_id, wa_id=wa_id)
        if not created:
            raise Conflict("A contact with this number exists already.", error_code="CONTACT_EXISTS",
                           details={"id": str(contact.id)})
        contact = await self.update(contact, name=name or None, attributes=attributes or None, tags=tags or None,
                                    opted_out_marketing=opted_out_marketing or None)
        await self.integrations.emit(workspace_id, EventType.CONTACT_CREATED, f"contact.created:{contact.id}",
                                     {"contact": _contact_json(contact)}, contact.created_at)
        return contact

    async def update(self, contact: Contact, *, name: str | None = None, attributes: dict[str, Any] | None = None,
                     tags: list[str] | None = None, opted_out_marketing: bool | None = None) -> Contact:
        if name is not None:
            contact = await self.editing.rename(contact, name)
        for key, value in (attributes or {}).items():
            if value is not None and not isinstance(value, str):
                raise ValidationFailed("Attribute values are text.", error_code="BAD_ATTRIBUTE", details={"key": key})
            contact = await self.editing.set_attribute(contact, key, value or "")
        if tags is not None:
            contact = await self.editing.set_tags(contact, tags)
        if opted_out_marketing is not None:
            contact = await self.editing.set_opt_out(contact, opted_out_marketing)
        return await Contact.get(contact.id) or contact  # as stored (each edit above saved its own part)

    async def export(self, contact: Contact) -> dict[str, Any]:
        """Everything we hold about one person (GDPR access request), as plain data."""
        conversations = await Conversation.scoped(contact.workspace_id, Conversation.contact_id == contact.id
                                                  ).sort("_id").to_list()
        messages = await Message.scoped(contact.workspace_id, Message.contact_id == contact.id).sort("_id").to_list()
        return {"contact": contact, "conversations": conversations, "messages": messages}

    async def erase(self, contact: Contact) -> dict[str, int]:
        """Delete the person and everything that carries their data; returns what was removed."""
        ws = contact.workspace_id
        messages = await Message.scoped(ws, Message.contact_id == contact.id).to_list()
        message_ids = [m.id for m in messages]
        media = MediaStore()
        stored_ids = {m.media.stored_file_id for m in messages if m.media and m.media.stored_file_id}
        file_ids = await media.file_ids_of_messages(ws, message_ids) | stored_ids
        await media.delete(ws, file_ids)
        conversations = await Conversation.scoped(ws, Conversation.contact_id == contact.id).to_list()
        removed = {"messages": len(messages), "media_files": len(file_ids), "conversations": len(conversations)}
        await Message.scoped(ws, Message.contact_id == contact.id).delete()
        await Conversation.scoped(ws, Conversation.contact_id == contact.id).delete()
        removed["events"] = await self._erase_events(ws, [str(contact.id), *(str(c.id) for c in conversations)])
        removed["webhook_bodies"] = await self._erase_raw_webhooks(ws, contact)
        await contact.delete()
        return removed

    async def _erase_events(self, ws: PydanticObjectId, ids: list[str]) -> int:
        """Integration events (and their delivery logs) whose body names the contact or their conversations."""
        pattern = "|".join(re.escape(i) for i in ids)
        events = await IntegrationEvent.find(IntegrationEvent.workspace_id == ws,
                                             {"body": {"$regex": pattern}}).to_list()
        if events:
            event_ids = [e.id for e in events]
            await Delivery.find(In(Delivery.event_id, event_ids)).delete()
            await IntegrationEvent.find(In(IntegrationEvent.id, event_ids)).delete()
        return len(events)

    async def _erase_raw_webhooks(self, ws: PydanticObjectId, contact: Contact) -> int:
        """Ingested raw webhook bodies that mention their number or WhatsApp user id (kept for debugging,
        not needed after)."""
        needles = [n.encode() for n in {contact.wa_id, *contact.previous_wa_ids, contact.user_id,
                                         *contact.previous_user_ids} if n]
        if not needles:
            return 0
        doomed = []
        async for raw in WebhookEvent.get_motor_collection().find(
                {"workspace_id": ws, "ingested_at": {"$ne": None}}, projection={"body": 1}):
            body = bytes(raw.get("body") or b"")
            if any(n in body for n in needles):
                doomed.append(raw["_id"])
        if doomed:
            await WebhookEvent.get_motor_collection().delete_many({"_id": {"$in": doomed}})
        return len(doomed)


def _contact_json(contact: Contact) -> dict[str, Any]:
    from app.domains.contacts.schemas import contact_out

    return contact_out(contact).model_dump(mode="json")
