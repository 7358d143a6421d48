"""The inbox page: conversation list (filters, search, pages), the open thread, older messages.

One handler serves the page and its fragments, branching on ``request.htmx``; a reload of any
URL the page pushes gives the whole page in the same state.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from app.auth import requires_login
from app.domains.conversations.models import Conversation
from app.domains.inbox.context import (
    filters_from,
    html,
    me,
    oob_row,
    page_template,
    panel_context,
    queries,
    render,
)
from app.domains.inbox.queries import ListFilters, Page
from app.domains.inbox.service import InboxService
from app.domains.inbox.vocab import labels_of
from app.runtime import Runtime


class InboxController(Controller):
    path = "/inbox"
    guards = [requires_login]
    include_in_schema = False

    @get("/")
    async def page(self, request: Request, runtime: NamedDependency[Runtime]) -> Template:
        """The whole inbox; ``?c=<id>`` opens a conversation, the other parameters are the filters."""
        conversation_id = request.query_params.get("c")
        conversation = None
        if conversation_id:
            conversation = await InboxService(runtime).conversation(me(request).scope, conversation_id)
        return await self._full_page(request, runtime, filters_from(request), conversation)

    @get("/conversations")
    async def conversation_list(self, request: Request, runtime: NamedDependency[Runtime]) -> Response[str] | Template:
        """A page of rows for the filter form and the "load more" sentinel."""
        filters = filters_from(request)
        if not request.htmx:
            return await self._full_page(request, runtime, filters, None)
        principal = me(request)
        cursor = request.query_params.get("cursor")
        page = await queries.list_page(principal.scope, filters, principal.user_id, cursor)
        body = render(request, "inbox/_conversation_items.html", page=page, filters=filters, first_page=not cursor,
                      show_account=await InboxService(runtime).several_numbers(principal.workspace_id))
        # The live feed filters what it pushes by the same filters: tell inbox.js the new view.
        url = "/inbox" + (("?" + filters.query_string()) if filters.query_string() else "")
        return html(body, headers={"HX-Push-Url": url} if not cursor else None)

    @get("/c/{conversation_id:str}")
    async def open_conversation(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str] | Template:
        conversation = await InboxService(runtime).conversation(me(request).scope, conversation_id)
        if not request.htmx or request.headers.get("hx-history-restore-request"):
            return await self._full_page(request, runtime, filters_from(request), conversation)
        await self._mark_read(runtime, conversation)
        context = await self._thread_context(request, conversation)
        body = render(request, "inbox/_thread.html", **context)
        # The row loses its unread badge in this tab at once; the tab title follows with the live totals.
        return html(body + oob_row(request, context["row"]))

    @get("/c/{conversation_id:str}/older")
    async def older_messages(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        conversation = await InboxService(runtime).conversation(me(request).scope, conversation_id)
        thread = await queries.thread_page(conversation, before=request.query_params.get("before"))
        return html(render(request, "inbox/_messages.html", thread=thread, conversation_id=str(conversation.id)))

    @get("/c/{conversation_id:str}/others")
    async def other_conversations(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        """The contact's conversations on other numbers (loaded after the panel, off the thread's path)."""
        conversation = await InboxService(runtime).conversation(me(request).scope, conversation_id)
        return html(render(request, "inbox/_earlier.html", earlier=await queries.earlier_conversations(conversation, me(request).scope)))

    @post("/c/{conversation_id:str}/read", status_code=200)
    async def read(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        """The agent is looking at the thread while a message arrives: it is read."""
        conversation = await InboxService(runtime).conversation(me(request).scope, conversation_id)
        await self._mark_read(runtime, conversation)
        return html("")

    # --- helpers -------------------------------------------------------------------------------------
    async def _mark_read(self, runtime: Runtime, conversation: Conversation) -> None:
        await InboxService(runtime).mark_read(conversation)

    async def _thread_context(self, request: Request, conversation: Conversation) -> dict[str, Any]:
        context = await panel_context(request, conversation)
        context["thread"] = await queries.thread_page(conversation)
        context["conversation_id"] = str(conversation.id)
        return context


    async def _full_page(self, request: Request, runtime: Runtime, filters: ListFilters,
                         conversation: Conversation | None) -> Template:
        principal = me(request)
        # Read before the page's data: the tab's catch-up starts here, so no event falls in between.
        live_seq = await runtime.live.latest_seq(principal.workspace_id)
        if conversation is not None:
            await self._mark_read(runtime, conversation)
        page: Page = await queries.list_page(principal.scope, filters, principal.user_id)
        inbox = InboxService(runtime)
        accounts = await inbox.accounts(principal.workspace_id)
        context: dict[str, Any] = {
            "active": "inbox", "me": principal, "filters": filters, "page": page,
            # The number filter offers the numbers whose conversations the agent sees.
            "accounts": [a for a in accounts if principal.scope.sees_number(a.id)],
            "show_account": len(accounts) > 1, "label_options": await label_options(principal.workspace_id),
            "unread_total": await queries.unread_total(principal.scope),
            "demo": bool(getattr(request.app.state, "demo", False)), "row": None, "live_seq": live_seq,
            "closed_notice": await runtime.business_hours.closed_notice(principal.workspace_id),
        }
        if conversation is not None:
            context.update(await self._thread_context(request, conversation))
        if context["demo"]:
            context["sim_customers"] = await inbox.simulated_customers(principal.scope)
        return page_template(context)


async def label_options(workspace_id) -> list[tuple[str, str]]:
    """(value, name) for the label filter: the admin's label list."""
    return [(i.id, i.name) for i in (await labels_of(workspace_id)).values()]
