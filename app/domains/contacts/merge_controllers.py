"""Admin pages: likely duplicate contacts, and merging two of them (both side by side, a choice per
field that differs, each one's conversations). Thin: each handler calls ContactMerger once."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from app.auth import requires_admin
from app.domains.contacts.duplicates import MAX_LIMIT
from app.domains.contacts.merge import ContactMerger
from app.domains.workspaces.services import Principal
from app.errors import AppError, ValidationFailed
from app.forms import go_to, read_form, render
from app.runtime import Runtime

PICK = "keep:"
"""Form fields "keep:<field>" = survivor | other (one radio pair per field that differs)."""


def _merger(runtime: Runtime) -> ContactMerger:
    return ContactMerger(runtime.live, runtime.integrations)


class ContactMergePages(Controller):
    path = "/contacts"
    guards = [requires_admin]
    include_in_schema = False

    @get("/duplicates")
    async def duplicates(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        pairs = await _merger(runtime).duplicates(principal.workspace_id, MAX_LIMIT)
        return Template("contacts/duplicates.html", context={"active": "contacts", "pairs": pairs})

    async def _page(self, request: Request, runtime: Runtime, principal: Principal, a: str, b: str, *,
                    picks: dict[str, str] | None = None, error: AppError | None = None) -> Template:
        preview = await _merger(runtime).preview(principal.workspace_id, a, b)
        return render(request, "contacts/merge.html", "contacts/merge.html",
                      {"active": "contacts", "p": preview, "picks": picks or {}}, error=error)

    @get("/merge")
    async def merge_page(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], a: FromQuery[str] = "",
                         b: FromQuery[str] = "") -> Template:
        """``a`` survives, ``b`` is merged into it (the page has a link to swap them)."""
        if not a or not b:
            raise ValidationFailed("Choose two contacts to merge.", error_code="MERGE_PAIR_MISSING",
                                   details={"a": a, "b": b})
        return await self._page(request, runtime, principal, a, b)

    @post("/merge", status_code=200)
    async def merge(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Response[Any] | Template:
        form, _ = await read_form(request)
        a, b = form.get("survivor_id", ""), form.get("other_id", "")
        picks = {k[len(PICK):]: v for k, v in form.items() if k.startswith(PICK)}
        try:
            merge = await _merger(runtime).merge(principal.workspace_id, a, b, choose=picks,
                                                 by=str(principal.user_id or ""))
        except ValidationFailed as error:
            if error.error_code in ("SAME_CONTACT", "GROUP_NOT_MERGEABLE"):
                raise
            return await self._page(request, runtime, principal, a, b, picks=picks, error=error)
        return go_to(request, f"/contacts/{merge.survivor_id}")
