"""Broadcasts: a template campaign to a frozen audience, and one document per recipient.

A recipient is written once when the broadcast starts (the audience is frozen then: a segment that
changes later changes nothing), unique per (broadcast, contact), and moves pending -> queued (its
message stored through the one send path, idempotency key ``bc:<broadcast>:<contact>``) or skipped
(with a reason). What happens to the message after that (sent, delivered, read, failed) is the
message's own status, counted from the messages (``Message.broadcast_id``), never copied.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pymongo
from beanie import PydanticObjectId
from pydantic import BaseModel, Field

from app.db import WorkspaceDocument, utcnow

BroadcastStatus = Literal["draft", "scheduled", "sending", "paused", "completed", "cancelled"]
RecipientStatus = Literal["pending", "claimed", "queued", "skipped"]
"""claimed: a slice is storing its message (a slice that died leaves it claimed: the next one makes it pending)."""
RUNNING: tuple[str, ...] = ("scheduled", "sending")


class ParamSource(BaseModel):
    """One body parameter of the template: a contact field or attribute, or a fixed text; ``fallback`` when
    the contact has no value (no fallback: the contact is skipped, saying which value was missing)."""

    source: Literal["attribute", "name", "phone", "text"] = "text"
    value: str = ""
    """The attribute's key, or the fixed text."""
    fallback: str | None = None


class UploadedList(BaseModel):
    """A CSV uploaded for the broadcast: imported as contacts (created or updated, Contacts → Import), each row's
    contact tagged ``tag``, which puts it in the audience."""

    import_id: str
    tag: str
    filename: str = ""


class Audience(BaseModel):
    segment_ids: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    contact_ids: list[str] = Field(default_factory=list)
    """Contacts picked by id."""
    lists: list[UploadedList] = Field(default_factory=list)
    """Uploaded lists (POST /api/v1/broadcasts/{id}/lists); a draft saved without one drops it."""
    exclude_segment_ids: list[str] = Field(default_factory=list)
    exclude_tags: list[str] = Field(default_factory=list)


class Broadcast(WorkspaceDocument):
    name: str
    account_id: PydanticObjectId
    template_name: str
    language: str
    params: list[ParamSource] = Field(default_factory=list)
    header_link: str | None = None
    """A media header's https link (image, video or document templates)."""
    audience: Audience = Field(default_factory=Audience)
    status: BroadcastStatus = "draft"
    scheduled_at: datetime | None = None
    """When it starts (UTC); None: when started by hand."""
    local_time: str | None = None
    """"HH:MM": each recipient gets it at that time of their own day (the time zone of their number's
    country; the workspace's when the number does not tell), the first such moment after the start."""
    open_conversations: bool = False
    """False: a recipient without a conversation gets one created resolved, so it shows in the inbox only
    when they answer; True: created open."""
    pause_reason: str | None = None
    total: int = 0
    """Recipients frozen at start (queued + skipped + pending)."""
    frozen_at: datetime | None = None
    started_at: datetime | None = None
    resumed_at: datetime | None = None
    """The last start or resume: failures before it (what paused it) no longer pause it."""
    completed_at: datetime | None = None
    next_send_at: datetime | None = None
    """Set while the number's daily messaging limit is reached: when the oldest of its 24-h window rolls off."""
    seq_end: int | None = None
    """Frozen recipients have places (``BroadcastRecipient.seq``) below this (None: frozen before places existed,
    or not yet)."""
    cursor: int = 0
    """The first place not yet handed over (each batch reads the next places: a bounded index range)."""
    owner: str | None = None
    lease_until: datetime | None = None
    generation: int = 0
    created_by: PydanticObjectId | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "broadcasts"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("_id", -1)]),
            pymongo.IndexModel([("status", 1), ("scheduled_at", 1)]),
            pymongo.IndexModel([("account_id", 1), ("status", 1)]),
        ]


class BroadcastRecipient(WorkspaceDocument):
    broadcast_id: PydanticObjectId
    contact_id: PydanticObjectId
    status: RecipientStatus = "pending"
    not_before: datetime | None = None
    """Local-time broadcasts: not sent before this moment (their local send time)."""
    reason: str | None = None
    """Skipped: why (opted out, no number, a missing value, refused by the send path)."""
    message_id: PydanticObjectId | None = None
    account_id: PydanticObjectId | None = None
    """Queued: the number it goes from (its daily messaging limit counts these)."""
    replied_at: datetime | None = None
    seq: int | None = None
    """Its place in the frozen audience (the order it is sent in, unless at local times)."""
    claim: str | None = None
    """While claimed: the batch that claimed it (it reads back the recipients it holds)."""
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "broadcast_recipients"
        indexes = [
            pymongo.IndexModel([("broadcast_id", 1), ("contact_id", 1)], unique=True),
            pymongo.IndexModel([("broadcast_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("account_id", 1), ("status", 1), ("updated_at", 1)],
                               partialFilterExpression={"status": "queued"}),
            pymongo.IndexModel([("broadcast_id", 1), ("status", 1), ("_id", 1)]),
            pymongo.IndexModel([("broadcast_id", 1), ("status", 1), ("not_before", 1)]),
            pymongo.IndexModel([("broadcast_id", 1), ("seq", 1)]),
            pymongo.IndexModel([("workspace_id", 1), ("contact_id", 1), ("_id", -1)]),
        ]


def view(broadcast: Broadcast, counts: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": str(broadcast.id), "name": broadcast.name, "account_id": str(broadcast.account_id),
            "template_name": broadcast.template_name, "language": broadcast.language,
            "params": [p.model_dump() for p in broadcast.params], "header_link": broadcast.header_link,
            "audience": broadcast.audience.model_dump(), "status": broadcast.status,
            "scheduled_at": broadcast.scheduled_at.isoformat() if broadcast.scheduled_at else None,
            "open_conversations": broadcast.open_conversations, "local_time": broadcast.local_time, "pause_reason": broadcast.pause_reason,
            "total": broadcast.total, "frozen_at": broadcast.frozen_at.isoformat() if broadcast.frozen_at else None,
            "started_at": broadcast.started_at.isoformat() if broadcast.started_at else None,
            "completed_at": broadcast.completed_at.isoformat() if broadcast.completed_at else None,
            "next_send_at": broadcast.next_send_at.isoformat() if broadcast.next_send_at else None,
            "counts": counts, "created_at": broadcast.created_at.isoformat()}
