"""The import and export pages: upload a CSV, check its preview and mapping, start it, watch it run (the
progress fragment is polled every second while it runs, so a reload shows where it is), download
the refused rows; export the contacts list as it is filtered, streamed, or by a worker when large.

Imports are for admins; exports for anyone signed in (agents see every contact of the workspace).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream, Template

from app.auth import requires_admin, requires_login
from app.db import utcnow
from app.domains.contact_files.export_jobs import ContactExports, progress_of
from app.domains.contact_files.exporting import STREAM_LIMIT, count_up_to, filename_for, selection, stream_csv
from app.domains.contact_files.imports import MODES, ContactImports, ImportOptions, field_choices, file_too_large, view
from app.domains.contact_files.reading import MAX_BYTES, MAX_ROWS, PREVIEW_ROWS
from app.domains.contacts.attribute_values import attribute_definitions
from app.domains.contacts.listing import list_state
from app.domains.outbox.uploads import receive_upload
from app.domains.workspaces.services import Principal
from app.errors import AppError, ValidationFailed
from app.forms import go_to, read_form, read_list, render
from app.queue import enqueue_contact_export, enqueue_contact_import
from app.runtime import Runtime

imports = ContactImports()
exports = ContactExports()
CSV = "text/csv"
COUNTRIES = ("", "AR", "AU", "BE", "BR", "CA", "CH", "CL", "CO", "DE", "EG", "ES", "FR", "GB", "ID", "IE", "IL", "IN",
             "IT", "KE", "MX", "MY", "NG", "NL", "PE", "PH", "PK", "PL", "PT", "SA", "SG", "TR", "US", "ZA")
"""Offered first on the page; any other ISO code can be typed (the list is a datalist)."""


def _continue_import(runtime: Runtime) -> Any:
    return lambda import_id, generation: enqueue_contact_import(runtime.arq, import_id, generation)


def _continue_export(runtime: Runtime) -> Any:
    return lambda export_id, generation: enqueue_contact_export(runtime.arq, export_id, generation)


def _limits() -> dict[str, Any]:
    return {"max_mb": MAX_BYTES // (1024 * 1024), "max_rows": MAX_ROWS, "preview_rows": PREVIEW_ROWS}


class ContactImportPages(Controller):
    path = "/contacts/import"
    guards = [requires_admin]
    include_in_schema = False

    async def _upload_page(self, principal: Principal, error: AppError | None = None) -> Template:
        context = {"active": "contacts", "recent": [view(j) for j in await imports.recent(principal.workspace_id)],
                   "error": error, **_limits()}
        return Template("contacts/import.html", context=context, status_code=error.status_code if error else 200)

    async def _show(self, request: Request, principal: Principal, import_id: str, *, form: dict[str, Any] | None = None,
                    error: AppError | None = None) -> Template:
        job = await imports.get(principal.workspace_id, import_id)
        definitions = await attribute_definitions(principal.workspace_id)
        data = view(job)
        context = {"active": "contacts", "job": data, "choices": field_choices(definitions), "modes": MODES,
                   "countries": COUNTRIES, "columns": list(zip(job.header, job.mapping, strict=False)),
                   "form": form or {"mode": job.mode, "tags": ", ".join(job.tags),
                                    "default_country": job.default_country or ""}, **_limits()}
        return render(request, "contacts/import_show.html", "contacts/_import_setup.html", context, error=error)

    @get("/")
    async def upload_page(self, principal: NamedDependency[Principal]) -> Template:
        return await self._upload_page(principal)

    @post("/", status_code=200, request_max_body_size=MAX_BYTES + 1024 * 1024)
    async def upload(self, request: Request, principal: NamedDependency[Principal]) -> Response[Any] | Template:
        """The file streams to a temporary file, refused at 20 MB; read through once; kept; its preview next."""
        try:
            async with receive_upload(request, limit=MAX_BYTES, too_large=file_too_large) as form:
                if form.file is None or not form.file.size and not form.filename:
                    raise ValidationFailed("Choose a CSV file.", error_code="NO_FILE", details={"file": "missing"})
                job = await imports.receive(principal.workspace_id, form.file, form.filename, principal.user_id)
        except AppError as error:
            return await self._upload_page(principal, error)
        return go_to(request, f"/contacts/import/{job.id}")

    @get("/{import_id:str}")
    async def show(self, request: Request, principal: NamedDependency[Principal], import_id: FromPath[str]) -> Template:
        """Before the start: the preview, the mapping, the options. After: the progress (polled while running)."""
        return await self._show(request, principal, import_id)

    @post("/{import_id:str}", status_code=200)
    async def start(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal],
                    import_id: FromPath[str]) -> Response[Any] | Template:
        form, _ = await read_form(request)
        job = await imports.get(principal.workspace_id, import_id)
        mapping = {f"#{i + 1}": value for i, value in enumerate(await read_list(request, "map"))}
        try:
            options = ImportOptions(mapping=mapping if len(mapping) == len(job.header) else None,
                                    mode=form.get("mode") if form.get("mode") in MODES else "upsert",  # type: ignore[arg-type]
                                    tags=[t for t in form.get("tags", "").replace(";", ",").split(",") if t.strip()],
                                    default_country=form.get("default_country") or None)
            await imports.start(principal.workspace_id, import_id, options, _continue_import(runtime))
        except AppError as error:
            return await self._show(request, principal, import_id, form=form, error=error)
        except ValueError as error:  # the options' own checks (a country code of 3 letters ...)
            wrapped = ValidationFailed("Check the options.", details={"default_country": str(error)[:200]})
            return await self._show(request, principal, import_id, form=form, error=wrapped)
        return go_to(request, f"/contacts/import/{import_id}")

    @get("/{import_id:str}/progress")
    async def progress(self, principal: NamedDependency[Principal], import_id: FromPath[str]) -> Template:
        """The progress fragment: it polls itself every second while the import runs, and stops when it ends."""
        job = await imports.get(principal.workspace_id, import_id)
        return Template("contacts/_import_progress.html", context={"job": view(job)})

    @post("/{import_id:str}/cancel", status_code=200)
    async def cancel(self, request: Request, principal: NamedDependency[Principal], import_id: FromPath[str]) -> Response[Any]:
        await imports.cancel(principal.workspace_id, import_id)
        return go_to(request, f"/contacts/import/{import_id}")

    @get("/{import_id:str}/report.csv", media_type=CSV)
    async def report(self, principal: NamedDependency[Principal], import_id: FromPath[str]) -> Stream:
        body, headers = await imports.report_download(principal.workspace_id, import_id)
        return Stream(body, media_type=CSV, headers=headers)


class ContactExportPage(Controller):
    path = "/contacts/export.csv"
    guards = [requires_login]
    include_in_schema = False

    @get("/", media_type=CSV)
    async def export_csv(self, request: Request, principal: NamedDependency[Principal]) -> Stream | Template:
        """The contacts list as filtered (the same query string), streamed; above 10,000 contacts, a page
        that offers to prepare the file in the background."""
        pairs = [(k, str(v)) for k, v in request.query_params.multi_items()]
        state = await list_state(principal.workspace_id, pairs)
        if state.error is not None:
            raise state.error
        ids = [i for k, i in pairs if k == "id"] or None
        query = await selection(principal.workspace_id, spec=state.spec, q=state.q, segment_id=state.segment or None,
                                ids=ids)
        count = await count_up_to(query, STREAM_LIMIT + 1)
        if count > STREAM_LIMIT:
            return Template("contacts/export_large.html", media_type="text/html", context={
                "active": "contacts", "limit": STREAM_LIMIT, "filter_json": state.filter_json, "q": state.q,
                "segment": state.segment, "ids": ids or [], "back": f"/contacts?{state.query_string()}"})
        return Stream(stream_csv(principal.workspace_id, query), media_type=CSV, headers={
            "Content-Disposition": f'attachment; filename="{filename_for(utcnow())}"'})


class ContactExportJobPages(Controller):
    path = "/contacts/exports"
    guards = [requires_login]
    include_in_schema = False

    @post("/", status_code=200)
    async def start(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Response[Any]:
        form, _ = await read_form(request)
        ids = await read_list(request, "id")
        job = await exports.start(principal.workspace_id, filter=_json_or_none(form.get("filter")),
                                  q=form.get("q") or None, segment_id=form.get("segment") or None, ids=ids or None,
                                  by=principal.user_id, continue_later=_continue_export(runtime))
        return go_to(request, f"/contacts/exports/{job.id}")

    @get("/{export_id:str}")
    async def show(self, principal: NamedDependency[Principal], export_id: FromPath[str]) -> Template:
        job = await exports.get(principal.workspace_id, export_id)
        return Template("contacts/export_job.html", context={"active": "contacts", "job": progress_of(job)})

    @get("/{export_id:str}/progress")
    async def progress(self, principal: NamedDependency[Principal], export_id: FromPath[str]) -> Template:
        job = await exports.get(principal.workspace_id, export_id)
        return Template("contacts/_export_progress.html", context={"job": progress_of(job)})

    @get("/{export_id:str}/download", media_type=CSV)
    async def download(self, principal: NamedDependency[Principal], export_id: FromPath[str]) -> Stream:
        job = await exports.get(principal.workspace_id, export_id)
        chunks, length = await exports.download(job)
        return Stream(chunks, media_type=CSV, headers={
            "Content-Length": str(length), "Content-Disposition": f'attachment; filename="{job.filename}"'})


def _json_or_none(text: str | None) -> Any:
    import json

    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise ValidationFailed("The filter is not valid JSON.", error_code="FILTER_INVALID") from None
