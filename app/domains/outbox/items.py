"""What a drainer holds: the queued message as read for sending, an entry in flight, a conversation's FIFO."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from bson import ObjectId

from app.db import as_utc
from app.domains.messages.models import Message
from app.domains.outbox.lanes import Entry
from app.domains.outbox.media import OutboundMedia


@dataclass(slots=True)
class Outgoing:
    """What a drainer needs of a queued Message (read raw: no document is built per send; the few
    paths that need the document, a failure or an early status, load it)."""

    id: ObjectId
    workspace_id: ObjectId
    conversation_id: ObjectId
    type: str
    content: Any
    recipient: str | None
    reply_to_wamid: str | None
    stored_file_id: ObjectId | None
    queued_at: float
    """When it was queued (or queued again by a retry), epoch seconds: a message held while the
    number's circuit is open fails once it has waited longer than the retry window."""
    contact_id: ObjectId | None = None
    marketing: bool = False
    """A MARKETING template: checked against the contact's opt-out again just before it leaves."""
    cause: str | None = None
    """The request id that stored it (Message.cause): the send's log line names it."""
    trace: str | None = None
    """The trace it was stored in (Message.trace): the send is a span of it."""

    @classmethod
    def of(cls, message: Message) -> Outgoing:
        """From the message the outbox just stored."""
        queued = message.status_at.get("queued") or message.created_at
        assert message.id is not None, "stored first"
        return cls(message.id, message.workspace_id, message.conversation_id, message.type, message.content,
                   message.recipient, message.reply_to_wamid,
                   message.media.stored_file_id if message.media else None, as_utc(queued).timestamp(),
                   message.contact_id, message.marketing, message.cause, message.trace)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Outgoing:
        """From a document read with OUTGOING_FIELDS."""
        media = raw.get("media") or {}
        queued = (raw.get("status_at") or {}).get("queued") or raw["_id"].generation_time
        if queued.tzinfo is None:
            queued = queued.replace(tzinfo=UTC)
        return cls(raw["_id"], raw["workspace_id"], raw["conversation_id"], raw["type"], raw.get("content"),
                   raw.get("recipient"), raw.get("reply_to_wamid"), media.get("stored_file_id"), queued.timestamp(),
                   raw.get("contact_id"), bool(raw.get("marketing")), raw.get("cause"), raw.get("trace"))


    def encode(self) -> str:
        """What the lane keeps beside the entry, so a drainer sends without reading the message again."""
        return json.dumps([str(self.id), str(self.workspace_id), str(self.conversation_id), self.type, self.content,
                           self.recipient, self.reply_to_wamid,
                           str(self.stored_file_id) if self.stored_file_id is not None else None, self.queued_at,
                           str(self.contact_id) if self.contact_id is not None else None, self.marketing,
                           self.cause, self.trace],
                          separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> Outgoing:
        (id_, workspace_id, conversation_id, type_, content, recipient, reply_to_wamid, stored_file_id,
         queued_at, contact_id, marketing, cause, trace) = json.loads(raw)  # another shape: read from the database
        return cls(ObjectId(id_), ObjectId(workspace_id), ObjectId(conversation_id), type_, content, recipient,
                   reply_to_wamid, ObjectId(stored_file_id) if stored_file_id else None, float(queued_at),
                   ObjectId(contact_id) if contact_id else None, bool(marketing), cause, trace)


OUTGOING_FIELDS = {"workspace_id": 1, "conversation_id": 1, "type": 1, "content": 1, "recipient": 1,
                   "reply_to_wamid": 1, "media.stored_file_id": 1, "status_at.queued": 1, "contact_id": 1,
                   "marketing": 1, "cause": 1, "trace": 1}
"""The fields of a queued Message a send reads (Outgoing.from_raw)."""


@dataclass(eq=False)
class Item:
    entry: Entry
    message: Outgoing
    body: dict[str, Any]
    seq: int
    attempts: int = 0
    first_at: float = 0.0
    media: OutboundMedia | None = None


@dataclass(eq=False)
class Conv:
    items: deque[Item] = field(default_factory=deque)
    busy: bool = False
    blocked_until: float = 0.0

    def rank(self) -> tuple[int, int]:
        head = self.items[0]
        return (0 if head.entry.lane == "a" else 1, head.seq)
