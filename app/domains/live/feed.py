"""Turns workspace events into HTML frames: read and rendered once per event, chosen per tab in memory.

A frame is a few top-level elements, each with ``hx-swap-oob``: the message bubble (only for
tabs that have its thread open), the list row (or a removal marker when it no longer matches
a tab's filters), the open thread's status line; after a burst, the unread total and the
sequence of the last event (``#live-clock``), which the tab sends back after a reconnect.
Nothing here ever targets the composer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from beanie import PydanticObjectId
from markupsafe import escape

from app.cache import TtlCache
from app.db import parse_object_id
from app.domains.access.scope import Scope
from app.domains.accounts.models import WhatsAppAccount
from app.domains.conversations.models import Conversation
from app.domains.inbox.queries import InboxQueries, ListFilters
from app.domains.inbox.views import ConversationRow
from app.domains.messages.models import Message

Render = Callable[..., str]


@dataclass
class TabState:
    """What one browser tab shows: its filters and its open conversation (sent by inbox.js)."""

    workspace_id: PydanticObjectId
    user_id: PydanticObjectId | None
    filters: ListFilters = field(default_factory=ListFilters)
    open_id: PydanticObjectId | None = None
    scope: Scope | None = None
    """What its user sees (access/scope.py); None: the whole workspace."""

    @property
    def sees(self) -> Scope:
        return self.scope or Scope.whole(self.workspace_id)

    def update(self, view: dict[str, Any]) -> None:
        if not isinstance(view, dict):
            return
        if isinstance(view.get("filters"), dict):
            self.filters = ListFilters.parse(view["filters"])
        self.open_id = parse_object_id(str(view.get("conversation") or "")) if view.get("conversation") else None


@dataclass
class Rendered:
    """One event's conversation (and message) as any tab of this process may show them."""

    row: ConversationRow
    row_html: str
    meta_html: str
    bubbles_html: str = ""
    """The event's messages, for tabs with the conversation open."""
    mentions: tuple[str, ...] = ()
    """Users a new note @mentions (their tabs are told, wherever they are)."""
    note_text: str = ""

    @property
    def conversation(self) -> Conversation:
        return self.row.c


class Hits:
    """Whether a conversation matches a search, asked once per search text however many tabs use it."""

    def __init__(self, queries: InboxQueries) -> None:
        self.queries = queries
        self._seen: dict[tuple[Any, str], bool] = {}

    async def __call__(self, conversation: Conversation, q: str) -> bool:
        key = (conversation.id, q)
        if key not in self._seen:
            self._seen[key] = await self.queries.search_hit(conversation, q)
        return self._seen[key]


def _ids(event: dict[str, Any]) -> tuple[PydanticObjectId | None, PydanticObjectId | None]:
    message_id = parse_object_id(str(event.get("message_id") or "")) if event.get("message_id") else None
    conversation_id = (parse_object_id(str(event.get("conversation_id") or ""))
                       if event.get("conversation_id") else None)
    return message_id, conversation_id


class LiveFeed:
    def __init__(self, render: Render, queries: InboxQueries | None = None) -> None:
        self.render = render
        self.queries = queries or InboxQueries()
        self._numbers: TtlCache[bool] = TtlCache(60.0, keep=lambda value: True)

    async def prepare(self, workspace_id: PydanticObjectId, event: dict[str, Any]) -> Rendered | None:
        """Read and render what ``event`` changed, once (None: nothing any tab shows)."""
        message_id, conversation_id = _ids(event)
        message = None
        if message_id is not None:
            message = await _read(Message, message_id, workspace_id)
            if message is not None:
                conversation_id = message.conversation_id
        if conversation_id is None:
            return None
        conversation = await _read(Conversation, conversation_id, workspace_id)
        if conversation is None:
            return None
        [rendered] = await self._render(workspace_id, [conversation], [message] if message is not None else [])
        if message is not None and message.type == "note" and isinstance(message.content, dict) \
                and event.get("event") == "message.created":
            rendered.mentions = tuple(str(m) for m in message.content.get("mentions") or ())
            rendered.note_text = str(message.content.get("body") or "")[:300]
        return rendered

    async def _render(self, workspace_id: PydanticObjectId, conversations: list[Conversation],
                      messages: list[Message]) -> list[Rendered]:
        rows = await self.queries.rows(workspace_id, conversations)
        views = await self.queries.views(workspace_id, messages) if messages else []
        bubbles: dict[Any, list[str]] = {}
        for view in views:
            bubbles.setdefault(view.m.conversation_id, []).append(self.render("inbox/_message.html", m=view))
        # Rows name their number when the workspace has several, as the list page does.
        show_account = len({row.c.account_id for row in rows}) > 1 or await self._several_numbers(workspace_id)
        return [Rendered(row, self.render("inbox/_conversation_row.html", row=row, show_account=show_account),
                         self._meta(row),
                         "".join(bubbles.get(row.c.id, ()))) for row in rows]

    async def frame(self, rendered: Rendered, tab: TabState, hits: Hits) -> str:
        """What ``tab`` shows of a rendered event (no database read unless the tab searches); nothing of a
        conversation outside the tab's scope (its user's numbers and teams)."""
        conversation = rendered.conversation
        if not tab.sees.sees(conversation):
            return ""
        is_open = tab.open_id == conversation.id
        parts = []
        if is_open and rendered.bubbles_html:
            parts.append(f'<div hx-swap-oob="beforeend:#thread-items">{rendered.bubbles_html}</div>')
        hit = await hits(conversation, tab.filters.q) if tab.filters.q else None
        if tab.filters.matches(conversation, tab.user_id, hit):
            inner = rendered.row_html
        else:  # it left this tab's list (resolved, reassigned ...): inbox.js removes it
            inner = f'<li id="conv-{rendered.row.id}" data-remove="1" hidden></li>'
        parts.append(f'<div hx-swap-oob="afterbegin:#conv-items">{inner}</div>')
        if is_open:
            parts.append(rendered.meta_html)
        if tab.user_id is not None and str(tab.user_id) in rendered.mentions:
            parts.append(f'<span id="mention-alert" hidden hx-swap-oob="true" data-conv="{rendered.row.id}" '
                         f'data-name="{escape(rendered.row.name)}" data-text="{escape(rendered.note_text)}"></span>')
        return "".join(parts)

    async def catch_up(self, tab: TabState, events: list[dict[str, Any]]) -> list[Rendered]:
        """What a reconnecting tab missed, from the events after its sequence: each conversation they
        touched once (as it is now), and the messages of its open thread."""
        conversation_ids: dict[PydanticObjectId, None] = {}
        message_ids: dict[PydanticObjectId, None] = {}
        for event in events:
            message_id, conversation_id = _ids(event)
            if conversation_id is not None:
                conversation_ids[conversation_id] = None
            if message_id is not None and conversation_id == tab.open_id:
                message_ids[message_id] = None
        if not conversation_ids:
            return []
        docs = await Conversation.get_motor_collection().find(
            {"_id": {"$in": list(conversation_ids)}, "workspace_id": tab.workspace_id}).to_list(None)
        conversations = sorted((c for c in (Conversation.model_validate(d) for d in docs) if tab.sees.sees(c)),
                               key=lambda c: list(conversation_ids).index(c.id))
        messages = []
        if message_ids:
            mdocs = await Message.get_motor_collection().find(
                {"_id": {"$in": list(message_ids)}, "workspace_id": tab.workspace_id}).sort([("_id", 1)]).to_list(None)
            messages = [Message.model_validate(d) for d in mdocs]
        return await self._render(tab.workspace_id, conversations, messages)

    def _meta(self, row: ConversationRow) -> str:
        return self.render("inbox/_thread_meta.html", row=row).replace(
            '<p id="thread-meta"', '<p hx-swap-oob="true" id="thread-meta"', 1) + self.render(
            "inbox/_thread_name.html", row=row, oob=True)

    async def _several_numbers(self, workspace_id: PydanticObjectId) -> bool:
        """Whether the workspace has more than one number (kept a minute per process: numbers are
        rarely added, and a row without its number's name for a minute is harmless)."""
        return await self._numbers.get(workspace_id, lambda: _count_numbers(workspace_id))

    @staticmethod
    def totals(unread: int, seq: str | None) -> str:
        """The unread total (tab title) and the last event's sequence; sent after the frames it follows."""
        clock = f'<span id="live-clock" data-seq="{seq}" hidden hx-swap-oob="true"></span>' if seq else ""
        return f'<span id="unread-total" data-count="{int(unread)}" hidden hx-swap-oob="true"></span>{clock}'

    @staticmethod
    def removed(conversation_id: Any) -> str:
        """A conversation that no longer exists (folded into another by a contact merge): inbox.js
        drops its row."""
        oid = parse_object_id(str(conversation_id or ""))
        return f'<div hx-swap-oob="afterbegin:#conv-items"><li id="conv-{oid}" data-remove="1" hidden></li></div>' \
            if oid is not None else ""

    @staticmethod
    def reload() -> str:
        """The tab was away too long to catch up event by event: inbox.js reloads the page."""
        return '<span id="live-clock" data-reload="1" hidden hx-swap-oob="true"></span>'


async def _count_numbers(workspace_id: PydanticObjectId) -> bool:
    return await WhatsAppAccount.get_motor_collection().count_documents({"workspace_id": workspace_id}, limit=2) > 1


async def _read(model: Any, oid: PydanticObjectId, workspace_id: PydanticObjectId) -> Any:
    """One document by id in the workspace, read raw and validated once."""
    doc = await model.get_motor_collection().find_one({"_id": oid, "workspace_id": workspace_id})
    return model.model_validate(doc) if doc is not None else None
