"""BusinessHours: one settings document per workspace (hours, holidays, away message, greeting)."""

from __future__ import annotations

from datetime import datetime

import pymongo
from pydantic import Field

from app.db import WorkspaceDocument, utcnow
from app.domains.business_hours.rules import Holiday, OpenInterval, default_weekly


class BusinessHours(WorkspaceDocument):
    """The workspace's opening hours and automatic replies (rules.py reads them)."""

    enabled: bool = False
    """Business hours apply: the inbox shows when it is closed, the away message goes out when it is."""
    time_zone: str = "UTC"
    """IANA name; the hours are wall-clock times there."""
    weekly: dict[str, list[OpenInterval]] = Field(default_factory=default_weekly)
    """mon … sun -> open intervals (none: closed that day)."""
    holidays: list[Holiday] = Field(default_factory=list)
    away_message: str = ""
    """Sent to a customer who writes while closed, once per conversation per closed period ("" = none)."""
    greeting_message: str = ""
    """Sent once on a conversation's first customer message, open or closed ("" = none)."""
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def replies(self) -> bool:
        """Whether a customer's message may get an automatic reply (the webhook path's cached question)."""
        return bool(self.greeting_message) or (self.enabled and bool(self.away_message))

    class Settings:
        name = "business_hours"
        indexes = [pymongo.IndexModel([("workspace_id", 1)], unique=True)]
