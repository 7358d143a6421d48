"""Subscriptions (an endpoint and the events it wants), the events we emitted, and each delivery's log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import pymongo
from beanie import PydanticObjectId
from pydantic import BaseModel, Field

from app.db import WorkspaceDocument, utcnow


class EventType(StrEnum):
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_STATUS_CHANGED = "message.status_changed"
    MESSAGE_FAILED = "message.failed"
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_UPDATED = "conversation.updated"
    CONTACT_CREATED = "contact.created"
    CONTACT_MERGED = "contact.merged"
    BROADCAST_COMPLETED = "broadcast.completed"
    BROADCAST_PAUSED = "broadcast.paused"


EVENT_DESCRIPTIONS = {
    EventType.MESSAGE_RECEIVED: "A customer sent a message.",
    EventType.MESSAGE_STATUS_CHANGED: "A message we sent moved on: accepted, sent, delivered, read, failed.",
    EventType.MESSAGE_FAILED: "A message we sent failed, with WhatsApp's error code.",
    EventType.CONVERSATION_CREATED: "A new conversation started (first message either way).",
    EventType.CONVERSATION_UPDATED: "Status, assignee, team, labels or snooze changed.",
    EventType.CONTACT_CREATED: "A new contact was created (first message or the API).",
    EventType.CONTACT_MERGED: "An admin merged two contacts: the survivor, and the id of the one merged into it.",
    EventType.BROADCAST_COMPLETED: "A broadcast handed its last recipient to the outbox, with its counts.",
    EventType.BROADCAST_PAUSED: "A broadcast paused (by a person, or by itself: a limit, an error, the template), "
                                "with the reason and its counts.",
}
# Not subscribable: sent on demand by "Send a test event" whatever the endpoint's events are.
PING_EVENT = "ping"


class Subscription(WorkspaceDocument):
    url: str
    description: str = ""
    events: list[str] = Field(default_factory=list)
    secret_encrypted: str
    """The signing secret, encrypted with runtime.secrets; shown to the admin once."""
    secret_last4: str = ""
    active: bool = True
    disabled_reason: str | None = None
    """Why we stopped delivering (shown to the admin), e.g. every delivery failed for a day."""
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    """First failed attempt since the last success; a day of failures disables the endpoint."""
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_by: PydanticObjectId | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "event_subscriptions"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("active", 1)])]


class IntegrationEvent(WorkspaceDocument):
    """One thing that happened, stored once: every subscriber gets these exact bytes (and this id)."""

    key: str
    """What happened to what, e.g. ``message.received:<message id>``: the same fact is never emitted twice."""
    type: str
    occurred_at: datetime
    body: str
    """The JSON we POST: {"id", "type", "created_at", "workspace_id", "data"}."""

    @property
    def public_id(self) -> str:
        return f"evt_{self.id}"

    class Settings:
        name = "integration_events"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("key", 1)], unique=True),
            # Events are only needed while their deliveries may be retried or redelivered.
            pymongo.IndexModel([("created_at", 1)], expireAfterSeconds=30 * 24 * 3600),
        ]


class DeliveryState(StrEnum):
    PENDING = "pending"        # waiting for its next attempt
    DELIVERED = "delivered"    # the endpoint answered 2xx
    FAILED = "failed"          # retried for the whole window, never 2xx
    CANCELLED = "cancelled"    # the endpoint was disabled or deleted first


class Attempt(BaseModel):
    at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    manual: bool = False


class Delivery(WorkspaceDocument):
    subscription_id: PydanticObjectId
    event_id: PydanticObjectId
    event_type: str
    state: DeliveryState = DeliveryState.PENDING
    attempts: list[Attempt] = Field(default_factory=list)
    next_attempt_at: datetime | None = None
    retry_until: datetime
    """Automatic retries stop here (24 h after the event; a manual redelivery starts a new window)."""
    delivered_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    def summary(self) -> dict[str, Any]:
        last = self.attempts[-1] if self.attempts else None
        return {"status_code": last.status_code if last else None, "error": last.error if last else None}

    class Settings:
        name = "event_deliveries"
        indexes = [
            pymongo.IndexModel([("subscription_id", 1), ("event_id", 1)], unique=True),
            pymongo.IndexModel([("workspace_id", 1), ("subscription_id", 1), ("_id", -1)]),
            pymongo.IndexModel([("state", 1), ("next_attempt_at", 1)]),
            pymongo.IndexModel([("created_at", 1)], expireAfterSeconds=30 * 24 * 3600),
        ]
