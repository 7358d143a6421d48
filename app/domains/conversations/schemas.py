"""Typed JSON shapes of a conversation for API v1 answers and event webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.db import as_utc
from app.domains.conversations.models import Conversation, ConversationStatus


class ContactBrief(BaseModel):
    id: str
    wa_id: str | None = Field(None, examples=["15551234567"])
    name: str | None = Field(None, examples=["Ada Lovelace"])
    phone: str | None = Field(None, examples=["+15551234567"])
    user_id: str | None = Field(None, description="WhatsApp's business-scoped user id (BSUID)",
                                examples=["US.13491208655302741918"])
    username: str | None = Field(None, description="The customer's WhatsApp username", examples=["ada"])
    kind: str = Field("person", description="`group` for a WhatsApp group's conversation")


class LastMessage(BaseModel):
    id: str | None = None
    text: str = ""
    direction: str
    type: str
    status: str | None = None


class ConversationOut(BaseModel):
    id: str = Field(examples=["665f1c2e8a4b5c6d7e8f9012"])
    account_id: str
    contact: ContactBrief
    status: ConversationStatus
    assignee_id: str | None = None
    team_id: str | None = None
    labels: list[str] = Field(default_factory=list, description="Label ids (see /api/v1/labels)")
    priority: Literal["urgent", "high", "medium", "low"] | None = None
    snoozed_until: datetime | None = None
    unread_count: int = 0
    last_message_at: datetime | None = None
    window_expires_at: datetime | None = Field(None, description="Free-form messages are allowed until then")
    window_open: bool
    last_message: LastMessage | None = None
    created_at: datetime
    updated_at: datetime


class ConversationPatch(BaseModel):
    """Send only what changes. ``status: snoozed`` needs ``snoozed_until``; null unassigns."""

    model_config = ConfigDict(extra="forbid")
    status: ConversationStatus | None = None
    snoozed_until: datetime | None = Field(None, description="With status snoozed (or alone): hide until then")
    assignee_id: str | None = Field(None, description="A user id of the workspace; null to unassign")
    team_id: str | None = Field(None, description="A team id; null to remove the team")
    labels: list[str] | None = Field(None, description="The full list of label ids")
    priority: Literal["urgent", "high", "medium", "low", "none"] | None = Field(
        None, description="\"none\" clears it")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4096, examples=["Customer prefers email follow-ups."])


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def conversation_out(conversation: Conversation, contact: object | None) -> ConversationOut:
    preview = conversation.last_message
    return ConversationOut(
        id=str(conversation.id), account_id=str(conversation.account_id),
        contact=ContactBrief(id=str(conversation.contact_id), wa_id=getattr(contact, "wa_id", None),
                             name=getattr(contact, "display_name", None), phone=getattr(contact, "phone", None),
                             user_id=getattr(contact, "user_id", None), username=getattr(contact, "username", None),
                             kind=getattr(contact, "kind", "person")),
        status=conversation.status, assignee_id=str(conversation.assignee_id) if conversation.assignee_id else None,
        team_id=str(conversation.team_id) if conversation.team_id else None, labels=list(conversation.labels),
        priority=conversation.priority,
        snoozed_until=_utc(conversation.snoozed_until), unread_count=conversation.unread_count,
        last_message_at=_utc(conversation.last_message_at), window_expires_at=_utc(conversation.window_expires_at),
        window_open=conversation.window_open(),
        last_message=LastMessage(id=str(preview.message_id) if preview.message_id else None, text=preview.text,
                                 direction=preview.direction, type=preview.type, status=preview.status)
        if preview else None,
        created_at=as_utc(conversation.created_at), updated_at=as_utc(conversation.updated_at),
    )


class ConversationList(BaseModel):
    data: list[ConversationOut]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last")
