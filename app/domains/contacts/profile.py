"""A contact's page: who they are, their typed attributes, tags, consent history, notes, every
conversation they have with each number, and "message them" (open or start a conversation).

Shared by the contacts page (controllers.py); the JSON API has its own shapes in api.py. What an
agent sees of conversations follows their access (app/domains/access/scope.py): an agent limited to
some numbers sees the contact, but only the conversations on their numbers, and can start one only
from those numbers.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.access.scope import Scope
from app.domains.accounts.models import WhatsAppAccount
from app.domains.catalog.models import ContactAttribute
from app.domains.contacts.models import Contact, ContactNote
from app.domains.conversations.models import Conversation
from app.domains.conversations.services import ConversationService
from app.errors import NotFound, ValidationFailed

MAX_NOTE = 2000
NOTES_KEPT = 200
INPUT_TYPES = {"number": "number", "date": "date", "datetime": "datetime-local", "boolean": "select",
               "list": "select", "text": "text"}


@dataclass
class AttributeRow:
    """One attribute as the page shows and edits it."""

    key: str
    name: str
    type: str
    value: Any
    shown: str
    input_value: str
    options: list[str] = field(default_factory=list)
    defined: bool = True

    @property
    def input_type(self) -> str:
        return INPUT_TYPES.get(self.type, "text")


@dataclass
class ConversationRow:
    conversation: Conversation
    account: WhatsAppAccount | None

    @property
    def window_open(self) -> bool:
        return self.conversation.window_open()


@dataclass
class ContactProfileView:
    contact: Contact
    attributes: list[AttributeRow]
    conversations: list[ConversationRow]
    numbers: list[WhatsAppAccount]
    """The numbers this user may message the contact from."""


def _input_value(definition: ContactAttribute | None, value: Any) -> str:
    """The value as an <input> of its type wants it."""
    if value is None:
        return ""
    kind = definition.type if definition else "text"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d") if kind == "date" else value.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shown(definition: ContactAttribute | None, value: Any) -> str:
    from app.domains.contacts.attribute_values import show_attribute

    return show_attribute(definition, value)


class ContactProfile:
    def __init__(self) -> None:
        self.conversations = ConversationService()

    async def contact(self, workspace_id: PydanticObjectId, contact_id: str) -> Contact:
        """The workspace's contact (people only: a group is reached through its conversation)."""
        try:
            oid = PydanticObjectId(contact_id)
        except Exception:
            raise NotFound("contact not found", details={"id": contact_id[:40]}) from None
        contact = await Contact.find_one_scoped(workspace_id, Contact.id == oid)
        if contact is None:
            raise NotFound("contact not found", details={"id": contact_id[:40]})
        return contact

    async def view(self, scope: Scope, contact: Contact) -> ContactProfileView:
        ws = scope.workspace_id
        definitions = await ContactAttribute.scoped(ws).sort("name").to_list()
        rows = [AttributeRow(key=d.key, name=d.name, type=d.type, value=contact.attributes.get(d.key),
                             shown=_shown(d, contact.attributes.get(d.key)),
                             input_value=_input_value(d, contact.attributes.get(d.key)), options=list(d.options))
                for d in definitions]
        known = {d.key for d in definitions}
        rows += [AttributeRow(key=k, name=k, type="text", value=v, shown=_shown(None, v), input_value=_input_value(None, v),
                              defined=False)
                 for k, v in sorted(contact.attributes.items()) if k not in known]
        query: dict[str, Any] = {"workspace_id": ws, "contact_id": contact.id}
        if not scope.everything:
            query = {"$and": [query, scope.conversation_filter()]}
        conversations = await Conversation.find(query).sort(-Conversation.updated_at).to_list(100)
        accounts = {a.id: a for a in await WhatsAppAccount.scoped(ws).to_list()}
        numbers = [a for a in accounts.values() if scope.sees_number(a.id)]
        return ContactProfileView(
            contact=contact, attributes=rows,
            conversations=[ConversationRow(c, accounts.get(c.account_id)) for c in conversations],
            numbers=sorted(numbers, key=lambda a: a.name))

    async def add_note(self, contact: Contact, text: str, *, by: PydanticObjectId | None, by_name: str) -> Contact:
        text = (text or "").strip()
        if not text:
            raise ValidationFailed("Write the note first.", error_code="NOTE_EMPTY", details={"note": "empty"})
        if len(text) > MAX_NOTE:
            raise ValidationFailed(f"Notes are at most {MAX_NOTE} characters.", error_code="NOTE_TOO_LONG",
                                   details={"note": f"{len(text)} characters"})
        note = ContactNote(id=secrets.token_hex(6), text=text, by=by, by_name=by_name)
        await Contact.find_one(Contact.id == contact.id, Contact.workspace_id == contact.workspace_id).update(
            {"$push": {"notes": {"$each": [note.model_dump()], "$slice": -NOTES_KEPT}}, "$set": {"updated_at": utcnow()}})
        contact.notes = [*contact.notes, note][-NOTES_KEPT:]
        return contact

    async def delete_note(self, contact: Contact, note_id: str) -> Contact:
        await Contact.find_one(Contact.id == contact.id, Contact.workspace_id == contact.workspace_id).update(
            {"$pull": {"notes": {"id": note_id}}})
        contact.notes = [n for n in contact.notes if n.id != note_id]
        return contact

    async def start_conversation(self, scope: Scope, contact: Contact, account_id: str) -> Conversation:
        """The contact's conversation on that number, created when they have none (it opens with the
        window closed: the inbox then offers a template, as WhatsApp requires)."""
        if contact.is_group:
            raise ValidationFailed("A group is messaged from its own conversation.", error_code="CONTACT_IS_GROUP")
        try:
            account_oid = PydanticObjectId(account_id)
        except Exception:
            raise ValidationFailed("Choose a number.", error_code="ACCOUNT_REQUIRED",
                                   details={"account_id": "missing"}) from None
        account = await WhatsAppAccount.find_one_scoped(scope.workspace_id, WhatsAppAccount.id == account_oid)
        if account is None or not scope.sees_number(account.id):
            raise ValidationFailed("You cannot send from that number.", error_code="ACCOUNT_NOT_ALLOWED",
                                   details={"account_id": "not one of your numbers"})
        conversation, _ = await self.conversations.open_for(scope.workspace_id, account.id, contact.id, reopen=False)
        return conversation
