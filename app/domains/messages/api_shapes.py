"""OpenAPI shapes of the older message routes' answers (issue 4 read API, issue 5 send API).

The handlers build their JSON as dicts (tests assert those exact fields); these models only document
that JSON for /schema/openapi.json via ``responses=`` (see ``documented``), so nothing a route returns
changes. Fields are optional and loosely typed where Meta's objects pass through, so a real answer
always conforms (schemathesis checks it).
"""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import OpenAPIType, Schema
from pydantic import Field

from app.api_shapes import ApiShape as _Shape
from app.api_shapes import documented

__all__ = ["documented"]


class ErrorShape(_Shape):
    code: int | None = Field(None, description="WhatsApp's error code", examples=[131047])
    title: str | None = None
    detail: str | None = None
    agent_message: str | None = Field(None, description="The error in words an agent understands")


class ReactionShape(_Shape):
    emoji: str | None = None
    by: str | None = Field(None, description="customer or agent")
    at: str | None = Field(None, description="ISO 8601 time")


class ReplyToShape(_Shape):
    id: str | None = Field(None, description="Our id of the quoted message, when we have it")
    wamid: str | None = None


class ThreadMediaShape(_Shape):
    state: str | None = Field(None, description="pending, stored or failed")
    mime_type: str | None = None
    size: int | None = None
    filename: str | None = None
    url: str | None = Field(None, description="Where to download our stored copy (with the same API key)")
    error: str | None = None
    attempts: int | None = None
    next_attempt_at: str | None = None


class EditShape(_Shape):
    type: str | None = None
    content: Any = None
    replaced_at: str | None = None


class ThreadMessage(_Shape):
    """A message as listed in a conversation's thread."""

    id: str = Field(examples=["665f1c2e8a4b5c6d7e8f9012"])
    conversation_id: str
    wamid: str | None = None
    direction: str = Field(description="inbound, outbound or internal", examples=["inbound"])
    type: str = Field(examples=["text"])
    content: Any = Field(None, description="Meta's object for that type", examples=[{"body": "Hello!"}])
    status: str = Field(examples=["delivered"])
    error: ErrorShape | None = None
    reactions: list[ReactionShape] = Field(default_factory=list)
    reply_to: ReplyToShape | None = None
    context: Any = None
    referral: Any = None
    media: ThreadMediaShape | None = None
    edited: bool = False
    edits: list[EditShape] = Field(default_factory=list)
    deleted_at: str | None = None
    pricing_category: str | None = None
    status_at: dict[str, str | None] = Field(default_factory=dict, description="When each status was reached")
    created_at: str | None = None


class ThreadPage(_Shape):
    data: list[ThreadMessage]
    next_cursor: str | None = Field(None, description="Pass as cursor for the next page; null on the last")


class SentMediaShape(_Shape):
    id: str | None = None
    mime_type: str | None = None
    size: int | None = None
    filename: str | None = None


class SentMessage(_Shape):
    """An outbound message and its delivery state, as the send API answers it."""

    id: str = Field(examples=["665f1c2e8a4b5c6d7e8f9012"])
    conversation_id: str
    account_id: str
    contact_id: str
    direction: str = Field(examples=["outbound"])
    type: str = Field(examples=["text"])
    content: Any = Field(None, description="Meta's object for that type", examples=[{"body": "Hello!"}])
    status: str = Field(description="queued, accepted, sent, delivered, read, played or failed",
                        examples=["queued"])
    status_at: dict[str, str | None] = Field(default_factory=dict)
    wamid: str | None = None
    to: str | None = Field(None, description="The recipient's number")
    error: ErrorShape | None = None
    reply_to: str | None = Field(None, description="Our id, or the wamid, of the quoted message")
    priority: Any = None
    via: str | None = None
    rendered: dict[str, Any] | None = Field(None, description="A template as the customer read it (header, body, "
                                                             "footer, buttons with the parameters filled in)")
    attempts: int | None = None
    media: SentMediaShape | None = None
    created_at: str | None = None
    updated_at: str | None = None


class UploadedMedia(_Shape):
    """A stored file ready to send: pass its id as content.id of a media message."""

    id: str
    kind: str = Field(examples=["image"])
    mime_type: str
    size: int
    filename: str | None = None
    sha256: str | None = None
    converted: bool = False
    original_mime_type: str | None = None


_TEXT = Schema(one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)])
# The send routes read their JSON by hand (for our own 422 messages), so Litestar sees ``Any``;
# this fills in the request schema. Nothing is "required" here so the fuzz run keeps reaching
# the handlers' own validation; the handlers say what is missing.
SEND_BODY: dict[str, Any] = {
    "type": OpenAPIType.OBJECT,
    "properties": {
        "account_id": _TEXT, "to": _TEXT, "reply_to": _TEXT,
        "type": Schema(type=OpenAPIType.STRING, description="Meta's message type", examples=["text"]),
        "content": Schema(type=OpenAPIType.OBJECT, description="Meta's object for that type",
                          examples=[{"body": "Hello!"}]),
        "priority": Schema(description="Send order hint"),
    },
}


class RetryReport(_Shape):
    """What a bulk retry of a number's failed sends did."""

    retried: int = Field(description="Messages queued again", examples=[12])
    skipped: dict[str, int] = Field(description="Messages not retried, by error code (e.g. WINDOW_CLOSED)",
                                    examples=[{"WINDOW_CLOSED": 2}])
    more: bool = Field(description="More failed messages remain: call again")
