"""JSON API v1: contacts: search with a cursor, create, read, edit, export (GDPR access), erase (GDPR)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter
from pydantic import BaseModel, Field

from app.auth import requires_admin, requires_login
from app.db import utcnow
from app.domains.contacts.directory import ContactDirectory
from app.domains.contacts.schemas import ContactIn, ContactOut, ContactPatch, contact_out
from app.domains.conversations.schemas import ConversationOut, conversation_out
from app.domains.messages.schemas import MessageOut, message_out
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.runtime import Runtime


class ContactList(BaseModel):
    data: list[ContactOut]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last")


class ContactExport(BaseModel):
    """Everything held about one person: the contact, their conversations and every message."""

    exported_at: datetime
    contact: ContactOut
    conversations: list[ConversationOut]
    messages: list[MessageOut]


class Erasure(BaseModel):
    erased: bool = True
    messages: int
    media_files: int
    conversations: int
    events: int = Field(description="Integration events (and their delivery logs) that named the contact")
    webhook_bodies: int = Field(description="Raw Meta webhook bodies that carried the number")


def directory(runtime: Runtime) -> ContactDirectory:
    return ContactDirectory(runtime.live, runtime.integrations)


class ContactsApi(Controller):
    path = "/api/v1/contacts"
    guards = [requires_login]
    tags = ["contacts"]

    @get("/", summary="Contacts, newest first; search by name or number")
    async def list_contacts(self, runtime: Runtime, principal: Principal,
                            q: str | None = Parameter(default=None, max_length=100,
                                                      description="Part of a name or of the phone number"),
                            tag: str | None = Parameter(default=None, max_length=40),
                            limit: int = Parameter(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
                            cursor: str | None = Parameter(default=None, max_length=500)) -> ContactList:
        page = await directory(runtime).page(principal.workspace_id, search=q, tag=tag, limit=limit, cursor=cursor)
        return ContactList(data=[contact_out(c) for c in page.items], next_cursor=page.next_cursor)

    @post("/", summary="Create a contact (409 when the number exists)", status_code=201)
    async def create_contact(self, data: ContactIn, runtime: Runtime, principal: Principal) -> ContactOut:
        contact = await directory(runtime).create(principal.workspace_id, data.phone, name=data.name,
                                                  attributes=data.attributes, tags=data.tags,
                                                  opted_out_marketing=data.opted_out_marketing)
        return contact_out(contact)

    @get("/{contact_id:str}", summary="One contact")
    async def get_contact(self, contact_id: str, runtime: Runtime, principal: Principal) -> ContactOut:
        return contact_out(await directory(runtime).get(principal.workspace_id, contact_id))

    @patch("/{contact_id:str}", summary="Edit name, attributes (merged), tags or marketing opt-out")
    async def update_contact(self, contact_id: str, data: ContactPatch, runtime: Runtime,
                             principal: Principal) -> ContactOut:
        contacts = directory(runtime)
        contact = await contacts.get(principal.workspace_id, contact_id)
        if not data.model_fields_set:
            raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})
        for name in ("tags", "opted_out_marketing", "name"):
            if name in data.model_fields_set and getattr(data, name) is None:
                raise ValidationFailed(f"{name} cannot be null.", details={name: "cannot be null"})
        return contact_out(await contacts.update(contact, name=data.name, attributes=data.attributes, tags=data.tags,
                                                 opted_out_marketing=data.opted_out_marketing))

    @delete("/{contact_id:str}", summary="Erase the contact with their conversations, messages and media (GDPR)",
            guards=[requires_admin], status_code=200)
    async def erase_contact(self, contact_id: str, runtime: Runtime, principal: Principal) -> Erasure:
        contacts = directory(runtime)
        removed = await contacts.erase(await contacts.get(principal.workspace_id, contact_id))
        return Erasure(**removed)

    @get("/{contact_id:str}/export", summary="Everything held about the contact, as JSON (GDPR access)",
         guards=[requires_admin])
    async def export_contact(self, contact_id: str, runtime: Runtime, principal: Principal) -> ContactExport:
        contacts = directory(runtime)
        held = await contacts.export(await contacts.get(principal.workspace_id, contact_id))
        contact = held["contact"]
        return ContactExport(exported_at=utcnow(), contact=contact_out(contact),
                             conversations=[conversation_out(c, contact) for c in held["conversations"]],
                             messages=[message_out(m) for m in held["messages"]])
