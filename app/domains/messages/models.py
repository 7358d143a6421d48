"""Message and its delivery state machine; PendingStatus for statuses that beat their message."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import pymongo
from beanie import Document, Insert, PydanticObjectId, Replace, Save, before_event
from pydantic import BaseModel, Field

from app.db import WorkspaceDocument, utcnow


class MessageStatus(StrEnum):
    QUEUED = "queued"        # in our outbox
    ACCEPTED = "accepted"    # Meta answered with a wamid
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"        # voice note first played
    FAILED = "failed"
    RECEIVED = "received"    # inbound


# Outbound progress only moves forward along this order; failed is terminal.
_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.ACCEPTED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
    MessageStatus.PLAYED: 5,
}


def can_advance(current: MessageStatus, new: MessageStatus) -> bool:
    """True when ``new`` moves the message forward (a late 'delivered' after 'read' does not)."""
    if current is MessageStatus.FAILED:
        return False
    if new is MessageStatus.FAILED:
        return True
    return _RANK.get(new, -1) > _RANK.get(current, -1)


class MessageError(BaseModel):
    code: int | None = None
    title: str = ""
    detail: str = ""
    agent_message: str = ""
    """A sentence an agent understands (from app.whatsapp.errors)."""


class MessagePricing(BaseModel):
    """Meta's pricing of one outbound message, as its status webhooks carry it (per message since July 2025)."""

    billable: bool | None = None
    """False for free messages (service replies inside the customer service window, free entry points)."""
    model: str | None = None
    """Meta's ``pricing_model``: PMP (per message, since July 2025) or CBP (per conversation, before)."""
    type: str | None = None
    """regular, free_customer_service or free_entry_point (PMP)."""
    category: str | None = None
    """marketing, utility, authentication, authentication_international, service, referral_conversion,
    marketplace, group_* ..."""

    @classmethod
    def from_webhook(cls, pricing: Mapping[str, Any] | None) -> MessagePricing | None:
        """A status webhook's ``pricing`` object (None when it has none)."""
        if not pricing:
            return None
        billable = pricing.get("billable")
        found = cls(billable=billable if isinstance(billable, bool) else None,
                    model=_text(pricing.get("pricing_model")), type=_text(pricing.get("type")),
                    category=_text(pricing.get("category")))
        return found if found != cls() else None

    @property
    def label(self) -> str:
        """For the inbox: "Marketing · billable", "Service · free"."""
        category = self.category or ""
        words = _CATEGORY_LABELS.get(category) or category.replace("_", " ").capitalize() or "WhatsApp pricing"
        charge = None if self.billable is None else "billable" if self.billable else "free"
        return " · ".join(x for x in (words, charge) if x)

    @property
    def detail(self) -> str:
        """Meta's own words, for a tooltip: "WhatsApp pricing: PMP, regular, marketing"."""
        words = ", ".join(x for x in (self.model, self.type, self.category) if x)
        return f"WhatsApp pricing: {words}" if words else "WhatsApp pricing"


_CATEGORY_LABELS = {"authentication_international": "Authentication (international)",
                    "referral_conversion": "Referral conversion (free entry point)"}

META_STATUS_LABELS = {"held_for_quality_assessment": "Held for quality assessment", "paused": "Paused by WhatsApp"}
"""The send answer's ``message_status`` other than "accepted", in words (marketing templates may be held for
a quality assessment, then sent later or dropped; paused: the template is paused)."""


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


class Reaction(BaseModel):
    by: Literal["customer", "agent"]
    emoji: str
    user_id: PydanticObjectId | None = None
    wamid: str | None = None
    at: datetime = Field(default_factory=utcnow)


class Edit(BaseModel):
    """A previous version of an edited message."""

    content: dict[str, Any] | list[Any]
    replaced_at: datetime = Field(default_factory=utcnow)
    type: str | None = None
    """The message's type before this change (an edit may change a media message's type)."""
    wamid: str | None = None
    """The edit (or revoke) message's own wamid: applying the same edit twice is a no-op."""


class MediaRef(BaseModel):
    """A media attachment: Meta's id and, once fetched, our stored copy."""

    meta_media_id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    size: int | None = None
    filename: str | None = None
    stored_file_id: PydanticObjectId | None = None
    state: Literal["pending", "stored", "failed"] = "pending"
    error: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    """When a failed download will be tried again (shown on the message while pending)."""


class Message(WorkspaceDocument):
    conversation_id: PydanticObjectId
    account_id: PydanticObjectId
    contact_id: PydanticObjectId
    direction: Literal["inbound", "outbound", "internal"]
    type: str
    """Meta's message type (text, image, template, interactive, ...), or note / event for internal ones."""
    content: dict[str, Any] | list[Any] = Field(default_factory=dict)
    """Meta's object for that type, exactly as sent or received (a list for ``contacts``)."""
    wamid: str | None = None
    status: MessageStatus
    status_at: dict[str, datetime] = Field(default_factory=dict)
    error: MessageError | None = None
    reply_to_wamid: str | None = None
    reply_to_id: PydanticObjectId | None = None
    context: dict[str, Any] | None = None
    referral: dict[str, Any] | None = None
    reactions: list[Reaction] = Field(default_factory=list)
    edits: list[Edit] = Field(default_factory=list)
    deleted_at: datetime | None = None
    media: MediaRef | None = None
    sender_contact_id: PydanticObjectId | None = None
    """In a group conversation: the participant who wrote an inbound message (``contact_id`` is the group)."""
    sent_by: PydanticObjectId | None = None
    """The agent who wrote it (None for customers, API keys and automations)."""
    via: str | None = None
    """How an outbound message was created: inbox, api, broadcast, automation."""
    automation: dict[str, str] | None = None
    """Sent by a workflow: {"workflow_id", "name", "run_id"} (the thread names the workflow)."""
    broadcast: dict[str, str] | None = None
    """Sent by a broadcast: {"id", "name"} (the thread names it; its progress counts these)."""
    rendered: dict[str, Any] | None = None
    """A template we sent as the customer read it (header, body, footer, buttons with the parameters
    filled in: app.whatsapp.templates.render_template), for the thread and the list."""
    priority: Literal["agent", "bulk"] = "agent"
    marketing: bool = False
    """Outbound: a MARKETING template (never sent to a contact who has opted out, even once queued)."""
    pricing: MessagePricing | None = None
    """Outbound: Meta's pricing from its status webhooks (the last status that carries it wins)."""
    pricing_category: str | None = None
    """``pricing.category``, kept beside it (messages stored before ``pricing`` have only this)."""
    meta_status: str | None = None
    """Outbound: the send answer's ``message_status``: accepted, held_for_quality_assessment or paused."""
    attempts: int = 0
    idempotency_key: str | None = None
    recipient: str | None = None
    """Outbound: the E.164 number it goes to (set by the outbox, so the sender needs no contact lookup)."""
    timestamp: datetime = Field(default_factory=utcnow)
    """When it happened: Meta's timestamp for inbound, creation time for outbound."""
    updated_at: datetime = Field(default_factory=utcnow)
    response: dict[str, Any] | None = None
    """Outbound, a person's answer to a waiting customer: {"since": when they started waiting, "first": it
    was their first wait since the conversation was started or reopened} (the reports' response times)."""
    retries: int = 0
    """Times a person retried it after it failed (each a new attempt of the same message: OutboxService.retry)."""
    discarded: dict[str, Any] | None = None
    """A failed message an admin set aside, {"at", "by"}: still failed in its thread, out of the failed messages'
    list (app/domains/failures)."""
    trace: str | None = None
    """The W3C traceparent of the request that stored it, when tracing is on: its send is a span of that trace."""
    cause: str | None = None
    """The request id of what stored it (an API call, an agent's send, the webhook it came in): log lines of its
    send and statuses name it (app/correlation.py)."""
    replied_at: datetime | None = None
    """Our template: when the customer answered it (their next message, within a day: the reports' replies per
    template; conversations.services._answer_to_template)."""
    opened: Literal["new"] | None = None
    """Inbound: this customer message started a new conversation (the reports count new conversations so)."""
    conversation_applied: bool = False
    """Inbound: its unread count / window / preview effect on the conversation was applied (once)."""
    search_tokens: list[str] = Field(default_factory=list)
    """Words of its text for the inbox search (app/domains/conversations/search.py), set on insert."""

    @property
    def pricing_info(self) -> MessagePricing | None:
        """Meta's pricing, or what a message stored before ``pricing`` kept of it (the category)."""
        if self.pricing is not None:
            return self.pricing
        return MessagePricing(category=self.pricing_category) if self.pricing_category else None

    @property
    def meta_status_label(self) -> str:
        """The send answer's message_status in words when it is not "accepted" (else "")."""
        if not self.meta_status or self.meta_status == "accepted":
            return ""
        return META_STATUS_LABELS.get(self.meta_status) or self.meta_status.replace("_", " ").capitalize()

    @before_event(Insert, Replace, Save)
    def _fill_search_tokens(self) -> None:
        from app.domains.conversations.search import message_tokens

        self.search_tokens = message_tokens(self.content)

    class Settings:
        name = "messages"
        indexes = [
            # One message per wamid, enforced by the database (outbound ones get it on acceptance).
            pymongo.IndexModel([("wamid", 1)], unique=True, partialFilterExpression={"wamid": {"$type": "string"}}),
            pymongo.IndexModel([("workspace_id", 1), ("conversation_id", 1), ("_id", -1)]),
            pymongo.IndexModel([("account_id", 1), ("status", 1), ("_id", 1)]),
            pymongo.IndexModel([("workspace_id", 1), ("idempotency_key", 1)], unique=True,
                               partialFilterExpression={"idempotency_key": {"$type": "string"}}),
            pymongo.IndexModel([("workspace_id", 1), ("contact_id", 1)]),
            # $gt "": mongod proves {"broadcast.id": "<id>"} implies it (a $type partial it cannot use for reads).
            pymongo.IndexModel([("broadcast.id", 1), ("status", 1), ("error.code", 1)],
                               partialFilterExpression={"broadcast.id": {"$gt": ""}}),
            pymongo.IndexModel([("workspace_id", 1), ("timestamp", 1)]),
            # What changed since the reports' rollups were last refreshed (reports/rollups.py).
            pymongo.IndexModel([("workspace_id", 1), ("updated_at", 1)]),
            # Inbox search: anchored prefix regexes on lowercased words (multikey).
            pymongo.IndexModel([("workspace_id", 1), ("search_tokens", 1)]),
            # Lookups by wamid (webhook dedupe, statuses, reactions, edits, quoted messages) and by
            # idempotency key: workspace-scoped equalities. mongod cannot answer them from the unique
            # indexes above: it uses a partial index only when it can prove the query implies the
            # partial filter, and it never derives a $type from a value ({wamid: "x"} does not imply
            # {wamid: {$type: "string"}}). It does imply {wamid: {$gt: ""}}, hence these filters
            # (only documents with the key are indexed). tests/integration/test_inbox_indexes.py.
            # The partial field leads: SecantusDB (the embedded server) answers {wamid: "x"} wrongly,
            # with no result, from a partial (workspace_id, wamid) index. The trailing _id only
            # because Beanie keys indexes by their set of field names: an index on the same fields
            # as the unique (workspace_id, idempotency_key) one would silently replace it.
            pymongo.IndexModel([("wamid", 1), ("workspace_id", 1)], partialFilterExpression={"wamid": {"$gt": ""}}),
            pymongo.IndexModel([("idempotency_key", 1), ("workspace_id", 1), ("_id", 1)],
                               partialFilterExpression={"idempotency_key": {"$gt": ""}}),
            # The outbox sweeper: queued outbound messages in queued (_id) order. Only queued ones are
            # indexed: they are few, and a status change of any other message leaves this index alone.
            pymongo.IndexModel([("status", 1), ("direction", 1), ("_id", 1)], partialFilterExpression={"status": "queued"}),
        ]


class PendingStatus(Document):
    """A status webhook for a wamid we have not stored yet; applied when the message appears."""

    wamid: str
    status: MessageStatus
    timestamp: datetime
    error: MessageError | None = None
    pricing: MessagePricing | None = None
    pricing_category: str | None = None
    """Statuses kept before ``pricing`` existed have only the category."""
    received_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "pending_statuses"
        indexes = [
            pymongo.IndexModel([("wamid", 1), ("status", 1)], unique=True),
            pymongo.IndexModel([("received_at", 1)], expireAfterSeconds=7 * 24 * 3600),
        ]
