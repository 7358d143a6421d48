"""Contact: a customer of one workspace, keyed by wa_id (or Meta's business-scoped user id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import Insert, Replace, Save, before_event
from pydantic import Field

from app.db import WorkspaceDocument, utcnow


def contact_key(wa_id: str | None, user_id: str | None) -> str:
    """The identity we dedupe on: wa_id when Meta gives one, else the BSUID."""
    if wa_id:
        return f"wa:{wa_id}"
    if user_id:
        return f"user:{user_id}"
    raise ValueError("a contact needs a wa_id or a user_id")


class Contact(WorkspaceDocument):
    key: str
    wa_id: str | None = None
    user_id: str | None = None
    username: str | None = None
    profile_name: str = ""
    """The name the customer set in WhatsApp (updated from every webhook)."""
    name: str = ""
    """The name agents gave the contact; shown instead of profile_name when set."""
    phone: str | None = None
    """E.164 with +, formatted from wa_id with phonenumbers."""
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    opted_out_marketing: bool = False
    previous_wa_ids: list[str] = Field(default_factory=list)
    updated_at: datetime = Field(default_factory=utcnow)
    search_tokens: list[str] = Field(default_factory=list)
    """Words of name / profile name / username and suffixes of the number, for the inbox search."""

    @before_event(Insert, Replace, Save)
    def _fill_search_tokens(self) -> None:
        from app.domains.conversations.search import contact_tokens_of

        self.search_tokens = contact_tokens_of(self)

    @property
    def display_name(self) -> str:
        return self.name or self.profile_name or self.phone or self.username or self.key

    class Settings:
        name = "contacts"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("key", 1)], unique=True),
            pymongo.IndexModel([("workspace_id", 1), ("updated_at", -1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("phone", 1)]),
            # Inbox search (app/domains/conversations/search.py): prefix regexes on these tokens.
            pymongo.IndexModel([("workspace_id", 1), ("search_tokens", 1)]),
        ]
