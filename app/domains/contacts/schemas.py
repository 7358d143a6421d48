"""Typed JSON shapes of a contact for API v1 and event webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import Flag
from app.db import as_utc
from app.domains.contacts.models import Contact


class ContactOut(BaseModel):
    id: str = Field(examples=["665f1c2e8a4b5c6d7e8f9012"])
    wa_id: str | None = Field(None, description="WhatsApp id: the number's digits", examples=["15551234567"])
    phone: str | None = Field(None, examples=["+15551234567"])
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
        id=str(contact.id), wa_id=contact.wa_id, phone=contact.phone, name=contact.name,
        profile_name=contact.profile_name, display_name=contact.display_name, attributes=dict(contact.attributes),
        tags=list(contact.tags), opted_out_marketing=contact.opted_out_marketing,
        created_at=as_utc(contact.created_at), updated_at=as_utc(contact.updated_at),
    )
