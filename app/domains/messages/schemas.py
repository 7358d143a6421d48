"""Typed JSON shapes of a message for API v1 answers and event webhooks (real OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.db import as_utc
from app.domains.messages.models import Message


class MessageErrorOut(BaseModel):
    code: int | None = Field(None, description="WhatsApp's error code", examples=[131047])
    title: str = ""
    detail: str = ""
    agent_message: str = Field("", description="The error in words an agent understands")


class ReactionOut(BaseModel):
    emoji: str = Field(examples=["👍"])
    by: Literal["customer", "agent"]
    at: datetime


class MediaOut(BaseModel):
    id: str | None = Field(None, description="Our stored copy's id (to send the same file again)")
    state: Literal["pending", "stored", "failed"]
    mime_type: str | None = None
    size: int | None = None
    filename: str | None = None
    url: str | None = Field(None, description="Where to download our stored copy (with the same API key)")
    error: str | None = Field(None, description="Why the download from WhatsApp failed (inbound)")
    attempts: int = 0
    next_attempt_at: datetime | None = None


class ReplyToOut(BaseModel):
    id: str | None = Field(None, description="Our id of the quoted message, when we have it")
    wamid: str | None = None


class EditOut(BaseModel):
    type: str | None = None
    content: Any = None
    replaced_at: datetime | None = None


class PricingOut(BaseModel):
    """Meta's pricing of an outbound message, from its status webhooks (per message since July 2025)."""

    billable: bool | None = Field(None, description="Whether Meta charges for this message", examples=[True])
    model: str | None = Field(None, description="Meta's pricing_model: PMP (per message) or CBP (per conversation, "
                                                "before July 2025)", examples=["PMP"])
    type: str | None = Field(None, description="regular, free_customer_service or free_entry_point",
                             examples=["regular"])
    category: str | None = Field(None, description="marketing, utility, authentication, "
                                                   "authentication_international, service, referral_conversion, "
                                                   "marketplace, ...", examples=["marketing"])


class MessageOut(BaseModel):
    """The one JSON shape of a message: API answers (read, send, retry, notes, reactions), event webhooks
    and exports."""

    id: str = Field(examples=["665f1c2e8a4b5c6d7e8f9012"])
    conversation_id: str
    account_id: str
    contact_id: str
    direction: Literal["inbound", "outbound", "internal"]
    type: str = Field(description="Meta's message type (text, image, template ...), or note / event for "
                                  "internal ones", examples=["text"])
    content: dict[str, Any] | list[Any] = Field(description="Meta's object for that type",
                                                examples=[{"body": "Hello!"}])
    status: str = Field(description="queued, accepted, sent, delivered, read, played, failed; received for "
                                    "inbound", examples=["delivered"])
    status_at: dict[str, datetime] = Field(description="When each status was reached")
    wamid: str | None = None
    to: str | None = Field(None, description="The recipient's number (outbound)")
    error: MessageErrorOut | None = None
    attempts: int = Field(0, description="Send attempts (outbound)")
    retries: int = Field(0, description="Times a person retried it after it failed (outbound)")
    discarded_at: datetime | None = Field(None, description="When an admin set this failed message aside")
    request_id: str | None = Field(None, description="The X-Request-ID of the request that stored it (its logs name it)")
    priority: str | None = Field(None, description="agent or bulk (outbound)")
    reply_to: ReplyToOut | None = Field(None, description="The message this one quotes")
    context: dict[str, Any] | None = Field(None, description="Meta's context object of an inbound message")
    referral: dict[str, Any] | None = Field(None, description="Meta's referral object (a click-to-WhatsApp ad)")
    reactions: list[ReactionOut] = Field(default_factory=list)
    media: MediaOut | None = None
    via: str | None = Field(None, description="inbox, api, ... for outbound messages")
    rendered: dict[str, Any] | None = Field(
        None, description="A template we sent as the customer read it: header, body, footer, buttons with the "
                          "parameters filled in", examples=[{"header": None, "body": "Hi Ana, your order #42 is ready.",
                                                            "footer": "Coffee Co", "buttons": ["Thanks"]}])
    sent_by: str | None = Field(None, description="The agent who wrote it")
    sender_contact_id: str | None = Field(None, description="In a WhatsApp group's conversation: the contact of "
                                          "the participant who wrote this inbound message")
    edited: bool = False
    edits: list[EditOut] = Field(default_factory=list, description="What the customer's message said before each edit")
    deleted_at: datetime | None = None
    pricing: PricingOut | None = Field(None, description="Meta's pricing of an outbound message, once a status "
                                                         "webhook has carried it")
    pricing_category: str | None = Field(None, description="The same as pricing.category")
    meta_status: str | None = Field(None, description="The send answer's message_status (outbound): accepted, "
                                                      "held_for_quality_assessment or paused",
                                    examples=["accepted"])
    created_at: datetime
    updated_at: datetime


def message_out(message: Message, quoted: dict[str, Any] | None = None) -> MessageOut:
    """``quoted``: wamid -> our id, for quoted messages stored after the reply (MessageQueries.quoted_ids)."""
    error = message.error
    media = message.media
    pricing = message.pricing_info
    reply_to = None
    if message.reply_to_wamid or message.reply_to_id:
        reply_id = message.reply_to_id or (quoted or {}).get(message.reply_to_wamid or "")
        reply_to = ReplyToOut(id=str(reply_id) if reply_id else None, wamid=message.reply_to_wamid)
    return MessageOut(
        id=str(message.id), conversation_id=str(message.conversation_id), account_id=str(message.account_id),
        contact_id=str(message.contact_id), direction=message.direction, type=message.type,
        content=message.content, status=message.status.value,
        status_at={k: as_utc(v) for k, v in message.status_at.items()}, wamid=message.wamid, to=message.recipient,
        error=MessageErrorOut(code=error.code, title=error.title, detail=error.detail,
                              agent_message=error.agent_message) if error else None,
        attempts=message.attempts, retries=message.retries,
        discarded_at=as_utc(message.discarded["at"]) if message.discarded else None, request_id=message.cause,
        priority=message.priority if message.direction == "outbound" else None,
        reply_to=reply_to, context=message.context, referral=message.referral,
        reactions=[ReactionOut(emoji=r.emoji, by=r.by, at=as_utc(r.at)) for r in message.reactions if r.emoji],
        media=MediaOut(id=str(media.stored_file_id) if media.stored_file_id else None, state=media.state,
                       mime_type=media.mime_type, size=media.size, filename=media.filename,
                       url=f"/media/{media.stored_file_id}" if media.stored_file_id else None, error=media.error,
                       attempts=media.attempts,
                       next_attempt_at=as_utc(media.next_attempt_at) if media.next_attempt_at else None)
        if media else None,
        via=message.via, rendered=message.rendered, sent_by=str(message.sent_by) if message.sent_by else None,
        sender_contact_id=str(message.sender_contact_id) if message.sender_contact_id else None,
        edited=bool(message.edits) and message.deleted_at is None,
        edits=[EditOut(type=e.type, content=e.content, replaced_at=as_utc(e.replaced_at) if e.replaced_at else None)
               for e in message.edits],
        deleted_at=as_utc(message.deleted_at) if message.deleted_at else None,
        pricing=PricingOut(**pricing.model_dump()) if pricing else None,
        pricing_category=pricing.category if pricing else None, meta_status=message.meta_status,
        created_at=as_utc(message.timestamp), updated_at=as_utc(message.updated_at),
    )


def message_json(message: Message, quoted: dict[str, Any] | None = None) -> dict[str, Any]:
    """``message_out`` as JSON-ready values (for handlers that answer dicts)."""
    return message_out(message, quoted).model_dump(mode="json")
