"""WhatsAppAccount: one connected Cloud API phone number of a workspace."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pymongo
from pydantic import BaseModel, Field

from app.db import WorkspaceDocument, utcnow


class SendError(BaseModel):
    """The last error Meta answered for this number (shown on its health panel)."""

    code: int | None = None
    title: str = ""
    detail: str = ""
    at: datetime = Field(default_factory=utcnow)


class SendingStopped(BaseModel):
    """Meta restricted or locked the number for policy (368, 131031): its sends stay queued until an
    admin has dealt with it in Meta's Business Manager and presses "Resume sending"."""

    code: int | None = None
    title: str = ""
    detail: str = ""
    at: datetime = Field(default_factory=utcnow)


class AccountHealth(BaseModel):
    """What we know of a number's state, fed by sends, webhooks and Meta's account updates."""

    token_state: Literal["unknown", "ok", "invalid"] = "unknown"
    """"invalid" after Meta answered 0/190: sends stay queued until an admin sets a new token."""
    last_webhook_at: datetime | None = None
    last_send_error: SendError | None = None
    quality_rating: str | None = None
    messaging_limit_tier: str | None = None
    name_status: str | None = None
    verified_name: str | None = None
    account_events: list[dict] = Field(default_factory=list)
    """Recent account_update / phone_number_* / alerts events from Meta (newest last, capped)."""
    circuit_open_until: datetime | None = None
    """While set and in the future, sends are held: a run of transient failures tripped the breaker."""
    last_checked_at: datetime | None = None
    """When an admin last ran "Test connection" (or a sync read the number from Meta)."""
    last_check_error: str | None = None
    """Meta's error of the last failed connection test, in words; None after a good one."""
    throughput_level: str | None = None
    """Meta's throughput level (STANDARD = 80 mps, HIGH = up to 1,000)."""
    number_status: str | None = None
    """Meta's status of the number (CONNECTED, FLAGGED, RESTRICTED ...)."""
    sending_stopped: SendingStopped | None = None
    """Set when Meta answered 368 / 131031: sends are held (not failed) until an admin resumes them."""
    spam_limited_at: datetime | None = None
    spam_limited_until: datetime | None = None
    """Meta answered 131048 (customers flagged the number's messages as spam) at ``spam_limited_at``: the
    outbox backs off until ``spam_limited_until``, and a broadcast started or resumed before the answer
    pauses instead of queuing more (an admin's resume sends on, as the outbox's pace allows)."""


class WhatsAppAccount(WorkspaceDocument):
    """A phone number connected through Meta's Cloud API. Secrets are stored encrypted."""

    name: str
    phone_number_id: str
    waba_id: str
    display_phone_number: str
    access_token_encrypted: str
    access_token_last4: str = ""
    app_secret_encrypted: str
    app_secret_last4: str = ""
    verify_token: str
    webhook_key: str
    """The unguessable path segment of this number's webhook URL."""
    mps: int = 80
    """Messages per second this number may send (Meta's throughput tier)."""
    enabled: bool = True
    health: AccountHealth = Field(default_factory=AccountHealth)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "accounts"
        indexes = [
            # A number is connected to one workspace only, across the whole installation.
            pymongo.IndexModel([("phone_number_id", 1)], unique=True),
            pymongo.IndexModel([("webhook_key", 1)], unique=True),
            pymongo.IndexModel([("workspace_id", 1), ("created_at", 1)]),
        ]
