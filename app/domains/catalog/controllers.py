"""Admin pages for canned responses, labels and custom contact attributes (one section each)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from app.auth import requires_admin
from app.domains.catalog.models import ATTRIBUTE_TYPES
from app.domains.catalog.services import Catalog
from app.domains.workspaces.services import Principal
from app.errors import AppError
from app.forms import read_form, render

catalog = Catalog()


def _options(raw: str) -> list[str]:
    return [line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()]


class _CatalogPages(Controller):
    """One vocabulary's page: list with inline edit, add form, delete. Subclasses name the kind."""

    kind = ""
    guards = [requires_admin]
    include_in_schema = False

    async def _context(self, principal: Principal, **extra: Any) -> dict[str, Any]:
        ws, kind = principal.workspace_id, self.kind
        items = {"canned": catalog.canned_responses, "labels": catalog.labels,
                 "attributes": catalog.attributes}[kind]
        context = {"active": kind, "kind": kind, "items": [catalog.view(i) for i in await items(ws)], "form": {},
                   "editing": None, "edit_form": {}, "saved": False, "field_errors": {}, "error": None,
                   "attribute_types": ATTRIBUTE_TYPES}
        if kind == "canned":
            context["variables"] = await catalog.variables(ws)
        return {**context, **extra}

    def _answer(self, request: Request, context: dict[str, Any], error: AppError | None = None) -> Template:
        return render(request, f"admin/catalog/{self.kind}.html", f"admin/catalog/_{self.kind}.html", context,
                      error=error)

    async def _save(self, request: Request, principal: Principal, item_id: str | None) -> Template:
        form, _ = await read_form(request)
        ws = principal.workspace_id
        try:
            if self.kind == "canned":
                item = await catalog.canned_response(ws, item_id) if item_id else None
                await catalog.save_canned_response(ws, form.get("shortcut", ""), form.get("text", ""), item)
            elif self.kind == "labels":
                item = await catalog.label(ws, item_id) if item_id else None
                await catalog.save_label(ws, form.get("name", ""), form.get("colour", ""), item)
            else:
                item = await catalog.attribute(ws, item_id) if item_id else None
                await catalog.save_attribute(ws, form.get("name", ""), form.get("type", ""), form.get("key", ""),
                                             _options(form.get("options", "")), item)
        except AppError as error:
            extra = {"form": form} if item_id is None else {"editing": item_id, "edit_form": form}
            return self._answer(request, await self._context(principal, **extra), error)
        return self._answer(request, await self._context(principal, saved=True))

    @get("/")
    async def index(self, principal: NamedDependency[Principal]) -> Template:
        return Template(f"admin/catalog/{self.kind}.html", context=await self._context(principal))

    @post("/", status_code=200)
    async def create(self, request: Request, principal: NamedDependency[Principal]) -> Template:
        return await self._save(request, principal, None)

    @post("/{item_id:str}", status_code=200)
    async def update(self, item_id: FromPath[str], request: Request, principal: NamedDependency[Principal]) -> Template:
        return await self._save(request, principal, item_id)

    @post("/{item_id:str}/delete", status_code=200)
    async def delete(self, item_id: FromPath[str], request: Request, principal: NamedDependency[Principal]) -> Template:
        ws = principal.workspace_id
        if self.kind == "canned":
            await (await catalog.canned_response(ws, item_id)).delete()
        elif self.kind == "labels":
            await catalog.delete_label(await catalog.label(ws, item_id))
        else:
            await (await catalog.attribute(ws, item_id)).delete()
        return self._answer(request, await self._context(principal))


class CannedPages(_CatalogPages):
    path = "/admin/canned"
    kind = "canned"


class LabelPages(_CatalogPages):
    path = "/admin/labels"
    kind = "labels"


class AttributePages(_CatalogPages):
    path = "/admin/attributes"
    kind = "attributes"
