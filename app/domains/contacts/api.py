"""JSON API v1: contacts: list (search, filter, segment, sort; keyset cursor), search by body, bulk
actions, create, read, edit, export (GDPR access), erase (GDPR)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from app.auth import requires_admin, requires_login
from app.db import utcnow
from app.domains.contacts.bulk import MAX_BULK_IDS, BulkAction
from app.domains.contacts.directory import ContactDirectory
from app.domains.contacts.filters import FILTER_DESCRIPTION, FILTER_EXAMPLE, MAX_FILTER_TEXT, parse_filter
from app.domains.contacts.schemas import AttributeValue, ContactIn, ContactOut, ContactPatch, contact_out
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


Sort = Literal["created", "updated", "last_inbound", "name"]
SEARCH_DESCRIPTION = ("Search words: the start of a word of the name, profile name or username, digits of the number, "
                      "the user id, the start of the email, or part of a text attribute")
SORT_DESCRIPTION = ("`created` (newest first), `updated` (last changed first), `last_inbound` (last to write "
                    "first; never wrote last) or `name` (A to Z)")


class ContactSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filter: dict[str, Any] | list[Any] | None = Field(None, description=FILTER_DESCRIPTION,
                                                      examples=[FILTER_EXAMPLE])
    q: str | None = Field(None, max_length=100, description=SEARCH_DESCRIPTION)
    tag: str | None = Field(None, max_length=40, description="Contacts with this tag")
    segment: str | None = Field(None, max_length=40, description="A segment's id: its contacts")
    sort: Sort = Field("created", description=SORT_DESCRIPTION)
    cursor: str | None = Field(None, max_length=500, description="The previous answer's `next_cursor`")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class ContactBulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["add_tags", "remove_tags", "set_attribute", "opt_out", "opt_in", "delete"] = Field(
        description="What to do; `delete` (admins) erases each contact with their conversations and messages")
    tags: list[str] = Field(default_factory=list, max_length=30, description="For add_tags / remove_tags",
                            examples=[["vip"]])
    key: str | None = Field(None, max_length=40, description="For set_attribute: the attribute's key",
                            examples=["plan"])
    value: AttributeValue = Field(None, description="For set_attribute: a value of the attribute's type; null "
                                  "removes it", examples=["pro"])
    ids: list[str] | None = Field(None, max_length=MAX_BULK_IDS, description="Contact ids (at most 1000)")
    filter: dict[str, Any] | list[Any] | None = Field(None, description=FILTER_DESCRIPTION,
                                                      examples=[FILTER_EXAMPLE])
    q: str | None = Field(None, max_length=100, description=SEARCH_DESCRIPTION)
    segment: str | None = Field(None, max_length=40, description="A segment's id: its contacts")


class BulkOut(BaseModel):
    action: str
    matched: int = Field(description="Contacts the ids, filter or segment chose")
    changed: int = Field(description="Of those, the ones changed (or deleted); the others were already so")


def actor(principal: Principal) -> str | None:
    """Who an API change is recorded as (consent history): the key's user, else the key."""
    if principal.user_id:
        return str(principal.user_id)
    return f"api_key:{principal.api_key.id}" if principal.api_key else None


def directory(runtime: Runtime) -> ContactDirectory:
    return ContactDirectory(runtime.live, runtime.integrations)


class ContactsApi(Controller):
    path = "/api/v1/contacts"
    guards = [requires_login]
    tags = ["contacts"]

    @get("/", summary="Contacts: search, filter, segment, sort; keyset-paged",
         description="Every parameter narrows the list (all must hold). `filter` is a JSON contact filter; "
         "for long ones use `POST /api/v1/contacts/search`. Groups are never listed.")
    async def list_contacts(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal],
                            q: str | None = Parameter(default=None, max_length=100, description=SEARCH_DESCRIPTION),
                            tag: str | None = Parameter(default=None, max_length=40, description="Contacts with this tag"),
                            filter_: Annotated[str | None, QueryParameter(
                                name="filter", max_length=MAX_FILTER_TEXT, description=FILTER_DESCRIPTION)] = None,
                            segment: str | None = Parameter(default=None, max_length=40,
                                                            description="A segment's id: its contacts"),
                            sort: Sort = Parameter(default="created", description=SORT_DESCRIPTION),
                            limit: int = Parameter(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
                            cursor: str | None = Parameter(default=None, max_length=500)) -> ContactList:
        page = await directory(runtime).page(principal.workspace_id, search=q, tag=tag, filter=parse_filter(filter_),
                                             segment_id=segment, sort=sort, limit=limit, cursor=cursor)
        return ContactList(data=[contact_out(c) for c in page.items], next_cursor=page.next_cursor)

    @post("/search", summary="Contacts matching a filter given in the body (for filters too long for a URL)",
          status_code=200, description="The same list as `GET /api/v1/contacts`, its parameters in a JSON body.")
    async def search_contacts(self, data: JSONBody[ContactSearch], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> ContactList:
        page = await directory(runtime).page(principal.workspace_id, search=data.q, tag=data.tag,
                                             filter=parse_filter(data.filter), segment_id=data.segment,
                                             sort=data.sort, limit=data.limit, cursor=data.cursor)
        return ContactList(data=[contact_out(c) for c in page.items], next_cursor=page.next_cursor)

    @post("/bulk", summary="Tag, untag, set an attribute, opt out / in, or delete many contacts at once",
          status_code=200, description="Choose the contacts by `ids` (at most 1000) or by `filter`, `q` and / or "
          "`segment` (every contact they match). `delete` is for admins (403 otherwise) and erases each contact "
          "with their conversations and messages. Values are checked first: a refused one changes nothing.")
    async def bulk_contacts(self, data: JSONBody[ContactBulkIn], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> BulkOut:
        chosen_by_query = data.filter is not None or data.q or data.segment
        if data.ids is not None and chosen_by_query:
            raise ValidationFailed("Choose contacts by ids or by a filter / segment, not both.",
                                   error_code="NOTHING_SELECTED", details={"ids": "with a filter"})
        result = await directory(runtime).bulk(
            principal.workspace_id, BulkAction(action=data.action, tags=data.tags, key=data.key, value=data.value),
            ids=data.ids, filter=parse_filter(data.filter) if data.filter is not None else None, q=data.q,
            segment_id=data.segment, by=actor(principal), source="api", admin=principal.is_admin)
        return BulkOut(action=result.action, matched=result.matched, changed=result.changed)

    @post("/", summary="Create a contact (409 when the number exists)", status_code=201)
    async def create_contact(self, data: JSONBody[ContactIn], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> ContactOut:
        contact = await directory(runtime).create(principal.workspace_id, data.phone, name=data.name,
                                                  attributes=data.attributes, tags=data.tags,
                                                  opted_out_marketing=data.opted_out_marketing, email=data.email,
                                                  by=actor(principal))
        return contact_out(contact)

    @get("/{contact_id:str}", summary="One contact")
    async def get_contact(self, contact_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> ContactOut:
        return contact_out(await directory(runtime).get(principal.workspace_id, contact_id))

    @patch("/{contact_id:str}", summary="Edit name, email, attributes (merged, typed), tags or marketing opt-out")
    async def update_contact(self, contact_id: FromPath[str], data: JSONBody[ContactPatch], runtime: NamedDependency[Runtime],
                             principal: NamedDependency[Principal]) -> ContactOut:
        contacts = directory(runtime)
        contact = await contacts.get(principal.workspace_id, contact_id)
        if not data.model_fields_set:
            raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})
        for name in ("tags", "opted_out_marketing", "name"):
            if name in data.model_fields_set and getattr(data, name) is None:
                raise ValidationFailed(f"{name} cannot be null.", details={name: "cannot be null"})
        email = (data.email or "") if "email" in data.model_fields_set else None  # null or "" removes it
        return contact_out(await contacts.update(contact, name=data.name, attributes=data.attributes, tags=data.tags,
                                                 opted_out_marketing=data.opted_out_marketing, email=email,
                                                 by=actor(principal)))

    @delete("/{contact_id:str}", summary="Erase the contact with their conversations, messages and media (GDPR)",
            guards=[requires_admin], status_code=200)
    async def erase_contact(self, contact_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Erasure:
        contacts = directory(runtime)
        removed = await contacts.erase(await contacts.get(principal.workspace_id, contact_id))
        return Erasure(**removed)

    @get("/{contact_id:str}/export", summary="Everything held about the contact, as JSON (GDPR access)",
         guards=[requires_admin])
    async def export_contact(self, contact_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> ContactExport:
        contacts = directory(runtime)
        held = await contacts.export(await contacts.get(principal.workspace_id, contact_id))
        contact = held["contact"]
        return ContactExport(exported_at=utcnow(), contact=contact_out(contact),
                             conversations=[conversation_out(c, contact) for c in held["conversations"]],
                             messages=[message_out(m) for m in held["messages"]])
