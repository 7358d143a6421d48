"""The contacts pages (agents and admins): the list with search, conditions, sorts, saved segments
and bulk actions; one contact's page with identity, typed attributes, tags, consent history,
notes, conversations and "message them". Thin: each handler reads its form and calls a service
(listing.py, profile.py, directory.py, segments); a classic POST gets the whole page back, HTMX the
fragment it swaps (app/forms.py).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from app.auth import requires_login
from app.domains.contacts.directory import ContactDirectory
from app.domains.contacts.listing import OP_NAMES, SORT_CHOICES, ListState, list_state, segment_links
from app.domains.contacts.merge import ContactMerger
from app.domains.contacts.profile import ContactProfile
from app.domains.segments.services import SegmentService
from app.domains.workspaces.services import Principal
from app.errors import AppError, Forbidden, NotFound
from app.forms import go_to, read_form, read_list, render
from app.runtime import Runtime

PAGE_SIZE = 50
profiles = ContactProfile()
merger = ContactMerger()
segments = SegmentService()


def _directory(runtime: Runtime) -> ContactDirectory:
    return ContactDirectory(runtime.live, runtime.integrations)


def _pairs(request: Request) -> list[tuple[str, str]]:
    return [(k, str(v)) for k, v in request.query_params.multi_items()]


class ContactPages(Controller):
    path = "/contacts"
    guards = [requires_login]
    include_in_schema = False

    # --- the list -----------------------------------------------------------------------------------
    async def _list_context(self, runtime: Runtime, principal: Principal, state: ListState,
                            cursor: str | None = None, **extra: Any) -> dict[str, Any]:
        ws = principal.workspace_id
        page, total = None, None
        error = state.error
        if error is None:
            try:
                page, total = await _directory(runtime).listing(ws, state.spec, q=state.q, sort=state.sort,
                                                                segment_id=state.segment or None, cursor=cursor,
                                                                limit=PAGE_SIZE)
            except AppError as exc:  # a stale segment, a bad cursor: said on the page, nothing listed
                error = exc
        return {"active": "contacts", "state": state, "page": page, "total": total, "list_error": error,
                "segments": await segment_links(ws), "sort_choices": SORT_CHOICES, "op_names": OP_NAMES,
                "is_admin": principal.is_admin, "notice": None, **extra}

    @get("/")
    async def index(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        """The list; with HTMX (the filter form, a condition row added or removed) only its main part."""
        params = _pairs(request)
        add = request.query_params.get("add_row") == "1"
        drop = request.query_params.get("drop_row")
        state = await list_state(principal.workspace_id, params, add_row=add,
                                 drop_row=int(drop) if drop and drop.isdigit() else None)
        context = await self._list_context(runtime, principal, state)
        return render(request, "contacts/index.html", "contacts/_main.html", context)

    @get("/rows")
    async def more_rows(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        """The next page of rows (the "Load more" button replaces itself with them)."""
        state = await list_state(principal.workspace_id, _pairs(request))
        context = await self._list_context(runtime, principal, state, cursor=request.query_params.get("cursor"))
        return Template("contacts/_rows.html", context=context)

    @post("/bulk", status_code=200)
    async def bulk(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        """An action on the ticked contacts, or on every contact the list's filter matches."""
        form, _ = await read_form(request)
        ids = await read_list(request, "ids")
        pairs = [(k, v) for k in ("q", "sort", "match", "segment", "field", "op", "value")
                 for v in await read_list(request, k)]
        state = await list_state(principal.workspace_id, pairs)
        notice, error = None, None
        try:
            result = await _directory(runtime).bulk_from_page(
                principal, form.get("action", ""), ids=ids, everything=form.get("scope") == "all",
                spec=state.spec, q=state.q, segment_id=state.segment or None, value=form.get("value", ""),
                key=form.get("key", ""))
            notice = result.sentence
        except AppError as exc:
            error = exc
        context = await self._list_context(runtime, principal, state, notice=notice)
        return render(request, "contacts/index.html", "contacts/_main.html", context, error=error)

    @post("/segments", status_code=200)
    async def save_segment(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Response[Any] | Template:
        """Save the list's conditions as a named segment (broadcasts and automations pick it later)."""
        form, _ = await read_form(request)
        pairs = [(k, v) for k in ("q", "sort", "match", "field", "op", "value") for v in await read_list(request, k)]
        state = await list_state(principal.workspace_id, pairs)
        try:
            segment = await segments.create(principal.workspace_id, form.get("segment_name", ""),
                                             state.spec.model_dump(mode="json") if state.spec else None,
                                             by=principal.user_id)
        except AppError as exc:
            context = await self._list_context(runtime, principal, state)
            return render(request, "contacts/index.html", "contacts/_main.html", context, error=exc)
        return go_to(request, f"/contacts?segment={segment.id}")

    @post("/segments/{segment_id:str}/delete", status_code=200)
    async def delete_segment(self, request: Request, principal: NamedDependency[Principal], segment_id: FromPath[str]) -> Response[Any]:
        await segments.delete(principal.workspace_id, segment_id)
        return go_to(request, "/contacts")

    # --- one contact ----------------------------------------------------------------------------------
    async def _show(self, request: Request, principal: Principal, contact_id: str, *, error: AppError | None = None,
                    saved: str | None = None) -> Template:
        contact = await profiles.contact(principal.workspace_id, contact_id)
        view = await profiles.view(principal.scope, contact)
        return render(request, "contacts/show.html", "contacts/_profile.html",
                      {"active": "contacts", "view": view, "c": view.contact, "saved": saved,
                       "is_admin": principal.is_admin}, error=error)

    @get("/{contact_id:str}")
    async def show(self, request: Request, principal: NamedDependency[Principal], contact_id: FromPath[str]) -> Response[Any] | Template:
        """The contact's page; a contact merged into another one leads to the one it became."""
        try:
            return await self._show(request, principal, contact_id)
        except NotFound:
            survivor = await merger.merged_into(principal.workspace_id, contact_id)
            if survivor is None:
                raise
            return go_to(request, f"/contacts/{survivor}")

    @post("/{contact_id:str}", status_code=200)
    async def edit(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], contact_id: FromPath[str]) -> Template:
        """Name, email, tags and every attribute of the form, each validated by its type."""
        form, _ = await read_form(request)
        contact = await profiles.contact(principal.workspace_id, contact_id)
        attributes = {k[len("attr."):]: v for k, v in form.items() if k.startswith("attr.")}
        try:
            await _directory(runtime).update(contact, name=form.get("name", contact.name), email=form.get("email"),
                                             tags=[t for t in form.get("tags", "").split(",")],
                                             attributes=attributes)
        except AppError as exc:
            return await self._show(request, principal, contact_id, error=exc)
        return await self._show(request, principal, contact_id, saved="details")

    @post("/{contact_id:str}/consent", status_code=200)
    async def consent(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], contact_id: FromPath[str]) -> Template:
        form, _ = await read_form(request)
        contact = await profiles.contact(principal.workspace_id, contact_id)
        await _directory(runtime).editing.set_opt_out(contact, form.get("opted_out") == "1", source="agent",
                                                      by=str(principal.user_id) if principal.user_id else None)
        return await self._show(request, principal, contact_id, saved="consent")

    @post("/{contact_id:str}/notes", status_code=200)
    async def add_note(self, request: Request, principal: NamedDependency[Principal], contact_id: FromPath[str]) -> Template:
        form, _ = await read_form(request)
        contact = await profiles.contact(principal.workspace_id, contact_id)
        try:
            await profiles.add_note(contact, form.get("note", ""), by=principal.user_id,
                                    by_name=principal.user.name if principal.user else "")
        except AppError as exc:
            return await self._show(request, principal, contact_id, error=exc)
        return await self._show(request, principal, contact_id, saved="note")

    @post("/{contact_id:str}/notes/{note_id:str}/delete", status_code=200)
    async def delete_note(self, request: Request, principal: NamedDependency[Principal], contact_id: FromPath[str], note_id: FromPath[str]) -> Template:
        contact = await profiles.contact(principal.workspace_id, contact_id)
        await profiles.delete_note(contact, note_id)
        return await self._show(request, principal, contact_id)

    @post("/{contact_id:str}/message", status_code=200)
    async def message(self, request: Request, principal: NamedDependency[Principal], contact_id: FromPath[str]) -> Response[Any] | Template:
        """Open the contact's conversation on the chosen number (started if new) in the inbox, where the
        composer offers a template when WhatsApp's 24-hour window is closed."""
        form, _ = await read_form(request)
        contact = await profiles.contact(principal.workspace_id, contact_id)
        try:
            conversation = await profiles.start_conversation(principal.scope, contact, form.get("account_id", ""))
        except AppError as exc:
            return await self._show(request, principal, contact_id, error=exc)
        return go_to(request, f"/inbox?c={conversation.id}")

    @post("/{contact_id:str}/delete", status_code=200)
    async def erase(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], contact_id: FromPath[str]) -> Response[Any]:
        """Erase the contact with everything of theirs (GDPR): admins only."""
        if not principal.is_admin:
            raise Forbidden("Only admins can erase a contact.", error_code="ADMIN_REQUIRED")
        contact = await profiles.contact(principal.workspace_id, contact_id)
        await _directory(runtime).erase(contact)
        return go_to(request, "/contacts")
