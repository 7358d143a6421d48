"""Workspace, User, ApiKey and WebSession documents."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from app.db import WorkspaceDocument, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    """Sees every conversation and reassigns them; no admin screens."""
    AGENT = "agent"


class Availability(StrEnum):
    """What a user says about themselves; auto-assignment only gives conversations to ``online`` users
    who also have an inbox tab open (app/domains/assignment/presence.py)."""

    ONLINE = "online"
    BUSY = "busy"
    AWAY = "away"
    OFFLINE = "offline"


class Workspace(Document):
    """A tenant: one business with its numbers, team and conversations."""

    name: str
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "workspaces"


class User(WorkspaceDocument):
    """A person who signs in: an admin or an agent of one workspace."""

    email: str
    name: str = ""
    role: Role = Role.AGENT
    password_hash: str
    active: bool = True
    deactivated_at: datetime | None = None
    all_numbers: bool = True
    """An agent sees every number's conversations, unless an admin chose some (``number_ids``)."""
    number_ids: list[PydanticObjectId] = Field(default_factory=list)
    """The numbers whose conversations an agent sees when ``all_numbers`` is off (app/domains/access)."""
    availability: Availability = Availability.ONLINE
    """The status the user chose; without an open inbox tab they show (and count) as offline."""
    availability_changed_at: datetime | None = None

    class Settings:
        name = "users"
        indexes = [
            # Sign-in has only an email, so an email belongs to one user in the whole product.
            pymongo.IndexModel([("email", 1)], unique=True),
            pymongo.IndexModel([("workspace_id", 1), ("role", 1)]),
        ]


class ApiKey(WorkspaceDocument):
    """A Bearer key for /api/v1; only its SHA-256 is stored."""

    name: str
    role: Role
    key_hash: str
    prefix: str
    user_id: PydanticObjectId | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    class Settings:
        name = "api_keys"
        indexes = [
            pymongo.IndexModel([("key_hash", 1)], unique=True),
            pymongo.IndexModel([("workspace_id", 1), ("created_at", -1)]),
        ]


class WebSession(WorkspaceDocument):
    """A signed-in browser; the cookie holds a random token, we store its SHA-256."""

    token_hash: str
    user_id: PydanticObjectId
    expires_at: datetime

    class Settings:
        name = "web_sessions"
        indexes = [
            pymongo.IndexModel([("token_hash", 1)], unique=True),
            pymongo.IndexModel([("user_id", 1)]),
            pymongo.IndexModel([("expires_at", 1)], expireAfterSeconds=0),
        ]
