"""Turns workspace events into HTML frames for one tab: the page's own partials, out of band.

A frame is a few top-level elements, each with ``hx-swap-oob``: the message bubble (only for
the tab that has its thread open), the list row (or a removal marker when it no longer matches
the tab's filters), the open thread's status line, the unread total and the server clock the
tab sends back after a reconnect. Nothing here ever targets the composer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId

from app.db import parse_object_id, utcnow
from app.domains.conversations.models import Conversation
from app.domains.inbox.queries import InboxQueries, ListFilters
from app.domains.inbox.views import ConversationRow, iso
from app.domains.messages.models import Message

Render = Callable[..., str]


@dataclass
class TabState:
    """What one browser tab shows: its filters and its open conversation (sent by inbox.js)."""

    workspace_id: PydanticObjectId
    user_id: PydanticObjectId | None
    filters: ListFilters = field(default_factory=ListFilters)
    open_id: PydanticObjectId | None = None

    def update(self, view: dict[str, Any]) -> None:
        if not isinstance(view, dict):
            return
        if isinstance(view.get("filters"), dict):
            self.filters = ListFilters.parse(view["filters"])
        self.open_id = parse_object_id(str(view.get("conversation") or "")) if view.get("conversation") else None


async def _read(model: Any, oid: PydanticObjectId, workspace_id: PydanticObjectId) -> Any:
    """One document by id in the tab's workspace, read raw and validated once (on every event's path)."""
    doc = await model.get_motor_collection().find_one({"_id": oid, "workspace_id": workspace_id})
    return model.model_validate(doc) if doc is not None else None


class LiveFeed:
    def __init__(self, render: Render, queries: InboxQueries | None = None) -> None:
        self.render = render
        self.queries = queries or InboxQueries()

    async def frame(self, event: dict[str, Any], tab: TabState) -> str | None:
        """The frame for one event, or None when it concerns nothing this tab shows."""
        message = None
        message_id = parse_object_id(str(event.get("message_id") or "")) if event.get("message_id") else None
        conversation_id = parse_object_id(str(event.get("conversation_id") or "")) if event.get("conversation_id") else None
        if message_id is not None:
            message = await _read(Message, message_id, tab.workspace_id)
            if message is not None:
                conversation_id = message.conversation_id
        if conversation_id is None:
            return None
        conversation = await _read(Conversation, conversation_id, tab.workspace_id)
        if conversation is None:
            return None
        parts = []
        if message is not None and tab.open_id == conversation.id:
            parts.append(self._messages([await self.queries.view(message)]))
        row = await self.queries.row(conversation)
        parts.append(await self._row(row, tab))
        if tab.open_id == conversation.id:
            parts.append(self._meta(row))
        return "".join(parts)

    async def catch_up(self, tab: TabState, since: datetime) -> str:
        """Everything changed since ``since`` that this tab shows: rows, and its open thread's messages."""
        conversations, messages = await self.queries.changed_since(tab.workspace_id, since, tab.filters, tab.user_id,
                                                                   tab.open_id)
        parts = []
        if messages:
            parts.append(self._messages(await self.queries.views(tab.workspace_id, messages)))
        rows = await self.queries.rows(tab.workspace_id, conversations)
        for row in rows:
            parts.append(await self._row(row, tab))
            if tab.open_id == row.c.id:
                parts.append(self._meta(row))
        parts.append(await self.totals(tab))
        return "".join(parts)

    # --- fragments -------------------------------------------------------------------------------
    def _messages(self, views: list) -> str:
        body = "".join(self.render("inbox/_message.html", m=m) for m in views)
        return f'<div hx-swap-oob="beforeend:#thread-items">{body}</div>'

    async def _row(self, row: ConversationRow, tab: TabState) -> str:
        hit = await self.queries.search_hit(row.c, tab.filters.q) if tab.filters.q else None
        if tab.filters.matches(row.c, tab.user_id, hit):
            inner = self.render("inbox/_conversation_row.html", row=row)
        else:  # it left this tab's list (resolved, reassigned ...): inbox.js removes it
            inner = f'<li id="conv-{row.id}" data-remove="1" hidden></li>'
        return f'<div hx-swap-oob="afterbegin:#conv-items">{inner}</div>'

    def _meta(self, row: ConversationRow) -> str:
        return self.render("inbox/_thread_meta.html", row=row).replace(
            '<p id="thread-meta"', '<p hx-swap-oob="true" id="thread-meta"', 1)

    async def totals(self, tab: TabState) -> str:
        """The unread total (tab title) and the clock; sent after the frame it follows."""
        total = await self.queries.unread_total(tab.workspace_id)
        return (f'<span id="unread-total" data-count="{int(total)}" hidden hx-swap-oob="true"></span>'
                f'<span id="live-clock" data-at="{iso(utcnow())}" hidden hx-swap-oob="true"></span>')
