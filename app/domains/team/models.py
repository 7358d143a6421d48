"""Team (a group of agents for assignment) and Invitation (a one-time link to set a password)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pymongo
from beanie import PydanticObjectId
from pydantic import Field

from app.db import WorkspaceDocument, utcnow


class Team(WorkspaceDocument):
    """A named group of users that conversations can be assigned to."""

    name: str
    member_ids: list[PydanticObjectId] = Field(default_factory=list)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "teams"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("name", 1)], unique=True),
            pymongo.IndexModel([("member_ids", 1)]),
        ]


class Invitation(WorkspaceDocument):
    """A one-time link that lets a user choose a password (new user, or a reset); stores only a hash."""

    user_id: PydanticObjectId
    token_hash: str
    purpose: Literal["invite", "reset"] = "invite"
    expires_at: datetime
    used_at: datetime | None = None

    class Settings:
        name = "invitations"
        indexes = [
            pymongo.IndexModel([("token_hash", 1)], unique=True),
            pymongo.IndexModel([("user_id", 1)]),
            # Spent and expired links are useless: Mongo removes them a day after they expire.
            pymongo.IndexModel([("expires_at", 1)], expireAfterSeconds=86400),
        ]
