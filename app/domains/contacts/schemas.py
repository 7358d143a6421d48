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
    attributes: dict[str, Any] = Field(default_factory=dict, examples=[{"plan": "pro"}])
    tags: list[str] = Field(default_factory=list, examples=[["vip"]])
    opted_out_marketing: bool = False
    created_at: datetime
    updated_at: datetime


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(description="E.164 number, with or without +", examples=["+15551234567"])
    name: str = Field("", max_length=120)
    attributes: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    opted_out_marketing: Flag = False


class ContactPatch(BaseModel):
    """Send only what changes. ``attributes`` merges: a key set to "" or null is removed."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=120)
    attributes: dict[str, str | None] | None = None
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
        profile_name=contact.profile_name, display_name=contact.display_name, attributes=dict(contact.attributes),
        tags=list(contact.tags), opted_out_marketing=contact.opted_out_marketing,
        created_at=as_utc(contact.created_at), updated_at=as_utc(contact.updated_at),
    )
