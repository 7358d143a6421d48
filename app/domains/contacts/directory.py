"""Contacts for the JSON API and the contacts page: the list (filters, segments, sorts, keyset pages),
bulk actions (bulk.py), create, edit, export (one person's data) and erase (GDPR).

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

from app.domains.audit import services as audit
from app.domains.catalog.models import ContactAttribute
from app.domains.contacts.attribute_values import AttributeValueError, attribute_definitions, coerce_attribute
from app.domains.contacts.bulk import BulkAction, BulkResult, ContactBulk, page_action
from app.domains.contacts.editing import ContactEditing, clean_email
from app.domains.contacts.filters import ContactFilter, contact_query, object_ids, sort_of
from app.domains.contacts.models import ConsentSource, Contact, ContactMerge
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation
from app.domains.media.store import MediaStore
from app.domains.messages.models import Message
from app.domains.reports import rollups
from app.domains.subscriptions.events import IntegrationEvents
from app.domains.subscriptions.models import Delivery, EventType, IntegrationEvent
from app.domains.webhooks.models import WebhookEvent
from app.domains.workspaces.services import Principal
from app.errors import Conflict, ValidationFailed
from app.pagination import DEFAULT_LIMIT, Page, paginate
from app.realtime import LiveEvents
from app.whatsapp.payloads import normalize_recipient
from app.whatsapp.validation import PayloadError

MAX_SEARCH = 100


def wa_id_of(phone: str) -> str:
    try:
        return normalize_recipient(phone)[1:]
    except PayloadError as exc:
        raise ValidationFailed(exc.message, error_code="PHONE_INVALID", details={"phone": exc.message}) from None


async def _segment_query(workspace_id: PydanticObjectId, segment_id: str) -> dict[str, Any]:
    from app.domains.segments.services import SegmentService  # segments build on contacts, not the reverse

    return await SegmentService().query(workspace_id, segment_id)


class ContactDirectory:
    def __init__(self, live: LiveEvents, integrations: IntegrationEvents) -> None:
        self.editing = ContactEditing(live)
        self.integrations = integrations
        self.contacts = ContactService()

    async def selection(self, workspace_id: PydanticObjectId, *, spec: ContactFilter | None = None,
                        q: str | None = None, segment_id: str | None = None, tag: str | None = None,
                        ids: list[str] | None = None) -> dict[str, Any]:
        """The Mongo filter of the contacts a list (or a bulk action) is about: a filter, search words,
        a saved segment, a tag, or given ids; every part must hold. Scoped, groups left out."""
        query = await contact_query(workspace_id, spec, q=q)
        parts: list[dict[str, Any]] = list(query.pop("$and", []))
        if segment_id:
            parts.append(await _segment_query(workspace_id, segment_id))
        if tag:
            parts.append({"tags": tag})
        if ids is not None:
            parts.append({"_id": {"$in": object_ids(ids)}})
        return {**query, "$and": parts} if parts else query

    async def page(self, workspace_id: PydanticObjectId, *, search: str | None = None, tag: str | None = None,
                   limit: int = DEFAULT_LIMIT, cursor: str | None = None, filter: ContactFilter | None = None,
                   segment_id: str | None = None, sort: str = "created") -> Page[Contact]:
        """One page of the contacts list in ``sort`` order (SORTS), keyset-paged on (field, _id): a
        contact created or edited while a client pages never shifts or repeats what it has seen."""
        field, descending = sort_of(sort)
        query = await self.selection(workspace_id, spec=filter, q=search, segment_id=segment_id, tag=tag)
        return await paginate(Contact.find(query), f"contacts:{sort}", field=field, limit=limit, cursor=cursor,
                              descending=descending)

    async def count(self, workspace_id: PydanticObjectId, *, spec: ContactFilter | None = None,
                    q: str | None = None, segment_id: str | None = None, tag: str | None = None) -> int:
        query = await self.selection(workspace_id, spec=spec, q=q, segment_id=segment_id, tag=tag)
        return await Contact.find(query).count()

    async def listing(self, workspace_id: PydanticObjectId, spec: ContactFilter | None, *, q: str | None = None,
                      sort: str = "created", segment_id: str | None = None, cursor: str | None = None,
                      limit: int = DEFAULT_LIMIT) -> tuple[Page[Contact], int]:
        """The contacts page: a page of rows and how many contacts match in all."""
        page = await self.page(workspace_id, search=q, filter=spec, segment_id=segment_id, sort=sort,
                               cursor=cursor, limit=limit)
        return page, await self.count(workspace_id, spec=spec, q=q, segment_id=segment_id)

    async def bulk(self, workspace_id: PydanticObjectId, action: BulkAction, *, ids: list[str] | None = None,
                   filter: ContactFilter | None = None, q: str | None = None, segment_id: str | None = None,
                   by: str | None = None, source: ConsentSource = "agent", admin: bool = False) -> BulkResult:
        """One action on the given contacts (ids, at most MAX_BULK_IDS) or on every contact a filter, search
        or segment matches (walked in batches). Deleting is for admins (403 otherwise)."""
        return await ContactBulk(self).run(workspace_id, action, ids=ids, spec=filter, q=q, segment_id=segment_id,
                                           by=by, source=source, admin=admin)

    async def bulk_from_page(self, principal: Principal, action: str, *, ids: list[str], everything: bool,
                             spec: ContactFilter | None, q: str | None, segment_id: str | None, value: str = "",
                             key: str = "") -> BulkResult:
        """The contacts page's bulk form: the ticked rows, or (``everything``) all the list matches."""
        chosen = page_action(action, value=value, key=key)
        if not everything and not ids:
            raise ValidationFailed("Tick the contacts to change first.", error_code="NOTHING_SELECTED",
                                   details={"ids": "none ticked"})
        who = str(principal.user_id) if principal.user_id else None
        if everything:
            return await self.bulk(principal.workspace_id, chosen, filter=spec or ContactFilter(), q=q,
                                   segment_id=segment_id, by=who, source="agent", admin=principal.is_admin)
        return await self.bulk(principal.workspace_id, chosen, ids=ids, by=who, source="agent",
                               admin=principal.is_admin)

    async def get(self, workspace_id: PydanticObjectId, contact_id: str) -> Contact:
        return await Contact.get_scoped(workspace_id, contact_id)

    async def create(self, workspace_id: PydanticObjectId, phone: str, *, name: str = "",
                     attributes: dict[str, Any] | None = None, tags: list[str] | None = None,
                     opted_out_marketing: bool = False, email: str | None = None,
                     by: str | None = None) -> Contact:
        wa_id = wa_id_of(phone)
        if attributes:  # refused values refuse the whole contact, before anything is stored
            await self._typed(workspace_id, attributes)
        if email:
            clean_email(email)
        existing = await self.contacts.find(workspace_id, wa_id=wa_id)
        if existing is not None:  # checked first: the upsert would touch the existing contact
            raise Conflict("A contact with this number exists already.", error_code="CONTACT_EXISTS",
                           details={"id": str(existing.id)})
        contact, created = await self.contacts.upsert(workspace_id, wa_id=wa_id)
        if not created:
            raise Conflict("A contact with this number exists already.", error_code="CONTACT_EXISTS",
                           details={"id": str(contact.id)})
        contact = await self.update(contact, name=name or None, attributes=attributes or None, tags=tags or None,
                                    opted_out_marketing=opted_out_marketing or None, email=email or None, by=by)
        await self.integrations.emit(workspace_id, EventType.CONTACT_CREATED, f"contact.created:{contact.id}",
                                     {"contact": _contact_json(contact)}, contact.created_at)
        await self.editing.live.tell(workspace_id, "contact.created", contact_id=str(contact.id))
        return contact

    async def update(self, contact: Contact, *, name: str | None = None, attributes: dict[str, Any] | None = None,
                     tags: list[str] | None = None, opted_out_marketing: bool | None = None,
                     email: str | None = None, by: str | None = None, source: ConsentSource = "api") -> Contact:
        """API edits: ``attributes`` merge (None or "" removes a key), each typed by its definition
        (422 ATTRIBUTE_INVALID, and nothing changed, when one is refused); ``email`` "" removes it; an
        opt-out change is recorded with ``source`` and ``by``."""
        definitions = await self._typed(contact.workspace_id, attributes) if attributes else {}
        if email is not None:
            contact = await self.editing.set_email(contact, email)
        if name is not None:
            contact = await self.editing.rename(contact, name)
        for key, value in (attributes or {}).items():
            contact = await self.editing.set_attribute(contact, key, value, definitions=definitions)
        if tags is not None:
            contact = await self.editing.set_tags(contact, tags)
        if opted_out_marketing is not None:
            contact = await self.editing.set_opt_out(contact, opted_out_marketing, source=source, by=by)
        return await Contact.get(contact.id) or contact  # as stored (each edit above saved its own part)

    @staticmethod
    async def _typed(workspace_id: PydanticObjectId, attributes: dict[str, Any]) -> dict[str, ContactAttribute]:
        """Every value checked against its definition before any is stored; the definitions."""
        definitions = await attribute_definitions(workspace_id)
        for key, value in attributes.items():
            try:
                coerce_attribute(definitions.get(key), value, key=key)
            except AttributeValueError as exc:
                raise exc.as_validation_error() from None
        return definitions

    async def export(self, contact: Contact) -> dict[str, Any]:
        """Everything we hold about one person (GDPR access request), as plain data."""
        conversations = await Conversation.scoped(contact.workspace_id, Conversation.contact_id == contact.id
                                                  ).sort("_id").to_list()
        messages = await Message.scoped(contact.workspace_id, Message.contact_id == contact.id).sort("_id").to_list()
        return {"contact": contact, "conversations": conversations, "messages": messages}

    async def erase(self, contact: Contact) -> dict[str, int]:
        """Delete the person and everything that carries their data; returns what was removed."""
        return await self.erase_many(contact.workspace_id, [contact])

    async def erase_many(self, ws: PydanticObjectId, contacts: list[Contact]) -> dict[str, int]:
        """The GDPR erase of each of these contacts (of one workspace), a batch at a time: their
        messages, stored media, conversations, the integration events and raw webhook bodies naming
        them, then the contacts. Returns what was removed, summed."""
        if not contacts:
            return {"contacts": 0, "messages": 0, "media_files": 0, "conversations": 0, "events": 0,
                    "webhook_bodies": 0}
        contact_ids = [c.id for c in contacts]
        mine = {"contact_id": {"$in": contact_ids}}
        messages = await Message.scoped(ws, mine).to_list()
        media = MediaStore()
        stored_ids = {m.media.stored_file_id for m in messages if m.media and m.media.stored_file_id}
        file_ids = await media.file_ids_of_messages(ws, [m.id for m in messages]) | stored_ids
        await media.delete(ws, file_ids)
        conversations = await Conversation.scoped(ws, mine).to_list()
        removed = {"contacts": len(contacts), "messages": len(messages), "media_files": len(file_ids),
                   "conversations": len(conversations)}
        # Their messages' hours and their own (created, consent changes) are counted again without them.
        await rollups.forget(ws, [m.timestamp for m in messages]
                             + [at for c in contacts for at in (c.created_at, *(change.at for change in c.consent))])
        await Message.scoped(ws, mine).delete()
        await Conversation.scoped(ws, mine).delete()
        removed["events"] = await self._erase_events(ws, [*(str(i) for i in contact_ids),
                                                          *(str(c.id) for c in conversations)])
        removed["webhook_bodies"] = await self._erase_raw_webhooks(ws, contacts)
        # A merge record keeps the merged-away contact's name and what was chosen: it goes with them.
        await ContactMerge.find({"workspace_id": ws, "$or": [{"survivor_id": {"$in": contact_ids}},
                                                             {"other_id": {"$in": contact_ids}}]}).delete()
        await Contact.find({"workspace_id": ws, "_id": {"$in": contact_ids}}).delete()
        # Kept by id and counts only: the audit log must not keep what the erasure removed (names, numbers).
        await audit.record(ws, "contact.erased", "contact", contact_ids[0] if len(contact_ids) == 1 else None,
                           f"{len(contact_ids)} contact{'s' if len(contact_ids) != 1 else ''}", removed)
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

    async def _erase_raw_webhooks(self, ws: PydanticObjectId, contacts: list[Contact]) -> int:
        """Ingested raw webhook bodies that mention their numbers or WhatsApp user ids (kept for
        debugging, not needed after): one read of them for the whole batch."""
        needles = [n.encode() for n in {i for c in contacts for i in (c.wa_id, *c.previous_wa_ids, c.user_id,
                                                                        *c.previous_user_ids)} if n]
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
