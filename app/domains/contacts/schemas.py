"""Typed JSON shapes of a contact for API v1 and event webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import Flag
from app.db import as_utc
from app.domains.contacts.models import Contact


class GroupOut(BaseModel):
    group_id: str
    subject: str = ""
    description: str = ""
    participant_ids: list[str] = Field(default_factory=list, description="Contact ids of the participants")
    deleted: bool = False


class IdentityNoteOut(BaseModel):
    kind: str = Field(examples=["number_changed"])
    text: str
    other_contact_id: str | None = None
    at: datetime


class ConsentOut(BaseModel):
    opted_out: bool = Field(description="true: opted out of marketing from then on")
    source: str = Field(description="agent, api, import, keyword (the customer wrote STOP / START), meta "
                        "(WhatsApp's marketing preference), failed_send (Meta refused a send with 131050) or merge",
                        examples=["api"])
    at: datetime
    by: str | None = Field(None, description="The user (or import) that made the change")
    note: str = ""


AttributeValue = str | int | float | bool | None
"""A typed attribute value as sent: text, a number, true / false, an ISO date or date-time as text;
null or "" removes it."""


class ContactOut(BaseModel):
    id: str = Field(examples=["665f1c2e8a4b5c6d7e8f9012"])
    wa_id: str | None = Field(None, description="WhatsApp id: the number's digits", examples=["15551234567"])
    phone: str | None = Field(None, examples=["+15551234567"])
    user_id: str | None = Field(None, description="WhatsApp's business-scoped user id (BSUID): messages go to it "
                                "when the customer keeps their number private", examples=["US.13491208655302741918"])
    parent_user_id: str | None = Field(None, description="The parent BSUID shared across a company's portfolios",
                                       examples=["US.ENT.11815799212886844830"])
    username: str | None = Field(None, description="The customer's WhatsApp username", examples=["ada"])
    kind: str = Field("person", description="`group` for a WhatsApp group the number takes part in")
    group: GroupOut | None = None
    identity_notes: list[IdentityNoteOut] = Field(
        default_factory=list, description="What WhatsApp said about who this is: a new number or user id, or "
        "another contact sharing an identifier (never merged silently)")
    name: str = Field("", description="The name agents gave the contact")
    profile_name: str = Field("", description="The name the customer set in WhatsApp")
    display_name: str
    email: str | None = Field(None, examples=["ada@example.com"])
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Typed by their definitions: text, numbers, true / false, dates and "
        "date-times as ISO 8601 UTC", examples=[{"plan": "pro", "orders": 3, "renewal": "2025-03-01T00:00:00Z"}])
    tags: list[str] = Field(default_factory=list, examples=[["vip"]])
    opted_out_marketing: bool = Field(False, description="The current marketing consent: true, never sent "
                                      "marketing templates")
    consent: list[ConsentOut] = Field(default_factory=list, description="Every consent change, oldest first")
    last_inbound_at: datetime | None = Field(None, description="When the customer last wrote to any number")
    created_at: datetime
    updated_at: datetime


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(description="E.164 number, with or without +", examples=["+15551234567"])
    name: str = Field("", max_length=120)
    email: str | None = Field(None, max_length=254, description="Stored lower-case", examples=["ada@example.com"])
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="Values of each attribute's type (422 ATTRIBUTE_INVALID otherwise)",
        examples=[{"plan": "pro", "orders": 3}])
    tags: list[str] = Field(default_factory=list)
    opted_out_marketing: Flag = False


class ContactPatch(BaseModel):
    """Send only what changes. ``attributes`` merges: a key set to "" or null is removed."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=120)
    email: str | None = Field(None, max_length=254, description="null or \"\" removes it")
    attributes: dict[str, AttributeValue] | None = Field(
        None, description="Merged; values of each attribute's type (422 ATTRIBUTE_INVALID otherwise)")
    tags: list[str] | None = None
    opted_out_marketing: Flag | None = None


def contact_out(contact: Contact) -> ContactOut:
    return ContactOut(
        id=str(contact.id), wa_id=contact.wa_id, phone=contact.phone, user_id=contact.user_id,
        parent_user_id=contact.parent_user_id, username=contact.username, kind=contact.kind,
        group=GroupOut(group_id=contact.group.group_id, subject=contact.group.subject,
                       description=contact.group.description,
                       participant_ids=[str(i) for i in contact.group.participant_ids],
                       deleted=contact.group.deleted) if contact.group else None,
        identity_notes=[IdentityNoteOut(kind=n.kind, text=n.text, at=as_utc(n.at),
                                        other_contact_id=str(n.other_contact_id) if n.other_contact_id else None)
                        for n in contact.identity_notes],
        name=contact.name,
        profile_name=contact.profile_name, display_name=contact.display_name, email=contact.email,
        attributes={k: as_utc(v) if isinstance(v, datetime) else v for k, v in contact.attributes.items()},
        tags=list(contact.tags), opted_out_marketing=contact.opted_out_marketing,
        consent=[ConsentOut(opted_out=c.opted_out, source=c.source, at=as_utc(c.at), by=c.by, note=c.note)
                 for c in contact.consent],
        last_inbound_at=as_utc(contact.last_inbound_at) if contact.last_inbound_at else None,
        created_at=as_utc(contact.created_at), updated_at=as_utc(contact.updated_at),
    )
