"""Admin pages for message templates: list with filters, sync, create with field errors, delete, live rows.

The list subscribes to the workspace's live channel over a WebSocket: a ``template.updated`` event
(Meta's status webhook, a sync, a create) pushes the row partial with ``hx-swap-oob`` so its status
changes in place, the same ``_row.html`` the page renders.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from litestar import Controller, Request, WebSocket, get, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery
from litestar.response import Response, Template

from app.auth import requires_admin
from app.domains.templates.drafts import ButtonDraft, TemplateDraft, examples_from_text
from app.domains.templates.models import CATEGORIES, STATUSES
from app.domains.workspaces.services import Principal
from app.errors import AppError, NotFound
from app.forms import go_to, read_form, render
from app.logging import get_logger
from app.realtime import workspace_channel
from app.runtime import Runtime

log = get_logger(__name__)
BUTTON_ROWS = 4
SAMPLE_UPLOAD_LIMIT = 110 * 1024 * 1024  # a document sample may be 100 MB
LANGUAGES = ("en", "en_US", "en_GB", "es", "es_ES", "es_MX", "pt_BR", "pt_PT", "fr", "de", "it", "nl", "ar", "hi",
             "id", "he", "tr", "ru", "zh_CN", "ja", "ko")
_BUTTON_KEY = re.compile(r"^buttons\[(\d+)\]")


def _filters(status: str | None, category: str | None, language: str | None, waba_id: str | None) -> dict[str, str]:
    return {k: v for k, v in (("status", status), ("category", category), ("language", language),
                              ("waba_id", waba_id)) if v}


def _draft_from_form(form: dict[str, str]) -> tuple[TemplateDraft, list[int]]:
    """The draft and, for each of its buttons, the form row it came from (rows left empty are skipped)."""
    rows: list[int] = []
    buttons: list[ButtonDraft] = []
    for row in range(BUTTON_ROWS):
        kind = form.get(f"button_type_{row}", "")
        if not kind:
            continue
        value = form.get(f"button_value_{row}", "")
        rows.append(row)
        buttons.append(ButtonDraft(type=kind, text=form.get(f"button_text_{row}", ""),
                                   url=value if kind == "URL" else "", phone_number=value if kind == "PHONE_NUMBER" else "",
                                   example=form.get(f"button_example_{row}", "")))
    body = form.get("body", "")
    named = bool(re.search(r"\{\{\s*[a-z_][a-z0-9_]*\s*\}\}", body))
    header = form.get("header_format", "")
    draft = TemplateDraft(
        account_id=form.get("account_id", ""), name=form.get("name", ""), language=form.get("language", ""),
        category=form.get("category", ""), body=body, body_examples=examples_from_text(form.get("body_examples", ""), named),
        header_format=None if header in ("", "NONE") else header, header_text=form.get("header_text", ""),
        header_example=form.get("header_example", ""), footer=form.get("footer", ""), buttons=buttons)
    return draft, rows


def _errors_on_form_rows(error: AppError, rows: list[int]) -> AppError:
    """Point ``buttons[i]`` errors at the form row the i-th button was typed in."""
    def moved(key: str) -> str:
        match = _BUTTON_KEY.match(key)
        if match and int(match.group(1)) < len(rows):
            return f"buttons[{rows[int(match.group(1))]}]" + key[match.end():]
        return key
    error.details = {moved(k): v for k, v in error.details.items()}
    return error


class TemplatesController(Controller):
    path = "/admin/templates"
    guards = [requires_admin]
    include_in_schema = False

    async def _list_context(self, runtime: Runtime, principal: Principal, filters: dict[str, str],
                            **extra: Any) -> dict[str, Any]:
        templates = await runtime.templates.list(principal.workspace_id, **filters)
        accounts = await runtime.accounts.list(principal.workspace_id)
        return {"active": "templates", "templates": [runtime.templates.view(t) for t in templates],
                "filters": filters, "statuses": STATUSES, "categories": CATEGORIES,
                "languages": sorted({t.language for t in templates} | set(filters.get("language", "").split()) - {""}),
                "wabas": sorted({a.waba_id for a in accounts}), "has_accounts": bool(accounts), "report": None, **extra}

    @get("/")
    async def index(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], status: FromQuery[str | None] = None,
                    category: FromQuery[str | None] = None, language: FromQuery[str | None] = None,
                    waba_id: FromQuery[str | None] = None) -> Template:
        context = await self._list_context(runtime, principal, _filters(status, category, language, waba_id))
        return render(request, "admin/templates/index.html", "admin/templates/_table.html", context)

    @post("/sync", status_code=200)
    async def sync(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        report = await runtime.templates.sync(principal.workspace_id)
        context = await self._list_context(runtime, principal, {}, report=report.to_dict())
        return render(request, "admin/templates/index.html", "admin/templates/_table.html", context)

    async def _form_context(self, runtime: Runtime, principal: Principal, form: dict[str, str]) -> dict[str, Any]:
        accounts = await runtime.accounts.list(principal.workspace_id)
        return {"active": "templates", "accounts": [runtime.accounts.view(a) for a in accounts], "form": form,
                "categories": CATEGORIES, "languages": LANGUAGES, "button_rows": range(BUTTON_ROWS)}

    @get("/new")
    async def new(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        context = await self._form_context(runtime, principal, {"language": "en_US", "category": "UTILITY"})
        return Template("admin/templates/new.html", context={**context, "field_errors": {}})

    @post("/new", status_code=200, request_max_body_size=SAMPLE_UPLOAD_LIMIT)
    async def create(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Any:
        form, files = await read_form(request)
        draft, rows = _draft_from_form(form)
        upload = files.get("header_sample")
        sample = None
        if upload is not None and upload.filename:
            sample = (await upload.read(), upload.filename, upload.content_type or "")
        try:
            template = await runtime.templates.create(principal.workspace_id, draft, sample)
        except AppError as error:
            context = await self._form_context(runtime, principal, form)
            return render(request, "admin/templates/new.html", "admin/templates/_form.html", context,
                          error=_errors_on_form_rows(error, rows))
        return go_to(request, f"/admin/templates?created={template.id}")

    @post("/{template_id:str}/delete", status_code=200)
    async def delete(self, template_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Any:
        template = await runtime.templates.get(principal.workspace_id, template_id)
        try:
            await runtime.templates.delete(template)
        except AppError as error:
            return render(request, "admin/templates/index.html", "admin/templates/_row.html",
                          {"t": runtime.templates.view(template), "row_error": error.message,
                           **await self._list_context(runtime, principal, {})})
        if request.headers.get("hx-request"):
            return Response("", status_code=200)  # htmx removes the row
        return go_to(request, "/admin/templates")

    @websocket("/live")
    async def live(self, socket: WebSocket, channels: NamedDependency[ChannelsPlugin], runtime: NamedDependency[Runtime]) -> None:
        """Pushes changed rows; holds no database resources while waiting."""
        principal: Principal = socket.scope["user"]
        origin = socket.headers.get("origin")
        if origin and urlsplit(origin).netloc != socket.headers.get("host"):
            await socket.close(code=4403)  # another site's page may not listen to our workspace
            return
        await socket.accept()
        row = socket.app.template_engine.get_template("admin/templates/_row.html")

        async def push(message: bytes) -> None:
            event = json.loads(message)
            template_id = event.get("template_id")
            if event.get("event") == "template.deleted" and template_id:
                await socket.send_text(f'<tr id="tpl-{template_id}" hx-swap-oob="delete"></tr>')
            elif event.get("event") == "template.updated" and template_id:
                try:
                    template = await runtime.templates.get(principal.workspace_id, template_id)
                except NotFound:
                    return
                await socket.send_text(row.render(t=runtime.templates.view(template), oob=True))

        async with channels.start_subscription([workspace_channel(principal.workspace_id)]) as subscriber:
            async with subscriber.run_in_background(push, join=False):
                try:
                    while True:
                        await socket.receive_text()  # the page sends nothing; this ends on disconnect
                except WebSocketDisconnect:
                    pass
