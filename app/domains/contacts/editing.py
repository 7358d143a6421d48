"""Agents edit a contact: display name, custom attributes, tags, marketing opt-out.

Each change is published as a ``conversation.updated`` for the contact's conversations, so every
open inbox shows the new name at once. No Litestar here: the JSON API reuses it.
"""

from __future__ import annotations

import re
from typing import Any

from app.db import utcnow
from app.domains.catalog.models import ContactAttribute
from app.domains.contacts.attribute_values import AttributeValueError, coerce_attribute
from app.domains.contacts.models import CONSENT_KEPT, ConsentChange, ConsentSource, Contact, sort_name_of
from app.domains.conversations.models import Conversation
from app.domains.conversations.search import contact_tokens_of
from app.errors import ValidationFailed
from app.realtime import LiveEvents

MAX_NAME = 120
MAX_ATTRIBUTES = 50
MAX_TAGS = 30
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
_TAG = re.compile(r"^[\w][\w .:/&+-]{0,39}$", re.UNICODE)


_EMAIL = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[^@\s<>(),;:\".]{2,}$")
MAX_EMAIL = 254


def clean_email(email: str | None) -> str | None:
    """The address as stored (trimmed, lower-case), None for blank; 422 EMAIL_INVALID for anything
    that is not one address."""
    text = (email or "").strip().lower()
    if not text:
        return None
    if len(text) > MAX_EMAIL or not _EMAIL.match(text):
        raise ValidationFailed("Enter one email address, like name@example.com.", error_code="EMAIL_INVALID",
                               details={"email": text[:60]})
    return text


def check_attribute_key(key: str | None) -> str:
    """An attribute key as given (trimmed); 422 BAD_ATTRIBUTE when it cannot be one."""
    key = (key or "").strip()
    if not _KEY.match(key):
        raise ValidationFailed("Attribute names start with a letter: letters, digits and _ only, 40 at most.",
                               error_code="BAD_ATTRIBUTE", details={"key": key[:60]})
    return key


def clean_tags(tags: list[str] | str) -> list[str]:
    """Tags as stored: spaces collapsed, repeats (whatever their case) dropped, each checked; a string
    is comma-separated. 422 BAD_TAG / TOO_MANY_TAGS."""
    if isinstance(tags, str):
        tags = tags.split(",")
    cleaned: list[str] = []
    for raw in tags:
        tag = " ".join(str(raw).split())
        if not tag:
            continue
        if not _TAG.match(tag):
            raise ValidationFailed("Tags are up to 40 letters, digits, spaces or - _ . : / & +.",
                                   error_code="BAD_TAG", details={"tags": tag[:60]})
        if tag.lower() not in {t.lower() for t in cleaned}:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise ValidationFailed(f"At most {MAX_TAGS} tags.", error_code="TOO_MANY_TAGS",
                               details={"tags": f"{len(cleaned)} given"})
    return cleaned


class ContactEditing:
    def __init__(self, live: LiveEvents) -> None:
        self.live = live

    async def rename(self, contact: Contact, name: str) -> Contact:
        """The name agents see; empty goes back to the customer's WhatsApp profile name."""
        name = " ".join((name or "").split())
        if len(name) > MAX_NAME:
            raise ValidationFailed(f"Names are at most {MAX_NAME} characters.", error_code="NAME_TOO_LONG",
                                   details={"name": f"{len(name)} characters"})
        return await self._save(contact, name=name)

    async def set_email(self, contact: Contact, email: str | None) -> Contact:
        """The contact's email (lower-cased); blank removes it."""
        return await self._save(contact, email=clean_email(email))

    async def set_attribute(self, contact: Contact, key: str, value: Any, *,
                            definitions: dict[str, ContactAttribute] | None = None) -> Contact:
        """Set (or, with None / "", remove) one attribute, typed by the admin's definition of ``key``
        (text when there is none): 422 ATTRIBUTE_INVALID naming the attribute and the type it expects.
        ``definitions`` saves the lookup when the caller has them already."""
        key = check_attribute_key(key)
        if definitions is not None:
            definition = definitions.get(key)
        else:
            definition = await ContactAttribute.find_one_scoped(contact.workspace_id, ContactAttribute.key == key)
        try:
            stored = coerce_attribute(definition, value, key=key)
        except AttributeValueError as exc:
            raise exc.as_validation_error() from None
        attributes = dict(contact.attributes)
        if stored is None:
            attributes.pop(key, None)
        else:
            if key not in attributes and len(attributes) >= MAX_ATTRIBUTES:
                raise ValidationFailed(f"At most {MAX_ATTRIBUTES} attributes.", error_code="TOO_MANY_ATTRIBUTES",
                                       details={"key": key})
            attributes[key] = stored
        return await self._save(contact, attributes=attributes)

    async def set_tags(self, contact: Contact, tags: list[str] | str) -> Contact:
        return await self._save(contact, tags=clean_tags(tags))

    async def set_opt_out(self, contact: Contact, opted_out: bool, *, source: ConsentSource = "agent",
                          by: str | None = None) -> Contact:
        """Opted-out contacts get no marketing templates (the send path refuses them); the change is
        kept in the contact's consent history with who made it."""
        if contact.opted_out_marketing == bool(opted_out):
            return contact
        change = ConsentChange(opted_out=bool(opted_out), source=source, by=by)
        return await self._save(contact, opted_out_marketing=bool(opted_out),
                                consent=[*contact.consent, change][-CONSENT_KEPT:])

    async def _save(self, contact: Contact, **changes: Any) -> Contact:
        now = utcnow()
        before_tags = {t.casefold(): t for t in contact.tags}
        before_attributes = dict(contact.attributes)
        for key, value in changes.items():
            setattr(contact, key, value)
        if "name" in changes:  # the inbox search finds the contact by its new name, the list sorts by it
            changes["search_tokens"] = contact.search_tokens = contact_tokens_of(contact)
            changes["sort_name"] = contact.sort_name = sort_name_of(contact)
        contact.updated_at = now
        await Contact.find_one(Contact.id == contact.id, Contact.workspace_id == contact.workspace_id).update(
            {"$set": {**changes, "updated_at": now}})
        # The list shows the contact's name: touch its conversations so open inboxes and catch-up see it.
        theirs = Conversation.scoped(contact.workspace_id, Conversation.contact_id == contact.id)
        conversations = await theirs.to_list()
        await theirs.update({"$set": {"updated_at": now}})
        for conversation in conversations:
            await self.live.publish(contact.workspace_id, "conversation.updated", conversation_id=str(conversation.id))
        await self._tell_changes(contact, before_tags, before_attributes, changes)
        return contact

    async def _tell_changes(self, contact: Contact, before_tags: dict[str, str], before_attributes: dict[str, Any],
                            changes: dict[str, Any]) -> None:
        """Tags added or removed and attributes changed, for workflows' triggers (listeners only)."""
        after_tags = {t.casefold(): t for t in contact.tags}
        added = [t for k, t in after_tags.items() if k not in before_tags] if "tags" in changes else []
        removed = [t for k, t in before_tags.items() if k not in after_tags] if "tags" in changes else []
        attributes = sorted(k for k in set(before_attributes) | set(contact.attributes)
                            if before_attributes.get(k) != contact.attributes.get(k)) if "attributes" in changes else []
        if added or removed or attributes:
            await self.live.tell(contact.workspace_id, "contact.changed", contact_id=str(contact.id),
                                 tags_added=added, tags_removed=removed, attributes=attributes)
