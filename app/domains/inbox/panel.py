"""The side panel's actions: contact name, attributes, tags, opt-out; agent, team, status, priority, snooze,
labels (its Automations section is automations.py).

Each answers with the refreshed panel (and the row and status line out of band); the system
event each change leaves reaches every tab, this one included, through the live feed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from markupsafe import escape

from app.auth import requires_login
from app.domains.contacts.editing import ContactEditing
from app.domains.conversations.actions import ConversationActions
from app.domains.inbox.context import html, me, oob_meta, oob_row, panel_context, render
from app.domains.inbox.service import InboxService
from app.domains.inbox.vocab import labels_of, teams_of
from app.errors import ClientError, NotFound, ValidationFailed
from app.runtime import Runtime


def parse_local_time(value: str, offset_minutes: str) -> datetime:
    """A datetime-local value plus the browser's getTimezoneOffset() (minutes behind UTC) -> UTC."""
    try:
        local = datetime.fromisoformat(value)
        offset = int(offset_minutes or 0)
    except (TypeError, ValueError):
        raise ValidationFailed("Pick a date and time.", error_code="BAD_TIME", details={"until": str(value)[:40]}) from None
    if local.tzinfo is not None or not -900 <= offset <= 900:
        raise ValidationFailed("Pick a date and time.", error_code="BAD_TIME", details={"until": str(value)[:40]})
    return (local + timedelta(minutes=offset)).replace(tzinfo=UTC)


class PanelController(Controller):
    path = "/inbox/c/{conversation_id:str}"
    guards = [requires_login]
    include_in_schema = False

    @post("/assign", status_code=200)
    async def assign(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        form = await request.form()
        return await self._apply(request, runtime, conversation_id, lambda actions, c, by: actions.assign(
            c, assignee_id=str(form.get("assignee_id") or "") or None, by=by, may_reassign=me(request).may_reassign))

    @post("/team", status_code=200)
    async def team(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        form = await request.form()
        team_id = str(form.get("team_id") or "")
        teams = {str(t.id): t.name for t in await teams_of(me(request).workspace_id)}
        if team_id and team_id not in teams:
            return await self._panel(request, runtime, conversation_id, error="That team does not exist any more.", status=422)
        return await self._apply(request, runtime, conversation_id, lambda actions, c, by: actions.assign_team(
            c, team_id=team_id or None, team_name=teams.get(team_id), by=by))

    @post("/status", status_code=200)
    async def status(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        form = await request.form()
        return await self._apply(request, runtime, conversation_id, lambda actions, c, by: actions.set_status(
            c, str(form.get("status") or ""), by=by))

    @post("/priority", status_code=200)
    async def priority(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        form = await request.form()
        return await self._apply(request, runtime, conversation_id, lambda actions, c, by: actions.set_priority(
            c, str(form.get("priority") or "none"), by=by), field="priority")

    @post("/snooze", status_code=200)
    async def snooze(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        form = await request.form()
        try:
            until = parse_local_time(str(form.get("until") or ""), str(form.get("tz_offset") or "0"))
        except ClientError as error:
            return await self._panel(request, runtime, conversation_id, error=error.message, status=error.status_code,
                                     field="snooze")
        return await self._apply(request, runtime, conversation_id,
                                 lambda actions, c, by: actions.snooze(c, until, by=by), field="snooze")

    @post("/labels", status_code=200)
    async def labels(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        form = await request.form()
        known = {i.id: i.name for i in (await labels_of(me(request).workspace_id)).values()}
        values = [str(v) for v in form.getall("labels", [])] if known else str(form.get("labels") or "")
        return await self._apply(request, runtime, conversation_id, lambda actions, c, by: actions.set_labels(
            c, values, by=by, known=known or None), field="labels",
            typed={"labels": values if isinstance(values, str) else ", ".join(values)})

    # --- the contact ---------------------------------------------------------------------------------
    @post("/contact", status_code=200)
    async def rename(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        form = await request.form()
        return await self._contact(request, runtime, conversation_id,
                                   lambda editing, contact: editing.rename(contact, str(form.get("name") or "")),
                                   field="name", typed={"name": str(form.get("name") or "")})

    @post("/contact/attributes", status_code=200)
    async def attribute(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        form = await request.form()
        return await self._contact(request, runtime, conversation_id, lambda editing, contact: editing.set_attribute(
            contact, str(form.get("key") or ""), str(form.get("value") or "")), field="attribute",
            typed={"key": str(form.get("key") or ""), "value": str(form.get("value") or "")})

    @post("/contact/tags", status_code=200)
    async def contact_tags(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        form = await request.form()
        return await self._contact(request, runtime, conversation_id,
                                   lambda editing, contact: editing.set_tags(contact, str(form.get("tags") or "")),
                                   field="tags", typed={"tags": str(form.get("tags") or "")})

    @post("/contact/opt-out", status_code=200)
    async def opt_out(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str]) -> Response[str]:
        form = await request.form()
        return await self._contact(request, runtime, conversation_id, lambda editing, contact: editing.set_opt_out(
            contact, str(form.get("opted_out") or "") == "1"))

    # --- helpers -------------------------------------------------------------------------------------
    async def _apply(self, request: Request, runtime: Runtime, conversation_id: str, change, *,
                     field: str | None = None, typed: dict[str, str] | None = None) -> Response[str]:
        principal = me(request)
        conversation = await InboxService(runtime).conversation(principal.scope, conversation_id)
        try:
            await change(ConversationActions(runtime.live), conversation, principal.user)
        except ClientError as error:
            return await self._panel(request, runtime, conversation_id, error=error.message, status=error.status_code,
                                     field=field, typed=typed)
        return await self._panel(request, runtime, conversation_id)

    async def _contact(self, request: Request, runtime: Runtime, conversation_id: str, change, *,
                       field: str | None = None, typed: dict[str, str] | None = None) -> Response[str]:
        inbox = InboxService(runtime)
        contact = await inbox.contact_of(await inbox.conversation(me(request).scope, conversation_id))
        try:
            await change(ContactEditing(runtime.live), contact)
        except ClientError as error:
            return await self._panel(request, runtime, conversation_id, error=error.message, status=error.status_code,
                                     field=field, typed=typed)
        return await self._panel(request, runtime, conversation_id)

    async def _panel(self, request: Request, runtime: Runtime, conversation_id: str, error: str | None = None,
                     status: int = 200, field: str | None = None, typed: dict[str, str] | None = None) -> Response[str]:
        """The panel again; a refused change shows its reason under its own field, with what was typed
        still there (``field``, ``typed``), or at the end of the panel when no field is named."""
        try:
            conversation = await InboxService(runtime).conversation(me(request).scope, conversation_id)
        except NotFound:  # the agent handed it to someone outside their numbers and teams
            return html(f'<aside id="side-panel" class="side-panel" aria-label="Details"><p class="notice">You gave '
                        f'this conversation away; it is no longer in your inbox.</p></aside><div hx-swap-oob='
                        f'"afterbegin:#conv-items"><li id="conv-{escape(conversation_id)}" data-remove="1" hidden>'
                        f'</li></div>')
        context = await panel_context(request, conversation, panel_error=error, panel_field=field,
                                      typed=typed or {})
        body = render(request, "inbox/_side_panel.html", **context)
        if error is None:
            body += oob_row(request, context["row"]) + oob_meta(request, context["row"])
        # A refused change still shows the panel with its reason (HTMX swaps 4xx only when told to).
        return html(body, status_code=200, headers={"X-Inbox-Error": "1"} if error else None)
