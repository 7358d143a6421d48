"""Segment: a named, saved contact filter of one workspace (app/domains/contacts/filters.py's language).

The filter is kept as data, not as its Mongo query: the query is built each time it is used, so a
segment follows its contacts (its count is live) and attribute types as they are now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import PydanticObjectId
from pydantic import Field

from app.db import WorkspaceDocument, utcnow


class Segment(WorkspaceDocument):
    name: str
    name_key: str
    """The name case-folded: names are unique per workspace whatever their case."""
    filter: dict[str, Any] = Field(default_factory=dict)
    """A ContactFilter, dumped (``{"match": "all", "conditions": [...]}``)."""
    created_by: PydanticObjectId | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "segments"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("name_key", 1)], unique=True)]
