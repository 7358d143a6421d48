"""ContactImport, ImportRefusal and ContactExport: the state of CSV imports and exports, kept in MongoDB.

An import's file and, at the end, its report of refused rows are files of the media store (GridFS,
app/domains/media/store.py, kinds ``contacts-import`` / ``contacts-report``); an export's CSV is one
or more parts there (``contacts-export``), each written by one worker slice and downloaded in order.

Workers take an import or export by a lease (``owner``, ``lease_until``): a worker extends it at
each checkpoint, and one that died lets it lapse; the sweeper (workers/tasks.py
``sweep_contact_files``) then queues a new slice. ``generation`` numbers the slices: a job whose
generation is not the document's (a duplicate, or one the sweeper replaced) does nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field

from app.db import WorkspaceDocument, utcnow

ImportMode = Literal["create", "update", "upsert"]
"""create only: new contacts, existing ones left alone; update existing: no new contacts; create and update."""
ImportStatus = Literal["uploaded", "running", "done", "failed", "cancelled"]
ExportStatus = Literal["running", "done", "failed", "expired"]
OUTCOMES = ("created", "updated", "unchanged", "skipped")


class ImportCounts(BaseModel):
    """Rows handled so far, by outcome (``done`` is their sum)."""

    done: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0

    def add(self, other: ImportCounts) -> ImportCounts:
        return ImportCounts(**{k: getattr(self, k) + getattr(other, k) for k in ImportCounts.model_fields})


class PendingBatch(BaseModel):
    """A batch whose outcome was counted before its contacts were written: after a crash, the next slice
    writes it again (what is already there changes nothing) and keeps these counts."""

    start: int
    end: int
    """Records [start, end) of the file (record 0 is the header)."""
    counts: ImportCounts


class ContactImport(WorkspaceDocument):
    filename: str = ""
    file_id: PydanticObjectId
    size: int
    encoding: str
    """The Python codec the file is read with (utf-8, utf-8-sig, utf-16, cp1252, ...)."""
    encoding_label: str = ""
    """How the page names it, and how it was found (its BOM, valid UTF-8, or the detector's guess)."""
    delimiter: str = ","
    header: list[str] = Field(default_factory=list)
    preview: list[list[str]] = Field(default_factory=list)
    """The first data rows (cells cut for display)."""
    rows: int = 0
    """Data rows in the file (blank lines not counted)."""
    first_row: int = 1
    """The record after the header (record 0 is the file's first; blank lines before the header count)."""
    records: int = 0
    """Records in the file, the header and blank lines included."""
    mapping: list[str] = Field(default_factory=list)
    """Per column: "" (skipped), a field (phone, name, email, user_id, tags, opted_out, consent) or
    ``attributes.<key>``."""
    mode: ImportMode = "upsert"
    tags: list[str] = Field(default_factory=list)
    """Tags added to every contact the import creates or updates."""
    default_country: str | None = None
    """ISO 3166 region for numbers written without a country code (none: such numbers are refused)."""
    status: ImportStatus = "uploaded"
    counts: ImportCounts = Field(default_factory=ImportCounts)
    next_record: int = 0
    """The checkpoint: the first record not yet written (with ``pending`` the batch being written)."""
    pending: PendingBatch | None = None
    generation: int = 0
    owner: str | None = None
    lease_until: datetime | None = None
    queued_at: datetime | None = None
    restarts: int = 0
    """Slices the sweeper had to queue again (a worker died); too many and the import fails."""
    error: str = ""
    report_file_id: PydanticObjectId | None = None
    files_deleted_at: datetime | None = None
    """When the retention sweep deleted the upload and the report (INBOX_CONTACT_FILES_KEEP_DAYS)."""
    created_by: PydanticObjectId | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "contact_imports"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("created_at", -1)]),
            # The sweeper's look for imports a dead worker left (few documents are ever running).
            pymongo.IndexModel([("status", 1), ("lease_until", 1)]),
        ]


class ImportRefusal(Document):
    """A row the import refused, with why: gathered while running, written as the report CSV at the end."""

    import_id: PydanticObjectId
    row: int
    """The row number a spreadsheet shows (the header is row 1)."""
    reason: str
    cells: list[str] = Field(default_factory=list)

    class Settings:
        name = "contact_import_refusals"
        # Unique: a batch written again after a crash adds its refusals once.
        indexes = [pymongo.IndexModel([("import_id", 1), ("row", 1)], unique=True)]


class ContactExport(WorkspaceDocument):
    """A CSV export prepared by workers (large lists), in parts; downloaded as one file."""

    filter: dict[str, Any] | None = None
    segment_id: PydanticObjectId | None = None
    q: str | None = None
    ids: list[str] | None = None
    columns: list[str] = Field(default_factory=list)
    status: ExportStatus = "running"
    rows: int = 0
    total: int | None = None
    """How many contacts matched when the first slice ran."""
    parts: list[PydanticObjectId] = Field(default_factory=list)
    after_created_at: datetime | None = None
    after_id: PydanticObjectId | None = None
    """The checkpoint: the last contact written (contacts go out in (created_at, _id) order)."""
    generation: int = 0
    owner: str | None = None
    lease_until: datetime | None = None
    queued_at: datetime | None = None
    restarts: int = 0
    error: str = ""
    filename: str = "contacts.csv"
    created_by: PydanticObjectId | None = None
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "contact_exports"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("created_at", -1)]),
                   pymongo.IndexModel([("status", 1), ("lease_until", 1)])]
