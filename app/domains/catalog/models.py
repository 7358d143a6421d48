"""CannedResponse, Label and ContactAttribute: small per-workspace definitions used by the inbox."""

from __future__ import annotations

from datetime import datetime

import pymongo
from pydantic import Field

from app.db import WorkspaceDocument, utcnow

ATTRIBUTE_TYPES = ("text", "number", "date", "datetime", "boolean", "list")


class CannedResponse(WorkspaceDocument):
    """A reply agents insert by typing ``/shortcut``; ``{{contact.name}}``-style variables are filled in."""

    shortcut: str
    text: str
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "canned_responses"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("shortcut", 1)], unique=True)]


class Label(WorkspaceDocument):
    """A coloured tag for conversations."""

    name: str
    colour: str = "#128c7e"
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "labels"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("name", 1)], unique=True)]


class ContactAttribute(WorkspaceDocument):
    """A custom field on contacts: stored under ``contact.attributes[key]``."""

    key: str
    """snake_case identifier, also the variable name in canned responses ({{contact.<key>}})."""
    name: str
    type: str = "text"
    options: list[str] = Field(default_factory=list)
    """The allowed values of a ``list`` attribute."""
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "contact_attributes"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("key", 1)], unique=True)]
