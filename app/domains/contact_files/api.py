"""JSON API v1: contact imports (admins: upload a CSV, start it with a mapping, poll it, its report) and
exports (anyone signed in: stream a filter's or a segment's contacts as CSV, or a worker job for large
lists). Thin handlers over imports.py, export_jobs.py and exporting.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import Stream
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from app.api_shapes import documented, multipart
from app.auth import requires_admin, requires_login
from app.db import utcnow
from app.domains.contact_files.export_jobs import ContactExports, progress_of
from app.domains.contact_files.exporting import STREAM_LIMIT, count_up_to, filename_for, selection, stream_csv
from app.domains.contact_files.imports import ContactImports, ImportOptions, file_too_large, view
from app.domains.contact_files.reading import MAX_BYTES
from app.domains.contacts.filters import parse_filter
from app.domains.outbox.uploads import ReceivedForm, receive_upload
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.queue import enqueue_contact_export, enqueue_contact_import
from app.runtime import Runtime

imports = ContactImports()
exports = ContactExports()
CSV = "text/csv"


class ImportCountsOut(BaseModel):
    done: int = Field(description="Rows handled so far (the sum of the four below)")
    created: int
    updated: int
    unchanged: int = Field(description="Rows that matched a contact and changed nothing (a file imported twice)")
    skipped: int = Field(description="Rows refused, each with its reason in the report")


class ImportOut(BaseModel):
    id: str
    status: str = Field(description="uploaded (waiting for start), running, done, failed or cancelled")
    filename: str
    size: int = Field(description="Bytes")
    encoding: str = Field(description="How the file is read, and how that was found", examples=["UTF-8"])
    delimiter: str = Field(examples=[","])
    header: list[str]
    preview: list[list[str]] = Field(description="The first rows, cells cut at 200 characters")
    rows: int = Field(description="Data rows in the file")
    mapping: dict[str, str] = Field(description="Column → field (guessed until started); \"\" = skipped")
    mode: str
    tags: list[str]
    default_country: str | None
    counts: ImportCountsOut
    percent: int = Field(description="Rows done, in % of rows")
    error: str | None = None
    report_url: str | None = Field(None, description="The refused rows with their reasons (CSV), once done")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    files_deleted_at: datetime | None = Field(None, description="When the upload and the report were deleted "
                                              "(INBOX_CONTACT_FILES_KEEP_DAYS after the end); the counts stay")


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filter: dict[str, Any] | None = Field(None, description="The contacts filter language (as GET /api/v1/contacts)")
    segment: str | None = Field(None, description="A segment id")
    q: str | None = Field(None, max_length=100, description="Search words")
    ids: list[str] | None = Field(None, max_length=1000, description="Only these contacts")


class ExportOut(BaseModel):
    id: str
    status: str = Field(description="running, done, failed, or expired (its file deleted after "
                        "INBOX_CONTACT_FILES_KEEP_DAYS)")
    rows: int = Field(description="Contacts written so far")
    total: int | None = Field(None, description="Contacts that matched when it started (null until then)")
    error: str | None = None
    filename: str
    download_url: str | None = Field(None, description="Once done: the CSV file")
    created_at: datetime
    finished_at: datetime | None


_MultipartUpload = multipart(
    "The CSV file (≤ 20 MB, ≤ 100,000 rows)",
    options="Optional: the start options as JSON (as POST .../{import_id}/start); given, the import starts at once")


@asynccontextmanager
async def received_csv(request: Request[Any, Any, Any]) -> AsyncIterator[ReceivedForm]:
    """The multipart form of a CSV upload (422 MULTIPART_REQUIRED / a missing 'file' part; 413 past 20 MB), its
    file in a temporary file for as long as the block runs."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise ValidationFailed("Upload the CSV as multipart/form-data with a 'file' part.",
                               error_code="MULTIPART_REQUIRED")
    async with receive_upload(request, limit=MAX_BYTES, too_large=file_too_large) as form:
        if form.file is None:
            raise ValidationFailed("The 'file' part is missing.", details={"file": "required"})
        yield form


def import_out(job: Any) -> ImportOut:
    data = view(job)
    report = f"/api/v1/contacts/imports/{data['id']}/report.csv" if data.pop("report") else None
    return ImportOut(**data, report_url=report)


def export_out(job: Any) -> ExportOut:
    data = progress_of(job)
    return ExportOut(**data, download_url=f"/api/v1/contacts/exports/{data['id']}/download"
                     if job.status == "done" else None)


def _continue_import(runtime: Runtime) -> Any:
    return lambda import_id, generation: enqueue_contact_import(runtime.arq, import_id, generation)


def _continue_export(runtime: Runtime) -> Any:
    return lambda export_id, generation: enqueue_contact_export(runtime.arq, export_id, generation)


def _options(text: str | None) -> ImportOptions | None:
    if text is None:
        return None
    try:
        return ImportOptions.model_validate_json(text)
    except PydanticValidationError as error:
        raise ValidationFailed("'options' must be the start options as JSON.", error_code="OPTIONS_INVALID",
                               details={".".join(map(str, e["loc"])) or "options": e["msg"] for e in
                                        error.errors()[:10]}) from None


class ContactImportsApi(Controller):
    path = "/api/v1/contacts/imports"
    guards = [requires_admin]
    tags = ["contacts"]

    @post("/", status_code=201, summary="Upload a CSV file of contacts to import (admins)",
          request_max_body_size=MAX_BYTES + 1024 * 1024, operation_class=_MultipartUpload,
          responses=documented(201, ImportOut, "The import: its preview and guessed mapping, or running"))
    async def upload(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> ImportOut:
        """multipart/form-data with `file` (CSV: UTF-8, UTF-16 with BOM, or another encoding recognised;
        delimiter , ; tab or |) and optionally `options` (JSON): without options, check the guessed
        mapping and start it with `POST .../{import_id}/start`. Poll `GET .../{import_id}` for progress."""
        async with received_csv(request) as form:
            assert form.file is not None
            options = _options(form.fields.get("options"))
            job = await imports.receive(principal.workspace_id, form.file, form.filename, principal.user_id)
        if options is not None:
            job = await imports.start(principal.workspace_id, str(job.id), options, _continue_import(runtime))
        return import_out(job)

    @get("/{import_id:str}", summary="An import: status, counts and progress (admins)")
    async def get_import(self, principal: NamedDependency[Principal], import_id: FromPath[str]) -> ImportOut:
        return import_out(await imports.get(principal.workspace_id, import_id))

    @post("/{import_id:str}/start", status_code=202, summary="Start an uploaded import with its options (admins)",
          responses=documented(202, ImportOut, "The import, running"))
    async def start_import(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], import_id: FromPath[str],
                           data: JSONBody[ImportOptions]) -> ImportOut:
        return import_out(await imports.start(principal.workspace_id, import_id, data, _continue_import(runtime)))

    @post("/{import_id:str}/cancel", status_code=200, summary="Stop an import (rows written so far stay)")
    async def cancel_import(self, principal: NamedDependency[Principal], import_id: FromPath[str]) -> ImportOut:
        return import_out(await imports.cancel(principal.workspace_id, import_id))

    @get("/{import_id:str}/report.csv", media_type=CSV, summary="The rows an import refused, with why (CSV)")
    async def import_report(self, principal: NamedDependency[Principal], import_id: FromPath[str]) -> Stream:
        body, headers = await imports.report_download(principal.workspace_id, import_id)
        return Stream(body, media_type=CSV, headers=headers)


class ContactExportsApi(Controller):
    path = "/api/v1/contacts"
    guards = [requires_login]
    tags = ["contacts"]

    @get("/export.csv", media_type=CSV, summary="Contacts as CSV, streamed (up to 10,000; more: POST /exports)")
    async def export_csv(self, principal: NamedDependency[Principal],
                         filter: str | None = Parameter(default=None, max_length=20_000,
                                                        description="The contacts filter language, as JSON"),
                         segment: str | None = Parameter(default=None, max_length=40, description="A segment id"),
                         q: str | None = Parameter(default=None, max_length=100)) -> Stream:
        """Every attribute is a column; cells a spreadsheet would run as a formula start with an apostrophe."""
        query = await selection(principal.workspace_id, spec=parse_filter(filter) if filter else None, q=q,
                                segment_id=segment)
        if await count_up_to(query, STREAM_LIMIT + 1) > STREAM_LIMIT:
            raise ValidationFailed(f"More than {STREAM_LIMIT:,} contacts: ask for the export with POST "
                                   "/api/v1/contacts/exports and download it when it is ready.",
                                   error_code="EXPORT_TOO_LARGE")
        return Stream(stream_csv(principal.workspace_id, query), media_type=CSV, headers={
            "Content-Disposition": f'attachment; filename="{filename_for(utcnow())}"'})

    @post("/exports", status_code=202, summary="Prepare a CSV export in the background (any size)",
          responses=documented(202, ExportOut, "The export job: poll it until done, then download"))
    async def start_export(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal], data: JSONBody[ExportIn]) -> ExportOut:
        job = await exports.start(principal.workspace_id, filter=data.filter, q=data.q, segment_id=data.segment,
                                  ids=data.ids, by=principal.user_id, continue_later=_continue_export(runtime))
        return export_out(job)

    @get("/exports/{export_id:str}", summary="A background export: progress, and its download link once done")
    async def get_export(self, principal: NamedDependency[Principal], export_id: FromPath[str]) -> ExportOut:
        return export_out(await exports.get(principal.workspace_id, export_id))

    @get("/exports/{export_id:str}/download", media_type=CSV, summary="A finished export's CSV file")
    async def download_export(self, principal: NamedDependency[Principal], export_id: FromPath[str]) -> Stream:
        job = await exports.get(principal.workspace_id, export_id)
        chunks, length = await exports.download(job)
        return Stream(chunks, media_type=CSV, headers={
            "Content-Length": str(length), "Content-Disposition": f'attachment; filename="{job.filename}"'})
