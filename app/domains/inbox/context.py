"""Helpers shared by the inbox controllers: who is asking, rendering partials, the panel's context."""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId
from litestar import Request, Response
from litestar.response import Template

from app.domains.conversations.models import Conversation
from app.domains.inbox.queries import InboxQueries, ListFilters
from app.domains.inbox.views import PRIORITY_CHOICES, ConversationRow
from app.domains.inbox.vocab import labels_of, teams_of
from app.domains.workspaces.models import User
from app.domains.workspaces.services import Principal
from app.errors import AppError

queries = InboxQueries()


def me(request: Request) -> Principal:
    return request.scope["user"]  # the requires_login guard ran


def render(request: Request, name: str, **context: Any) -> str:
    """A partial as a string (to combine fragments, or to push them out of band)."""
    # The request too, as Litestar's own rendering passes it: csrf_token() and url_for() read it.
    return request.app.template_engine.get_template(name).render(**{"request": request, **context})


def html(body: str, status_code: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(body, media_type="text/html; charset=utf-8", status_code=status_code, headers=headers)


def oob_row(request: Request, row: ConversationRow) -> str:
    """A list row wrapped for an out-of-band upsert (inbox.js places it by its data-sort)."""
    return ('<div hx-swap-oob="afterbegin:#conv-items">' + render(request, "inbox/_conversation_row.html", row=row)
            + "</div>")


def oob_messages(request: Request, views: list) -> str:
    body = "".join(render(request, "inbox/_message.html", m=m) for m in views)
    return f'<div hx-swap-oob="beforeend:#thread-items">{body}</div>'


def oob_meta(request: Request, row: ConversationRow) -> str:
    return render(request, "inbox/_thread_meta.html", row=row).replace(
        '<p id="thread-meta"', '<p hx-swap-oob="true" id="thread-meta"', 1)


def error_fragment(error: AppError) -> Response[str]:
    """A 4xx for an HTMX form: inbox.js shows the message in the alert toast."""
    from markupsafe import escape

    return html(f'<p class="error-message" data-error-code="{escape(error.error_code)}">{escape(error.message)}</p>',
                status_code=error.status_code)


async def agents_of(workspace_id: PydanticObjectId) -> list[User]:
    return await User.find(User.workspace_id == workspace_id, User.active == True).sort("name").to_list()  # noqa: E712


def mention_choices(agents: list[User]) -> list[dict[str, str]]:
    """Who a note can @mention, for the composer's picker: the active agents with a name (the server
    matches ``@Their Name``, so a nameless user cannot be mentioned)."""
    return [{"name": user.name, "email": user.email} for user in agents if user.name.strip()]


async def panel_context(request: Request, conversation: Conversation, **extra: Any) -> dict[str, Any]:
    row = await queries.row(conversation)
    principal = me(request)
    agents = await agents_of(principal.workspace_id)
    statuses = await request.app.state.runtime.presence.statuses(agents)  # the picker shows who is online
    return {
        "row": row, "me": principal, "agents": agents, "teammates": mention_choices(agents),
        "availability": {k: v.value.value.title() for k, v in statuses.items()},
        "teams": await teams_of(principal.workspace_id),
        "label_choices": list((await labels_of(principal.workspace_id)).values()),
        "priority_choices": PRIORITY_CHOICES,
        "panel_error": None, "panel_field": None, "typed": {}, **extra,
    }


def page_template(context: dict[str, Any]) -> Template:
    return Template("inbox/index.html", context=context)


def filters_from(request: Request) -> ListFilters:
    return ListFilters.parse(dict(request.query_params))
