"""AssignmentRule: which new or reopened conversations are given out, to whom, and how."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from app.db import WorkspaceDocument, utcnow


class AssignmentMethod(StrEnum):
    ROUND_ROBIN = "round_robin"
    """In turn: the rule's pointer (a Redis counter) picks the next online agent."""
    LEAST_OPEN = "least_open"
    """The online agent with the fewest open conversations assigned to them."""


class AssignmentRule(WorkspaceDocument):
    """Auto-assignment for one number (or every number), among one team (or whoever sees the number)."""

    name: str
    enabled: bool = True
    account_id: PydanticObjectId | None = None
    """The number whose conversations this rule gives out; None: every number."""
    team_id: PydanticObjectId | None = None
    """Give to this team's members (conversations of another team are left alone); None: the agents and
    supervisors who see the number."""
    method: AssignmentMethod = AssignmentMethod.ROUND_ROBIN
    max_open_per_agent: int | None = None
    """An agent holding this many open conversations gets no more from this rule; None: no cap."""
    reassign_when_offline: bool = False
    """When an agent holding open conversations under this rule goes away or offline (chosen, or no inbox
    open for the presence timeout), those conversations go to an online agent by this rule: every open one
    of theirs, however it came to them (services.py, ``AutoAssigner.reassign_offline``)."""
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "assignment_rules"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("enabled", 1)]),
            # The reassignment cron: which workspaces have an enabled rule with reassign_when_offline.
            pymongo.IndexModel([("reassign_when_offline", 1), ("enabled", 1), ("workspace_id", 1)]),
        ]


class InboxMinutes(Document):
    """The minutes of one UTC hour in which a user had an inbox tab open (presence.py keeps them from the
    heartbeats): the reports' "time in the inbox"."""

    workspace_id: PydanticObjectId
    user_id: PydanticObjectId
    hour: datetime
    minutes: list[int] = Field(default_factory=list)
    """0..59, each once."""

    class Settings:
        name = "inbox_minutes"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("hour", 1), ("user_id", 1)], unique=True)]
