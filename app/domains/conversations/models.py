"""Conversation: the one thread between a number and a contact, reopened when they write again."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

import pymongo
from beanie import PydanticObjectId
from pydantic import BaseModel, Field

from app.db import WorkspaceDocument, as_utc, utcnow

SERVICE_WINDOW = timedelta(hours=24)


class ConversationStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class MessagePreview(BaseModel):
    """What the conversation list shows without loading the thread."""

    text: str = ""
    direction: str = "inbound"
    type: str = "text"
    status: str | None = None
    message_id: PydanticObjectId | None = None


class Conversation(WorkspaceDocument):
    account_id: PydanticObjectId
    contact_id: PydanticObjectId
    status: ConversationStatus = ConversationStatus.OPEN
    assignee_id: PydanticObjectId | None = None
    team_id: PydanticObjectId | None = None
    labels: list[str] = Field(default_factory=list)
    sliced_at: datetime | None = None
    """When the assignee, team or labels last changed: the reports recount its messages' hours for their filters
    (reports/rollups.py)."""
    priority: Literal["urgent", "high", "medium", "low"] | None = None
    """Set by agents, the API or a workflow (escalation); the inbox shows it and can sort by it."""
    snoozed_until: datetime | None = None
    unread_count: int = 0
    last_message_at: datetime | None = None
    last_inbound_at: datetime | None = None
    """The customer's newest message: the 24-h service window runs from here."""
    window_expires_at: datetime | None = None
    last_message: MessagePreview | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    merged_from: list[PydanticObjectId] = Field(default_factory=list)
    """Conversations folded into this one when their contacts were merged (app/domains/contacts/merge.py)."""
    opened_at: datetime | None = None
    """When it was last reopened after being resolved (None: open since ``created_at``): time to resolution."""
    awaiting_since: datetime | None = None
    """The customer's first message nobody has answered yet (None: answered, or they have not written)."""
    awaiting_first: bool = False
    """That wait is the first of the conversation since it was started or reopened (its first response)."""
    last_reply_at: datetime | None = None
    """When a person last answered (an agent in the inbox, the API, or the WhatsApp Business app)."""

    def window_open(self, now: datetime | None = None) -> bool:
        """Free-form messages may be sent only while this is true (WhatsApp's 24-h rule)."""
        return self.window_expires_at is not None and as_utc(self.window_expires_at) > (now or utcnow())

    class Settings:
        name = "conversations"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("account_id", 1), ("contact_id", 1)], unique=True),
            # The inbox list: newest activity first, with _id as the cursor tie-breaker.
            pymongo.IndexModel([("workspace_id", 1), ("last_message_at", -1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("status", 1), ("last_message_at", -1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("assignee_id", 1), ("last_message_at", -1)]),
            # The list filtered by agent ("mine", "unassigned"), number or label, in the list's own order
            # (the cursor's _id tie-breaker included, so the index gives the order and a page stops early).
            pymongo.IndexModel([("workspace_id", 1), ("assignee_id", 1), ("last_message_at", -1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("account_id", 1), ("last_message_at", -1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("labels", 1), ("last_message_at", -1), ("_id", -1)]),
            # A contact's conversations (one per number), newest first: the contact panel, and the
            # list searched by a name or number that matched one contact (contact_id equality, sorted
            # like the list). Replaces (workspace_id, contact_id), which it serves as a prefix.
            pymongo.IndexModel([("workspace_id", 1), ("contact_id", 1), ("last_message_at", -1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("updated_at", 1), ("_id", 1)]),
            # The reports' refresh: conversations whose team, assignee or labels changed since (not partial: a
            # range on sliced_at did not use a partial index on the embedded server, and scanned them all).
            pymongo.IndexModel([("workspace_id", 1), ("sliced_at", 1)]),
            # The snooze cron (every 30 s): only snoozed conversations are in it, so it stays tiny.
            pymongo.IndexModel([("status", 1), ("snoozed_until", 1)], name="snoozed_due",
                               partialFilterExpression={"status": "snoozed"}),
        ]
