"""JSON API v1: message templates (admins only): list, create, sync from Meta, delete."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, post
from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import documented
from app.auth import requires_admin
from app.domains.templates.api_shapes import (
    TemplatePage,
    TemplateShape,
    TemplateSyncReport,
)
from app.domains.templates.drafts import ButtonDraft, TemplateDraft
from app.domains.workspaces.services import Principal
from app.runtime import Runtime


class HeaderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str = Field(description="TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION")
    text: str = ""
    example: str = Field("", description="Example value of the text header's placeholder")
    handle: str = Field("", description="A media header's sample: Meta's upload handle")


class ButtonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="QUICK_REPLY, URL or PHONE_NUMBER")
    text: str = ""
    url: str = ""
    phone_number: str = ""
    example: str = Field("", description="Sample value of a URL's trailing {{1}}")


class TemplateIn(BaseModel):
    """A template to submit for review; checked against WhatsApp's rules first (422 with field errors)."""

    model_config = ConfigDict(extra="forbid")
    account_id: str = Field("", description="A number of the WABA the template is created in")
    name: str = ""
    language: str = ""
    category: str = ""
    parameter_format: str | None = None
    header: HeaderIn | None = None
    body: str = ""
    body_examples: list[str] | dict[str, str] = Field(
        default_factory=list, description="One example per {{n}} in order, or {name: example} for named ones")
    footer: str = ""
    buttons: list[ButtonIn] = Field(default_factory=list)

    def draft(self) -> TemplateDraft:
        header = self.header
        return TemplateDraft(
            account_id=self.account_id, name=self.name.strip(), language=self.language.strip(),
            category=self.category.strip(), body=self.body, body_examples=self.body_examples,
            parameter_format=self.parameter_format, header_format=header.format if header else None,
            header_text=header.text if header else "", header_example=header.example if header else "",
            header_handle=header.handle if header else "", footer=self.footer,
            buttons=[ButtonDraft(**b.model_dump()) for b in self.buttons])


class TemplatesApi(Controller):
    path = "/api/v1/templates"
    guards = [requires_admin]
    tags = ["templates"]

    @get("/", summary="Templates with status, category, language, quality and rejection reason", responses=documented(200, TemplatePage, "The templates"))
    async def list_templates(self, runtime: Runtime, principal: Principal, status: str | None = None,
                             category: str | None = None, language: str | None = None,
                             waba_id: str | None = None, name: str | None = None) -> dict[str, Any]:
        templates = await runtime.templates.list(principal.workspace_id, status=status, category=category,
                                                 language=language, waba_id=waba_id, name=name)
        return {"data": [runtime.templates.view(t) for t in templates], "next_cursor": None}

    @post("/", summary="Create a template and submit it to Meta for review", status_code=201, responses=documented(201, TemplateShape, "The template"))
    async def create_template(self, data: TemplateIn, runtime: Runtime, principal: Principal) -> dict[str, Any]:
        return runtime.templates.view(await runtime.templates.create(principal.workspace_id, data.draft()))

    @post("/sync", summary="Fetch every template (all pages) from Meta", status_code=200, responses=documented(200, TemplateSyncReport, "What changed"))
    async def sync_templates(self, runtime: Runtime, principal: Principal) -> dict[str, Any]:
        return (await runtime.templates.sync(principal.workspace_id)).to_dict()

    @get("/{template_id:str}", summary="One template", responses=documented(200, TemplateShape, "The template"))
    async def get_template(self, template_id: str, runtime: Runtime, principal: Principal) -> dict[str, Any]:
        return runtime.templates.view(await runtime.templates.get(principal.workspace_id, template_id))

    @delete("/{template_id:str}", summary="Delete the template at Meta and here", status_code=204)
    async def delete_template(self, template_id: str, runtime: Runtime, principal: Principal) -> None:
        await runtime.templates.delete(await runtime.templates.get(principal.workspace_id, template_id))
