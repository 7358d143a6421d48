"""An audit log entry: one admin action (services.py says what is recorded, and how secrets are kept out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from app.db import utcnow


class AuditEntry(Document):
    workspace_id: PydanticObjectId
    at: datetime = Field(default_factory=utcnow)
    action: str
    """What was done, ``<thing>.<verb>``: number.token_changed, user.role_changed, api_key.created ..."""
    target_type: str
    target_id: str | None = None
    target_name: str = ""
    changes: dict[str, Any] = Field(default_factory=dict)
    """Field -> {"from", "to"}; a secret only as "changed" (never its value)."""
    actor: str = "the system"
    """Who: the person's email, "API key <name>", or "the system" (a worker, Meta's webhook)."""
    actor_user_id: PydanticObjectId | None = None
    actor_api_key_id: PydanticObjectId | None = None
    ip: str | None = None
    request_id: str | None = None

    class Settings:
        name = "audit_log"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("at", -1)]),
                   pymongo.IndexModel([("at", 1)])]  # the retention purge
