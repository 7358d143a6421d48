"""What the reports keep of their own: the hourly rollups of the messages and how far they are built
(rollups.py says how they are kept exact)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field


class ReportHour(Document):
    """One number's counters for one local hour of the workspace."""

    workspace_id: PydanticObjectId
    account_id: PydanticObjectId
    hour: datetime
    """The hour's start (UTC instant of a local hour's start)."""
    counts: dict[str, int] = Field(default_factory=dict)
    waits: dict[str, bytes | list[int]] = Field(default_factory=dict)
    """Seconds, kept whole so medians are exact (packed: waits.pack): customers' waits for the answers sent in the hour ("reply":
    every answer to a waiting customer; "first": the first since the conversation was started or reopened), and
    how long the conversations resolved in the hour had been open ("resolution")."""
    reasons: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Each failure code in ``counts``: WhatsApp's title and what it means as agents read it ("title", "words")."""

    class Settings:
        name = "report_hours"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("hour", 1), ("account_id", 1)], unique=True)]


class SliceHour(Document):
    """The same counters as ReportHour for the messages of one number and local hour whose conversation is, now, in
    one slice: ``team:<id>``, ``agent:<assignee id>`` or ``label:<label id>`` (the reports' filters)."""

    workspace_id: PydanticObjectId
    slice: str
    account_id: PydanticObjectId
    hour: datetime
    counts: dict[str, int] = Field(default_factory=dict)
    waits: dict[str, bytes | list[int]] = Field(default_factory=dict)
    reasons: dict[str, dict[str, str]] = Field(default_factory=dict)

    class Settings:
        name = "report_slice_hours"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("slice", 1), ("hour", 1), ("account_id", 1)],
                                      unique=True),
                   pymongo.IndexModel([("workspace_id", 1), ("hour", 1)])]  # a recount deletes its hours


class ContactHour(Document):
    """The workspace's contact counters for one local hour (contacts belong to the workspace, not to a number):
    ``new`` (contacts created in the hour, however: a first message, an import, the API, an agent),
    ``opt_out`` / ``opt_in`` (marketing consent changes in the hour) and the same by source
    (``opt_out:keyword`` ...)."""

    workspace_id: PydanticObjectId
    hour: datetime
    counts: dict[str, int] = Field(default_factory=dict)

    class Settings:
        name = "report_contact_hours"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("hour", 1)], unique=True)]


class ReportState(Document):
    """How far a workspace's rollups are built."""

    workspace_id: PydanticObjectId
    seen_until: datetime | None = None
    """Messages changed before this (less ``OVERLAP``) are in the rollups; None: never built."""
    version: int = 1
    """What the rollups were counted for (rollups.VERSION)."""
    shift_minutes: int = 0
    """Where the local hours start, in minutes past the UTC hour, when they were built."""
    rebuild: dict[str, Any] | None = None
    """A count of the past hours under way, newest week first: {started_at, shift, first, next, end}; the hours
    from ``next`` to ``end`` are counted."""
    dirty: list[datetime] = Field(default_factory=list)
    """Hours to recompute whatever changed (messages deleted)."""
    lease: str | None = None
    lease_until: datetime | None = None

    class Settings:
        name = "report_states"
        indexes = [pymongo.IndexModel([("workspace_id", 1)], unique=True)]


class BacklogSample(Document):
    """The conversations open and pending at one quarter hour (backlog.py): ``<status>:<number id>`` for each
    number, and ``<status>:<number id>:<slice>`` for each team, agent and label within it (rollups.slices_of)."""

    workspace_id: PydanticObjectId
    at: datetime
    """The quarter hour (UTC) the sample stands for."""
    taken_at: datetime
    counts: dict[str, int] = Field(default_factory=dict)

    class Settings:
        name = "report_backlog"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("at", 1)], unique=True)]
