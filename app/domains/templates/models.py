"""MessageTemplate: one template in one language of one WhatsApp Business Account, as Meta has it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from pydantic import Field

from app.db import WorkspaceDocument, utcnow

# Meta's template statuses; events such as FLAGGED or IN_APPEAL are statuses too.
STATUSES = ("APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "FLAGGED", "IN_APPEAL",
            "PENDING_DELETION", "LIMIT_EXCEEDED")
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")


class MessageTemplate(WorkspaceDocument):
    """A template definition (Meta's ``components``) with its review status and quality."""

    waba_id: str
    meta_id: str
    """Meta's template id (``message_template_id`` in webhooks, ``hsm_id`` when deleting)."""
    name: str
    language: str
    category: str
    status: str = "PENDING"
    parameter_format: str = "POSITIONAL"
    components: list[dict[str, Any]] = Field(default_factory=list)
    rejected_reason: str | None = None
    """Meta's reason code (INVALID_FORMAT, TAG_CONTENT_MISMATCH ...) while rejected, paused or disabled."""
    rejection_detail: str | None = None
    """Meta's explanation and recommendation in words, when the webhook carried one."""
    quality_score: str | None = None
    """GREEN / YELLOW / RED / UNKNOWN, from syncs and quality webhooks."""
    previous_category: str | None = None
    synced_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "message_templates"
        indexes = [
            # Meta allows one template per name and language in a WABA; syncs upsert on this key.
            pymongo.IndexModel([("workspace_id", 1), ("waba_id", 1), ("name", 1), ("language", 1)], unique=True),
            pymongo.IndexModel([("workspace_id", 1), ("meta_id", 1)]),
            pymongo.IndexModel([("workspace_id", 1), ("status", 1), ("name", 1)]),
        ]

    @property
    def usable(self) -> bool:
        """Only approved templates can be sent."""
        return self.status == "APPROVED"
