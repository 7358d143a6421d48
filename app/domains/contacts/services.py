"""Contacts: upsert from webhooks and API calls, keyed by wa_id (or BSUID), phone formatted."""

from __future__ import annotations

import phonenumbers
from beanie import PydanticObjectId
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import utcnow
from app.domains.contacts.models import Contact, contact_key
from app.domains.conversations.search import contact_tokens_of


def e164_from_wa_id(wa_id: str | None) -> str | None:
    """wa_id is the number's digits with country code; None when it is not a valid phone number."""
    if not wa_id or not wa_id.isdigit():
        return None
    try:
        parsed = phonenumbers.parse("+" + wa_id, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class ContactService:
    async def upsert(self, workspace_id: PydanticObjectId, *, wa_id: str | None = None, user_id: str | None = None,
                     profile_name: str | None = None, username: str | None = None) -> tuple[Contact, bool]:
        """The contact for that identity, created if new; returns (contact, created).

        One atomic upsert on the unique (workspace_id, key) index, so two workers ingesting the
        same customer at once end with one contact.
        """
        key = contact_key(wa_id, user_id)
        now = utcnow()
        update: dict = {"updated_at": now}
        if profile_name:
            update["profile_name"] = profile_name
        if username:
            update["username"] = username
        if user_id:
            update["user_id"] = user_id
        on_insert = {"workspace_id": workspace_id, "key": key, "wa_id": wa_id, "phone": e164_from_wa_id(wa_id),
                     "name": "", "attributes": {}, "tags": [], "opted_out_marketing": False,
                     "previous_wa_ids": [], "created_at": now}
        for field in update:
            on_insert.pop(field, None)
        collection = Contact.get_motor_collection()
        # Our own _id on insert: the document comes back in the same operation, and it is ours (created)
        # exactly when it carries that id.
        new_id = ObjectId()
        on_insert["_id"] = new_id
        raw = None
        for _ in range(2):  # an upsert racing another upsert can hit the unique index once
            try:
                raw = await collection.find_one_and_update(
                    {"workspace_id": workspace_id, "key": key},
                    {"$set": update, "$setOnInsert": on_insert},
                    upsert=True, return_document=ReturnDocument.AFTER,
                )
                break
            except DuplicateKeyError:
                continue
        if raw is None:  # lost the race twice: the other upsert's contact is there now
            raw = await collection.find_one({"workspace_id": workspace_id, "key": key})
        contact = Contact.model_validate(raw)
        tokens = contact_tokens_of(contact)
        if contact.search_tokens != tokens:  # a new contact, or a new profile name: its inbox search words follow
            contact.search_tokens = tokens
            await collection.update_one({"_id": contact.id}, {"$set": {"search_tokens": tokens}})
        return contact, contact.id == new_id

    async def change_number(self, workspace_id: PydanticObjectId, old_wa_id: str, new_wa_id: str) -> Contact | None:
        """WhatsApp's user_changed_number: the same person, now under a new wa_id."""
        contact = await Contact.find_one_scoped(workspace_id, Contact.key == contact_key(old_wa_id, None))
        if contact is None:
            return None
        existing = await Contact.find_one_scoped(workspace_id, Contact.key == contact_key(new_wa_id, None))
        if existing is not None and existing.id != contact.id:
            return existing  # the new number already wrote to us; keep both, never merge silently
        contact.previous_wa_ids = [*contact.previous_wa_ids, old_wa_id]
        contact.wa_id = new_wa_id
        contact.key = contact_key(new_wa_id, None)
        contact.phone = e164_from_wa_id(new_wa_id)
        contact.updated_at = utcnow()
        await contact.save()
        return contact
