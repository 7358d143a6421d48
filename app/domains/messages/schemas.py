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
    state: Literal["pending", "stored", "failed"]
    mime_type: str | None = None
    size: int | None = None
    filename: str | None = None
    url: str | None = Field(None, description="Where to download our stored copy (with the same API key)")


class MessageOut(BaseModel):
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
    error: MessageErrorOut | None = None
    reply_to_id: str | None = None
    reply_to_wamid: str | None = None
    reactions: list[ReactionOut] = Field(default_factory=list)
    media: MediaOut | None = None
    via: str | None = Field(None, description="inbox, api, ... for outbound messages")
    rendered: dict[str, Any] | None = Field(
        None, description="A template we sent as the customer read it: header, body, footer, buttons with the "
                          "parameters filled in", examples=[{"header": None, "body": "Hi Ana, your order #42 is ready.",
                                                            "footer": "Coffee Co", "buttons": ["Thanks"]}])
    sent_by: str | None = Field(None, description="The agent who wrote it")
    deleted_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


def message_out(message: Message) -> MessageOut:
    error = message.error
    media = message.media
    return MessageOut(
        id=str(message.id), conversation_id=str(message.conversation_id), account_id=str(message.account_id),
        contact_id=str(message.contact_id), direction=message.direction, type=message.type,
        content=message.content, status=message.status.value,
        status_at={k: as_utc(v) for k, v in message.status_at.items()}, wamid=message.wamid,
        error=MessageErrorOut(code=error.code, title=error.title, detail=error.detail,
                              agent_message=error.agent_message) if error else None,
        reply_to_id=str(message.reply_to_id) if message.reply_to_id else None, reply_to_wamid=message.reply_to_wamid,
        reactions=[ReactionOut(emoji=r.emoji, by=r.by, at=as_utc(r.at)) for r in message.reactions if r.emoji],
        media=MediaOut(state=media.state, mime_type=media.mime_type, size=media.size, filename=media.filename,
                       url=f"/media/{media.stored_file_id}" if media.stored_file_id else None) if media else None,
        via=message.via, rendered=message.rendered, sent_by=str(message.sent_by) if message.sent_by else None,
        deleted_at=as_utc(message.deleted_at) if message.deleted_at else None,
        created_at=as_utc(message.timestamp), updated_at=as_utc(message.updated_at),
    )
