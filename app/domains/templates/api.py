"""JSON API v1: message templates (admins only): list, create, sync from Meta, delete."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import Body, FromPath, FromQuery

from app.api_shapes import documented
from app.auth import requires_admin
from app.domains.templates.api_shapes import (
    TEMPLATE_CREATE_BODY,
    TemplatePage,
    TemplateShape,
    TemplateSyncReport,
)
from app.domains.templates.create_request import template_draft
from app.domains.workspaces.services import Principal
from app.errors import AppError
from app.runtime import Runtime


class TemplatesApi(Controller):
    path = "/api/v1/templates"
    guards = [requires_admin]
    tags = ["templates"]

    @get("/", summary="Templates with status, category, language, quality and rejection reason", responses=documented(200, TemplatePage, "The templates"))
    async def list_templates(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], status: FromQuery[str | None] = None,
                             category: FromQuery[str | None] = None, language: FromQuery[str | None] = None,
                             waba_id: FromQuery[str | None] = None, name: FromQuery[str | None] = None) -> dict[str, Any]:
        templates = await runtime.templates.list(principal.workspace_id, status=status, category=category,
                                                 language=language, waba_id=waba_id, name=name)
        return {"data": [runtime.templates.view(t) for t in templates], "next_cursor": None}

    @post("/", summary="Create a template and submit it to Meta for review (our shape or Meta's)", status_code=201,
          responses=documented(201, TemplateShape, "The template"))
    async def create_template(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal],
                              data: Annotated[Any, Body(title="TemplateCreate", schema_extra=TEMPLATE_CREATE_BODY)]
                              ) -> dict[str, Any]:
        """Checked against WhatsApp's rules before Meta sees it: 422 ``TEMPLATE_INVALID`` whose details name
        each field as sent (``body.examples``, ``components[0].example.body_text``, ``components[3].buttons[1].text``)."""
        draft, paths = template_draft(data)
        try:
            template = await runtime.templates.create(principal.workspace_id, draft)
        except AppError as error:
            raise paths.point(error) from None
        return runtime.templates.view(template)

    @post("/sync", summary="Fetch every template (all pages) from Meta", status_code=200, responses=documented(200, TemplateSyncReport, "What changed"))
    async def sync_templates(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return (await runtime.templates.sync(principal.workspace_id)).to_dict()

    @get("/{template_id:str}", summary="One template", responses=documented(200, TemplateShape, "The template"))
    async def get_template(self, template_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return runtime.templates.view(await runtime.templates.get(principal.workspace_id, template_id))

    @delete("/{template_id:str}", summary="Delete the template at Meta and here", status_code=204)
    async def delete_template(self, template_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> None:
        await runtime.templates.delete(await runtime.templates.get(principal.workspace_id, template_id))
