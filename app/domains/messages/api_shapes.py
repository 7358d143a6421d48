"""OpenAPI shapes of the message routes' answers: a page of messages (in the one message shape,
messages/schemas.MessageOut), uploads, retries, the send body.

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
from app.domains.messages.schemas import MessageOut

__all__ = ["documented"]


class ThreadPage(_Shape):
    data: list[MessageOut]
    next_cursor: str | None = Field(None, description="Pass as cursor for the next page; null on the last")


SentMessage = MessageOut
"""The send routes answer the one message shape (messages/schemas.py)."""


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
