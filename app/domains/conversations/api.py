"""JSON API v1: list conversations (filters: status, account_id; cursor pagination)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, Parameter

from app.auth import requires_login
from app.db import parse_object_id
from app.domains.conversations.models import ConversationStatus
from app.domains.conversations.schemas import ConversationList, conversation_out
from app.domains.conversations.services import ConversationService
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT


class ConversationsApi(Controller):
    path = "/api/v1/conversations"
    guards = [requires_login]
    tags = ["conversations"]

    @get("/", summary="Conversations, latest activity first")
    async def list_conversations(self, principal: NamedDependency[Principal], status: FromQuery[str | None] = None,
                                 account_id: FromQuery[str | None] = None,
                                 limit: int = Parameter(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
                                 cursor: str | None = Parameter(default=None, max_length=500),
                                 assignee_id: str | None = Parameter(
                                     default=None, description="A user id, or `none` for unassigned"),
                                 team_id: FromQuery[str | None] = None,
                                 label: str | None = Parameter(default=None, description="A label id"),
                                 updated_since: datetime | None = Parameter(
                                     default=None, description="Changed at or after this time (ISO 8601)"),
                                 contact_id: str | None = Parameter(
                                     default=None, description="The customer's conversations: our contact id"),
                                 wa_id: str | None = Parameter(
                                     default=None, max_length=40,
                                     description="The customer's conversations: their WhatsApp id or phone number"),
                                 ) -> ConversationList:
        problems = {}
        wanted_status = None
        if status is not None:
            try:
                wanted_status = ConversationStatus(status)
            except ValueError:
                problems["status"] = f"One of: {', '.join(s.value for s in ConversationStatus)}."
        wanted_account = parse_object_id(account_id) if account_id is not None else None
        if account_id is not None and wanted_account is None:
            problems["account_id"] = "Not an id."
        extra: dict[str, Any] = {"label": label, "updated_since": updated_since}  # filters of issue 8
        for name, value in (("assignee_id", assignee_id), ("team_id", team_id)):
            if value is not None and value != "none" and parse_object_id(value) is None:
                problems[name] = "Not an id."
            extra[name] = value if value in (None, "none") else parse_object_id(value)
        if extra["team_id"] == "none":
            problems["team_id"] = "Not an id."
        extra["contact_id"] = parse_object_id(contact_id) if contact_id is not None else None
        if contact_id is not None and extra["contact_id"] is None:
            problems["contact_id"] = "Not an id."
        if wa_id is not None:
            digits = "".join(ch for ch in wa_id if ch.isdigit())
            if not 6 <= len(digits) <= 20 or any(not (ch.isdigit() or ch in "+ -()") for ch in wa_id):
                problems["wa_id"] = "A WhatsApp id: the phone number's digits, country code first."
            extra["wa_id"] = digits
        if problems:
            raise ValidationFailed("Check the query parameters.", details=problems, status_code=400)
        service = ConversationService()
        page = await service.page(principal.scope, status=wanted_status, account_id=wanted_account,
                                  limit=limit, cursor=cursor, **extra)
        contacts = await service.contacts_of(principal.workspace_id, page.items)
        return ConversationList(data=[conversation_out(c, contacts.get(c.contact_id)) for c in page.items],
                                next_cursor=page.next_cursor)
