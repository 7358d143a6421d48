"""JSON API v1: read a conversation's messages (the outbound issue adds the POST routes elsewhere)."""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId
from litestar import Controller, get
from litestar.params import Parameter

from app.auth import requires_login
from app.db import as_utc
from app.domains.messages.api_shapes import ThreadPage, documented
from app.domains.messages.models import Message
from app.domains.messages.queries import MessageQueries
from app.domains.workspaces.services import Principal
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT


def _iso(value: Any) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def message_view(message: Message, quoted: dict[str, PydanticObjectId] | None = None) -> dict[str, Any]:
    """The API shape of a message (content is Meta's object for its type)."""
    reply_to = None
    if message.reply_to_wamid or message.reply_to_id:
        reply_id = message.reply_to_id or (quoted or {}).get(message.reply_to_wamid or "")
        reply_to = {"id": str(reply_id) if reply_id else None, "wamid": message.reply_to_wamid}
    media = None
    if message.media is not None:
        m = message.media
        media = {"state": m.state, "mime_type": m.mime_type, "size": m.size, "filename": m.filename,
                 "url": f"/media/{m.stored_file_id}" if m.stored_file_id else None, "error": m.error,
                 "attempts": m.attempts, "next_attempt_at": _iso(m.next_attempt_at)}
    return {
        "id": str(message.id),
        "conversation_id": str(message.conversation_id),
        "wamid": message.wamid,
        "direction": message.direction,
        "type": message.type,
        "content": message.content,
        "status": message.status.value,
        "error": ({"code": message.error.code, "title": message.error.title, "detail": message.error.detail}
                  if message.error else None),
        "reactions": [{"emoji": r.emoji, "by": r.by, "at": _iso(r.at)} for r in message.reactions if r.emoji],
        "reply_to": reply_to,
        "context": message.context,
        "referral": message.referral,
        "media": media,
        "edited": bool(message.edits) and message.deleted_at is None,
        "edits": [{"type": e.type, "content": e.content, "replaced_at": _iso(e.replaced_at)} for e in message.edits],
        "deleted_at": _iso(message.deleted_at),
        "pricing_category": message.pricing_category,
        "status_at": {k: _iso(v) for k, v in message.status_at.items()},
        "created_at": _iso(message.timestamp),
    }


class MessagesReadApi(Controller):
    path = "/api/v1/conversations"
    guards = [requires_login]
    tags = ["messages"]

    @get("/{conversation_id:str}/messages", summary="A conversation's messages, newest first",
         responses=documented(200, ThreadPage, "A page of messages"))
    async def list_messages(self, principal: Principal, conversation_id: str,
                            limit: int = Parameter(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
                            cursor: str | None = None) -> dict[str, Any]:
        queries = MessageQueries()
        page = await queries.thread(principal.scope, conversation_id, limit=limit, cursor=cursor)
        quoted = await queries.quoted_ids(principal.workspace_id, page.items)
        return {"data": [message_view(m, quoted) for m in page.items], "next_cursor": page.next_cursor}
