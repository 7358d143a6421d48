"""Large exports, prepared by workers: the CSV written in parts to the media store, downloaded as one file.

A job keeps what was asked (filter, search, segment, ids) and, once its first slice has run, the
columns, so every part has the same ones. Each slice (at most ``SLICE_SECONDS``, like an import's:
see importing.py for why) writes the next contacts after its checkpoint into a temporary file on
disk, stores it as one part, then moves the checkpoint (the last contact written) and queues the next
slice. A worker that dies mid-slice stored nothing the job refers to: the sweeper queues the slice
again from the same checkpoint. The download streams the parts in order, one GridFS chunk at a time.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument

from app.db import parse_object_id, utcnow
from app.domains.audit import services as audit
from app.domains.contact_files.exporting import (
    CsvText,
    columns,
    count_up_to,
    filename_for,
    header_of,
    pages,
    row_of,
    selection,
)
from app.domains.contact_files.importing import LEASE, ContinueLater, sweep_slices
from app.domains.contact_files.models import ContactExport
from app.domains.contacts.attribute_values import attribute_definitions
from app.domains.contacts.filters import parse_filter
from app.domains.media.models import StoredMedia
from app.domains.media.store import MediaStore
from app.errors import Gone, ValidationFailed
from app.logging import get_logger

log = get_logger(__name__)

SLICE_SECONDS = 45.0
PART_KIND = "contacts-export"


class ContactExports:
    def __init__(self, store: MediaStore | None = None, *, slice_seconds: float = SLICE_SECONDS,
                 page: int = 1000) -> None:
        self.store = store or MediaStore()
        self.slice_seconds = slice_seconds
        self.page = page

    async def start(self, workspace_id: PydanticObjectId, *, filter: dict[str, Any] | None, q: str | None,
                    segment_id: str | None, ids: list[str] | None, by: PydanticObjectId | None,
                    continue_later: ContinueLater) -> ContactExport:
        """A job for the worker; the selection is checked first (422 for a bad filter, 404 for a segment)."""
        spec = parse_filter(filter) if filter else None
        await selection(workspace_id, spec=spec, q=q, segment_id=segment_id, ids=ids)
        now = utcnow()
        job = ContactExport(workspace_id=workspace_id, filter=spec.model_dump(mode="json") if spec else None,
                            q=q or None, segment_id=parse_object_id(segment_id) if segment_id else None,
                            ids=ids, created_by=by, queued_at=now, filename=filename_for(now))
        await job.insert()
        await audit.record(workspace_id, "contacts.exported", "contact_export", job.id, job.filename,
                           {"filter": job.filter, "q": job.q, "segment_id": job.segment_id,
                            "contacts_chosen": len(ids) if ids else None})
        try:
            await continue_later(str(job.id), 0)
        except Exception as error:  # noqa: BLE001 - Redis away: the sweeper queues it when it is back
            log.warning("export job not queued; the sweeper will", export_id=str(job.id), error=str(error))
        return job

    async def get(self, workspace_id: PydanticObjectId, export_id: str) -> ContactExport:
        return await ContactExport.get_scoped(workspace_id, export_id)

    async def download(self, job: ContactExport) -> tuple[AsyncIterator[bytes], int]:
        """The finished export's bytes (its parts in order) and their length; 409 while it runs."""
        if job.status == "expired":
            raise Gone("This export's file was deleted (files are kept for a while): export the list again.",
                       error_code="EXPORT_EXPIRED")
        if job.status != "done":
            raise ValidationFailed("The export is not ready yet." if job.status == "running" else
                                   f"The export failed: {job.error}", error_code="EXPORT_NOT_READY",
                                   status_code=409)
        parts = [await self.store.get(job.workspace_id, str(part)) for part in job.parts]

        async def chunks() -> AsyncIterator[bytes]:
            for part in parts:
                async for chunk in self.store.stream(part):
                    yield chunk

        return chunks(), sum(p.length for p in parts)

    # ---- the worker ---------------------------------------------------------------------------------

    async def run(self, export_id: str, generation: int, continue_later: ContinueLater) -> str:
        collection = ContactExport.get_motor_collection()
        now = utcnow()
        token = secrets.token_hex(8)
        raw = await collection.find_one_and_update(
            {"_id": parse_object_id(export_id), "status": "running", "generation": generation,
             "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]},
            {"$set": {"owner": token, "lease_until": now + LEASE, "updated_at": now}},
            return_document=ReturnDocument.AFTER)
        if raw is None:
            return "not ours"
        job = ContactExport.model_validate(raw)
        try:
            return await self._slice(job, token, continue_later)
        except Exception as error:  # noqa: BLE001 - kept on the job; the sweeper tries again (capped)
            log.exception("contact export slice failed", export_id=export_id)
            await collection.update_one({"_id": job.id, "owner": token}, {"$set": {
                "error": f"{type(error).__name__}: {str(error)[:300]}", "lease_until": utcnow(), "owner": None}})
            return "failed"

    async def _slice(self, job: ContactExport, token: str, continue_later: ContinueLater) -> str:
        ws = job.workspace_id
        spec = parse_filter(job.filter) if job.filter else None
        query = await selection(ws, spec=spec, q=job.q, segment_id=str(job.segment_id) if job.segment_id else None,
                                ids=job.ids)
        chosen = job.columns or await columns(ws, query)
        total = job.total if job.total is not None else await count_up_to(query, 10_000_000)
        definitions = await attribute_definitions(ws)
        deadline = time.monotonic() + self.slice_seconds
        after = (job.after_created_at, job.after_id) if job.after_id and job.after_created_at else None
        written, last, finished = 0, after, True
        with tempfile.SpooledTemporaryFile(max_size=1024 * 1024, prefix="wa-inbox-export-") as spool:
            text = CsvText(bom=not job.parts)
            if not job.parts:
                text.row([header_of(c) for c in chosen])
            async for docs in pages(query, after=after, page=self.page):
                for doc in docs:
                    block = text.row(row_of(doc, chosen, definitions))
                    if block:
                        spool.write(block)
                written += len(docs)
                last = (docs[-1]["created_at"], docs[-1]["_id"])
                if time.monotonic() >= deadline:
                    finished = False
                    break
            spool.write(text.take())
            part: StoredMedia | None = None
            if spool.tell():
                part = await self.store.put(ws, spool, kind=PART_KIND, content_type="text/csv",
                                            filename=f"{job.filename}.part{len(job.parts) + 1}")
        now = utcnow()
        sets: dict[str, Any] = {"columns": chosen, "total": total, "updated_at": now, "owner": None,
                                "lease_until": None}
        if last is not None:
            sets.update(after_created_at=last[0], after_id=last[1])
        if finished:
            sets.update(status="done", finished_at=now, error="")
        else:
            sets["queued_at"] = now
        update: dict[str, Any] = {"$set": sets, "$inc": {"rows": written, "generation": 0 if finished else 1}}
        if part is not None:
            update["$push"] = {"parts": part.id}
        result = await ContactExport.get_motor_collection().update_one(
            {"_id": job.id, "owner": token, "status": "running"}, update)
        if result.matched_count == 0:  # the sweeper gave it to another slice meanwhile: this part is not used
            if part is not None:
                await self.store.delete(ws, [part.id])
            return "lease lost"
        if finished:
            return "done"
        try:
            await continue_later(str(job.id), job.generation + 1)
        except Exception as error:  # noqa: BLE001 - the sweeper queues it when Redis is back
            log.warning("next export slice not queued; the sweeper will", export_id=str(job.id), error=str(error))
        return "continues"

    async def sweep(self, continue_later: ContinueLater) -> int:
        """Queue again the exports a dead worker left or whose slice never started (as imports)."""
        return await sweep_slices(ContactExport.get_motor_collection(), continue_later)


def progress_of(job: ContactExport) -> dict[str, Any]:
    """What the export's page and API show."""
    return {"id": str(job.id), "status": job.status, "rows": job.rows, "total": job.total, "error": job.error or None,
            "filename": job.filename, "created_at": job.created_at, "finished_at": job.finished_at}
