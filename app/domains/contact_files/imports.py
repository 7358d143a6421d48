"""An import's life before and around the worker: the upload read and kept, the options checked, the start,
cancelling, and what the page and the API show of it.

The upload is read through once in a thread (reading.py ``analyse``: encoding, delimiter, header, the
first rows, the row count) before anything is stored: an empty file, a workbook, a file in an
encoding nobody can tell, or one over ``MAX_ROWS`` rows is refused there with its reason (422), and
one over ``MAX_BYTES`` never got this far (413 while it streamed in: app/domains/outbox/uploads.py).
Then the file goes to the media store (GridFS), where the worker streams it from.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import phonenumbers
from beanie import PydanticObjectId
from pydantic import BaseModel, ConfigDict, Field
from pymongo import ReturnDocument

from app.db import utcnow
from app.domains.contact_files.importing import ContinueLater
from app.domains.contact_files.models import ContactImport, ImportCounts, ImportMode
from app.domains.contact_files.reading import MAX_BYTES, MAX_ROWS, FileRefused, analyse
from app.domains.contact_files.rows import ATTRIBUTE, FIELDS, check_mapping, guess_mapping
from app.domains.contacts.attribute_values import attribute_definitions
from app.domains.contacts.editing import clean_tags
from app.domains.media.models import StoredMedia
from app.domains.media.store import MediaStore
from app.domains.outbox.media import Upload
from app.errors import Conflict, Gone, NotFound, PayloadTooLarge, ValidationFailed
from app.logging import get_logger

log = get_logger(__name__)

FILE_KIND = "contacts-import"
MODES = {"create": "Create new contacts only", "update": "Update existing contacts only",
         "upsert": "Create new contacts and update existing ones"}


def file_too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB: split it into smaller files "
                           f"(at most {MAX_ROWS:,} rows each).", error_code="FILE_TOO_LARGE")


class ImportOptions(BaseModel):
    """How to import an uploaded file. Everything is optional: the guessed mapping, "create and update"."""

    model_config = ConfigDict(extra="forbid")
    mapping: dict[str, str] | None = Field(
        None, description="Column name (as in the header, or `#<n>` for the n-th column) → `phone`, `name`, `email`, "
        "`user_id`, `tags`, `opted_out`, `consent`, `attributes.<key>`, or `\"\"` to skip it. Columns left out are "
        "skipped; without a mapping the guessed one is used.", examples=[{"Mobile": "phone", "Plan": "attributes.plan"}])
    mode: ImportMode = Field("upsert", description="`create` only new contacts, `update` only existing ones, "
                                                   "`upsert` both")
    tags: list[str] = Field(default_factory=list, description="Tags added to every contact created or updated",
                            max_length=30)
    default_country: str | None = Field(None, description="ISO 3166 country for numbers written without +",
                                        examples=["GB"], max_length=2)


class ContactImports:
    def __init__(self, store: MediaStore | None = None) -> None:
        self.store = store or MediaStore()

    async def receive(self, workspace_id: PydanticObjectId, upload: Upload, filename: str,
                      by: PydanticObjectId | None) -> ContactImport:
        """Read the uploaded file through, keep it, and guess its mapping; 422 when it cannot be imported."""
        try:
            layout = await asyncio.to_thread(analyse, upload.file, upload.size)
        except FileRefused as refused:
            raise ValidationFailed(refused.message, error_code=refused.code, details={"file": refused.message}) from None
        definitions = await attribute_definitions(workspace_id)
        stored = await self.store.put(workspace_id, upload.file, kind=FILE_KIND, content_type="text/csv",
                                      filename=filename[:200], sha256=upload.sha256)
        job = ContactImport(workspace_id=workspace_id, filename=filename[:200], file_id=stored.id, size=upload.size,
                            encoding=layout.encoding, encoding_label=layout.encoding_label, delimiter=layout.delimiter,
                            header=layout.header, preview=layout.preview, rows=layout.rows, first_row=layout.first_row,
                            records=layout.records, mapping=guess_mapping(layout.header, definitions), created_by=by)
        await job.insert()
        return job

    async def get(self, workspace_id: PydanticObjectId, import_id: str) -> ContactImport:
        return await ContactImport.get_scoped(workspace_id, import_id)

    async def recent(self, workspace_id: PydanticObjectId, limit: int = 10) -> list[ContactImport]:
        return await ContactImport.scoped(workspace_id).sort("-created_at").limit(limit).to_list()

    async def start(self, workspace_id: PydanticObjectId, import_id: str, options: ImportOptions,
                    continue_later: ContinueLater) -> ContactImport:
        """Check the options and queue the import (409 when it was started already)."""
        job = await self.get(workspace_id, import_id)
        if job.status != "uploaded":
            raise Conflict("This import has started already.", error_code="IMPORT_STARTED",
                           details={"status": job.status})
        definitions = await attribute_definitions(workspace_id)
        mapping = job.mapping if options.mapping is None else _mapping_list(options.mapping, job.header)
        mapping = check_mapping(mapping, job.header, definitions)
        tags = clean_tags(options.tags)
        country = (options.default_country or "").strip().upper() or None
        if country is not None and country not in phonenumbers.SUPPORTED_REGIONS:
            raise ValidationFailed(f"{country} is not a country code (ISO 3166, like GB or BR).",
                                   error_code="COUNTRY_INVALID", details={"default_country": country})
        now = utcnow()
        raw = await ContactImport.get_motor_collection().find_one_and_update(
            {"_id": job.id, "workspace_id": workspace_id, "status": "uploaded"},
            {"$set": {"status": "running", "mapping": mapping, "mode": options.mode, "tags": tags,
                      "default_country": country, "queued_at": now, "started_at": now, "updated_at": now,
                      "generation": 0}}, return_document=ReturnDocument.AFTER)
        if raw is None:
            raise Conflict("This import has started already.", error_code="IMPORT_STARTED")
        try:
            await continue_later(str(job.id), 0)
        except Exception as error:  # noqa: BLE001 - Redis away: the sweeper queues it within minutes
            log.warning("import not queued; the sweeper will", import_id=str(job.id), error=str(error))
        return ContactImport.model_validate(raw)

    async def cancel(self, workspace_id: PydanticObjectId, import_id: str) -> ContactImport:
        """Stop an import: rows written so far stay; the worker stops at its next batch."""
        job = await self.get(workspace_id, import_id)
        raw = await ContactImport.get_motor_collection().find_one_and_update(
            {"_id": job.id, "workspace_id": workspace_id, "status": {"$in": ["uploaded", "running"]}},
            {"$set": {"status": "cancelled", "owner": None, "lease_until": None, "finished_at": utcnow(),
                      "updated_at": utcnow()}}, return_document=ReturnDocument.AFTER)
        if raw is None:
            raise Conflict(f"This import is {job.status} already.", error_code="IMPORT_FINISHED")
        return ContactImport.model_validate(raw)

    async def report_download(self, workspace_id: PydanticObjectId, import_id: str
                              ) -> tuple[AsyncIterator[bytes], dict[str, str]]:
        """The refused rows' CSV as it streams, with its length and file name (page and API alike)."""
        stored = await self.report(await self.get(workspace_id, import_id))
        return self.store.stream(stored), {"Content-Length": str(stored.length),
                                           "Content-Disposition": f'attachment; filename="{stored.filename}"'}

    async def report(self, job: ContactImport) -> StoredMedia:
        """The CSV of refused rows (404 until the import is done, or when every row went in)."""
        if job.report_file_id is None and job.files_deleted_at is not None:
            raise Gone("The report was deleted with the import's file "
                       f"on {job.files_deleted_at:%Y-%m-%d} (files are kept for a while after an import ends).",
                       error_code="REPORT_DELETED")
        if job.report_file_id is None:
            raise NotFound("No report: " + ("every row was imported." if job.status == "done" else
                                            "it is written when the import ends."), error_code="NO_REPORT")
        return await self.store.get(job.workspace_id, str(job.report_file_id))


def _mapping_list(mapping: dict[str, str], header: list[str]) -> list[str]:
    """The API's {column name or "#n": field} as one entry per column."""
    out = [""] * len(header)
    exact = {name: i for i, name in reversed(list(enumerate(header)))}
    folded = {name.casefold(): i for i, name in reversed(list(enumerate(header)))}
    unknown = []
    for column, target in mapping.items():
        if column.startswith("#") and column[1:].isdigit() and 1 <= int(column[1:]) <= len(header):
            index = int(column[1:]) - 1
        elif column in exact or column.casefold() in folded:
            index = exact.get(column, folded.get(column.casefold(), 0))
        else:
            unknown.append(column)
            continue
        out[index] = target or ""
    if unknown:
        raise ValidationFailed("The mapping names columns the file does not have.", error_code="MAPPING_INVALID",
                               details={c[:60]: "no such column" for c in unknown[:10]})
    return out


def counts_of(job: ContactImport) -> ImportCounts:
    """Rows handled so far, the batch being written included."""
    return job.counts.add(job.pending.counts) if job.pending is not None else job.counts


def view(job: ContactImport) -> dict[str, Any]:
    """What the API answers and the page shows of an import."""
    counts = counts_of(job)
    return {"id": str(job.id), "status": job.status, "filename": job.filename, "size": job.size,
            "encoding": job.encoding_label or job.encoding, "delimiter": job.delimiter, "header": job.header,
            "preview": job.preview, "rows": job.rows,
            "mapping": {(name or f"#{i + 1}"): target for i, (name, target) in enumerate(zip(job.header, job.mapping,
                                                                                             strict=False))},
            "mode": job.mode, "tags": job.tags, "default_country": job.default_country,
            "counts": counts.model_dump(), "percent": min(100, round(100 * counts.done / job.rows)) if job.rows else 0,
            "error": job.error or None, "report": job.report_file_id is not None,
            "files_deleted_at": job.files_deleted_at,
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at}


def field_choices(definitions: dict[str, Any]) -> list[tuple[str, str]]:
    """(value, label) of every target a column can be mapped to, for the page's selects."""
    return [("", "Skip this column"), *FIELDS.items(),
            *((f"{ATTRIBUTE}{key}", f"Attribute: {d.name}") for key, d in sorted(
                definitions.items(), key=lambda kv: kv[1].name.casefold()))]
