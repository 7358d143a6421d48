"""JSON API v1: read a conversation's messages (the outbound issue adds the POST routes elsewhere)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from app.auth import requires_login
from app.domains.messages.api_shapes import ThreadPage, documented
from app.domains.messages.queries import MessageQueries
from app.domains.messages.schemas import message_json
from app.domains.workspaces.services import Principal
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT


class MessagesReadApi(Controller):
    path = "/api/v1/conversations"
    guards = [requires_login]
    tags = ["messages"]

    @get("/{conversation_id:str}/messages", summary="A conversation's messages, newest first",
         responses=documented(200, ThreadPage, "A page of messages"))
    async def list_messages(self, principal: NamedDependency[Principal], conversation_id: FromPath[str],
                            limit: int = Parameter(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
                            cursor: FromQuery[str | None] = None) -> dict[str, Any]:
        queries = MessageQueries()
        page = await queries.thread(principal.scope, conversation_id, limit=limit, cursor=cursor)
        quoted = await queries.quoted_ids(principal.workspace_id, page.items)
        return {"data": [message_json(m, quoted) for m in page.items], "next_cursor": page.next_cursor}
