"""WebhookEvent: one raw webhook body, stored before we answer Meta; TemplateStatusEvent: template news.

A WebhookEvent's ``_id`` is the SHA-256 of the body, so "unique by body hash" is the primary key
itself: the duplicate check costs nothing more than the insert (no second unique index), and the
id doubles as the arq job id of its ingestion.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import PydanticObjectId
from pydantic import Field

from app.db import WorkspaceDocument, utcnow

MAX_INGEST_ATTEMPTS = 10
"""After this many failed ingestions an event is left alone (kept, with its error) for a human."""


class WebhookEvent(WorkspaceDocument):
    """A webhook body exactly as Meta signed it, and how its ingestion went."""

    id: str = Field(default=None)  # type: ignore[assignment]
    """SHA-256 (hex) of the raw body."""
    account_id: PydanticObjectId
    """The number whose webhook URL received it (changes are routed by their own phone_number_id)."""
    body: bytes
    size: int = 0
    received_at: datetime = Field(default_factory=utcnow)
    ingested_at: datetime | None = None
    """Set once every change of the body has been applied; None while waiting or failing."""
    attempts: int = 0
    error: str | None = None
    """The last ingestion failure, or why the body could not be used at all (kept, not retried)."""
    notes: list[str] = Field(default_factory=list)
    """Things ingestion skipped but kept, e.g. a phone_number_id that is not connected here."""
    fields: list[str] = Field(default_factory=list)
    """The ``field`` of every change, for the admin's event list."""

    class Settings:
        name = "webhook_events"
        indexes = [
            # The sweeper's query: not ingested yet, oldest first.
            pymongo.IndexModel([("ingested_at", 1), ("received_at", 1)]),
            pymongo.IndexModel([("workspace_id", 1), ("received_at", -1)]),
        ]


class TemplateStatusEvent(WorkspaceDocument):
    """A template status, quality, category or components webhook, as received (newest wins on display).

    Kept whatever the template store holds, so the admin's template screens can show the history
    and a template synced later still gets its latest review outcome.
    """

    waba_id: str
    field: str
    """message_template_status_update, message_template_quality_update, template_category_update, ..."""
    meta_template_id: str | None = None
    name: str | None = None
    language: str | None = None
    event: str | None = None
    """The new status (APPROVED, REJECTED, PAUSED ...) for status updates."""
    reason: str | None = None
    quality: str | None = None
    category: str | None = None
    previous: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)
    webhook_event_id: str | None = None
    occurred_at: datetime | None = None

    class Settings:
        name = "template_status_events"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("meta_template_id", 1), ("created_at", -1)]),
            # One record per change of one webhook body: re-ingesting the body adds nothing.
            pymongo.IndexModel([("webhook_event_id", 1), ("field", 1), ("meta_template_id", 1), ("event", 1)],
                               unique=True, partialFilterExpression={"webhook_event_id": {"$type": "string"}}),
        ]
