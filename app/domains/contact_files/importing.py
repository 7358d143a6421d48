"""The worker's side of an import: the stored file read as it streams, in batches of ``BATCH_ROWS`` rows.

Per batch, whatever its size: one ``find`` of the contacts its rows name (by phone; one more for user ids,
one for emails, when rows carry them: planning.py ``lookups``), one checkpoint update of the
import (the counts so far, and this batch's planned counts as ``pending``), one ``insert_many`` of
the rows it refuses (when there are any) and one ``bulk_write`` of its contacts (planning.py). The
checkpoint comes before the write: a worker that dies after it leaves ``pending`` behind, and the
next slice plans that batch again from what is stored, writes what is missing (nothing, when the
write had gone through: the unique index on ``identities`` and the plan's "only what changed" keep it
from writing a contact twice) and keeps the counts first planned. Memory holds one batch and a few
GridFS chunks (``file_chunks``: ~1 MB), whatever the file's size.

An import runs in slices of at most ``SLICE_SECONDS``, each an arq job that queues the next: arq's
job timeout is the worker's (2 minutes), and arq waits that long plus 10 s before it gives a job of a
dead worker to another, for every job of the worker, so a long import must not raise it. A slice
holds the import by a lease, extended at each checkpoint; when a worker dies its lease lapses and
the sweeper (``sweep``, a cron job every 30 s) queues a new slice, which starts from the checkpoint.
A slice that lost its lease (the sweeper gave the import to another, or an admin cancelled it)
finds its next checkpoint refused and stops before writing.
"""

from __future__ import annotations

import contextlib
import csv
import io
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError

from app.db import parse_object_id, utcnow
from app.domains.contact_files.exporting import escape_cell
from app.domains.contact_files.models import ContactImport, ImportCounts, ImportRefusal, PendingBatch
from app.domains.contact_files.planning import PROJECTION, BatchPlan, Outcome, lookups
from app.domains.contact_files.reading import Record, RecordError, is_blank, records
from app.domains.contact_files.rows import RowRefused, RowValues, read_row
from app.domains.contacts.attribute_values import attribute_definitions
from app.domains.contacts.models import Contact
from app.domains.media.models import MediaChunk, StoredMedia
from app.domains.media.store import MediaStore
from app.errors import NotFound
from app.logging import get_logger

log = get_logger(__name__)

BATCH_ROWS = 500
SLICE_SECONDS = 45.0
LEASE = timedelta(seconds=60)
STALL = timedelta(minutes=2)
"""A slice queued this long ago that no worker started (Redis lost the job) is queued again."""
MAX_RESTARTS = 5
DUPLICATE_KEY = 11000
REPORT_KIND = "contacts-report"
CHUNKS_PER_READ = 4

ContinueLater = Callable[[str, int], Awaitable[Any]]
"""Queues the slice (import id, generation) of a job: app.queue.enqueue_contact_import bound to a pool."""


@dataclass
class Batch:
    start: int
    end: int = 0
    rows: list[tuple[int, list[str], RowValues | None, str]] = field(default_factory=list)
    """(record number, cells, values or None, why refused)"""


class LostLease(Exception):
    """Another slice holds the import now, or it was cancelled: this one stops without writing."""


class ContactImporter:
    def __init__(self, store: MediaStore | None = None, *, batch_rows: int = BATCH_ROWS,
                 slice_seconds: float = SLICE_SECONDS) -> None:
        self.store = store or MediaStore()
        self.batch_rows = batch_rows
        self.slice_seconds = slice_seconds

    # ---- a slice --------------------------------------------------------------------------------------

    async def run(self, import_id: str, generation: int, continue_later: ContinueLater) -> str:
        """One slice of the import; returns what it did, in a word or two (for the job's result)."""
        job = await self._claim(import_id, generation)
        if job is None:
            return "not ours"
        token = job.owner or ""
        try:
            return await self._slice(job, token, continue_later)
        except LostLease:
            return "lease lost"
        except Exception as error:  # noqa: BLE001 - kept on the import; the sweeper tries again (capped)
            log.exception("contact import slice failed", import_id=import_id)
            await ContactImport.get_motor_collection().update_one(
                {"_id": job.id, "owner": token},
                {"$set": {"error": f"{type(error).__name__}: {str(error)[:300]}", "lease_until": utcnow(),
                          "owner": None}})
            return "failed"

    async def _claim(self, import_id: str, generation: int) -> ContactImport | None:
        oid = parse_object_id(import_id)
        now = utcnow()
        raw = await ContactImport.get_motor_collection().find_one_and_update(
            {"_id": oid, "status": "running", "generation": generation,
             "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]},
            {"$set": {"owner": secrets.token_hex(8), "lease_until": now + LEASE, "updated_at": now}},
            return_document=ReturnDocument.AFTER)
        return ContactImport.model_validate(raw) if raw is not None else None

    async def _slice(self, job: ContactImport, token: str, continue_later: ContinueLater) -> str:
        definitions = await attribute_definitions(job.workspace_id)
        try:
            stored = await self.store.get(job.workspace_id, str(job.file_id))
        except NotFound:
            await self._fail(job, token, "The uploaded file is gone (deleted?): upload it again.")
            return "file gone"
        counts = job.counts
        pending = job.pending
        position = pending.start if pending is not None else max(job.next_record, job.first_row)
        deadline = time.monotonic() + self.slice_seconds
        end = position
        batch = Batch(start=position)
        chunks = file_chunks(stored)
        try:
            async with contextlib.aclosing(records(chunks, job.encoding, job.delimiter)) as reading:
                async for number, record in reading:
                    end = number + 1
                    if number < position:
                        continue
                    self._take(batch, number, record, job, definitions)
                    full = (number + 1 == pending.end) if pending is not None else len(batch.rows) >= self.batch_rows
                    if not full:
                        continue
                    batch.end = number + 1
                    counts = await self._write(job, token, batch, counts, pending)
                    pending = None
                    batch = Batch(start=batch.end)
                    if time.monotonic() >= deadline:
                        await self._hand_over(job, token, counts, batch.start, continue_later)
                        return "continues"
        except CorruptFile as error:
            await self._fail(job, token, f"The uploaded file is damaged ({error}): upload it again.")
            return "failed"
        except UnicodeDecodeError:
            await self._fail(job, token, f"The file does not decode as {job.encoding_label or job.encoding} "
                                         "past its start: save it as CSV UTF-8 and upload it again.")
            return "failed"
        batch.end = max(batch.start, end)
        if batch.rows or pending is not None:
            counts = await self._write(job, token, batch, counts, pending)
        await self._finish(job, token, counts, batch.end)
        return "done"

    def _take(self, batch: Batch, number: int, record: Record, job: ContactImport,
              definitions: dict[str, Any]) -> None:
        if is_blank(record):
            return
        if isinstance(record, RecordError):
            batch.rows.append((number, [], None, record.reason))
            return
        try:
            values = read_row(record, job.header, job.mapping, definitions, job.default_country)
        except RowRefused as refused:
            batch.rows.append((number, record, None, str(refused)))
            return
        batch.rows.append((number, record, values, ""))

    # ---- a batch ----------------------------------------------------------------------------------------

    async def _write(self, job: ContactImport, token: str, batch: Batch, counts: ImportCounts,
                     pending: PendingBatch | None) -> ImportCounts:
        """Plan, checkpoint, write; returns the counts with this batch's."""
        now = utcnow()
        plan = BatchPlan(job.workspace_id, import_id=str(job.id), mode=job.mode, tags=job.tags, now=now)
        valid = [(n, values) for n, _, values, _ in batch.rows if values is not None]
        await self._know(plan, job, [values for _, values in valid])
        for number, values in valid:
            plan.apply(number, values)
        outcomes: dict[int, Outcome] = {n: Outcome("skipped", why) for n, _, values, why in batch.rows
                                        if values is None}
        outcomes.update(plan.outcomes)
        # A batch planned again after a crash keeps the counts first planned (its rows may be written already).
        again = pending is not None and pending.start == batch.start
        planned = pending.counts if again else _counted(outcomes)
        collection = ContactImport.get_motor_collection()
        result = await collection.update_one(
            {"_id": job.id, "owner": token, "status": "running"},
            {"$set": {"counts": counts.model_dump(), "next_record": batch.start, "updated_at": now,
                      "pending": PendingBatch(start=batch.start, end=batch.end, counts=planned).model_dump(),
                      "lease_until": now + LEASE}})
        if result.matched_count == 0:
            raise LostLease()
        await self._apply(plan, job, outcomes)
        cells_of = {n: cells for n, cells, _, _ in batch.rows}
        refused = [{"import_id": job.id, "row": n + 1, "reason": o.reason[:500],
                    "cells": [c[:1000] for c in cells_of.get(n, [])]}
                   for n, o in sorted(outcomes.items()) if o.kind == "skipped"]
        if refused:
            with contextlib.suppress(BulkWriteError):  # written already by a slice that died after it
                await ImportRefusal.get_motor_collection().insert_many(refused, ordered=False)
        return counts.add(planned if again else _counted(outcomes))

    async def _know(self, plan: BatchPlan, job: ContactImport, rows: list[RowValues], *, exact: bool = False) -> None:
        for query in lookups(job.workspace_id, rows, exact=exact):
            plan.know(await Contact.get_motor_collection().find(query, projection=PROJECTION).to_list(None))

    async def _apply(self, plan: BatchPlan, job: ContactImport, outcomes: dict[int, Outcome]) -> None:
        """The batch's bulk write. A contact a webhook or an agent created since the batch's read makes
        its insert fail on the unique index: those rows are planned once more against what is stored."""
        ops, whose = plan.operations()
        if not ops:
            return
        try:
            await Contact.get_motor_collection().bulk_write(ops, ordered=False)
            return
        except BulkWriteError as error:
            failed = [whose[e["index"]] for e in error.details.get("writeErrors", [])]
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise
        rows = sorted(n for p in failed for n in p.rows)
        again = BatchPlan(job.workspace_id, import_id=str(job.id), mode=job.mode, tags=job.tags, now=plan.now)
        values_of = {n: plan.values[n] for n in rows}
        await self._know(again, job, list(values_of.values()), exact=True)
        for number in rows:
            outcomes[number] = again.apply(number, values_of[number])
        ops, _ = again.operations()
        try:
            if ops:
                await Contact.get_motor_collection().bulk_write(ops, ordered=False)
        except BulkWriteError:
            for number in rows:
                outcomes[number] = Outcome("skipped", "changed by someone else while importing: import the file "
                                                      "again to apply this row")

    # ---- slices and the end ---------------------------------------------------------------------------

    async def _hand_over(self, job: ContactImport, token: str, counts: ImportCounts, next_record: int,
                         continue_later: ContinueLater) -> None:
        now = utcnow()
        result = await ContactImport.get_motor_collection().update_one(
            {"_id": job.id, "owner": token, "status": "running"},
            {"$set": {"counts": counts.model_dump(), "next_record": next_record, "pending": None, "owner": None,
                      "lease_until": None, "queued_at": now, "updated_at": now}, "$inc": {"generation": 1}})
        if result.matched_count:
            try:
                await continue_later(str(job.id), job.generation + 1)
            except Exception as error:  # noqa: BLE001 - the sweeper queues it when Redis is back
                log.warning("next import slice not queued; the sweeper will", import_id=str(job.id), error=str(error))

    async def _finish(self, job: ContactImport, token: str, counts: ImportCounts, end: int) -> None:
        collection = ContactImport.get_motor_collection()
        now = utcnow()
        result = await collection.update_one(
            {"_id": job.id, "owner": token, "status": "running"},
            {"$set": {"counts": counts.model_dump(), "next_record": end, "pending": None, "lease_until": now + LEASE,
                      "updated_at": now}})
        if result.matched_count == 0:
            raise LostLease()
        report_id = job.report_file_id or await self._report(job)
        await collection.update_one(
            {"_id": job.id, "owner": token},
            {"$set": {"status": "done", "report_file_id": report_id, "finished_at": now, "owner": None,
                      "lease_until": None, "error": "", "updated_at": now}})
        await ImportRefusal.find(ImportRefusal.import_id == job.id).delete()
        log.info("contact import done", import_id=str(job.id), **counts.model_dump())

    async def _report(self, job: ContactImport) -> PydanticObjectId | None:
        """The refused rows as a CSV file in the media store (None when every row went in)."""
        refusals = ImportRefusal.find(ImportRefusal.import_id == job.id).sort("+row")
        with tempfile.SpooledTemporaryFile(max_size=1024 * 1024, prefix="wa-inbox-report-") as spool:
            text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
            writer = csv.writer(text)
            writer.writerow(["row", "reason", *job.header])
            written = 0
            async for refusal in refusals:
                writer.writerow([refusal.row, escape_cell(refusal.reason), *(escape_cell(c) for c in refusal.cells)])
                written += 1
            text.flush()
            if not written:
                return None
            stem = (job.filename.rsplit(".", 1)[0] or "contacts")[:80]
            stored = await self.store.put(job.workspace_id, text.detach(), kind=REPORT_KIND,
                                          content_type="text/csv", filename=f"{stem}-refused-rows.csv")
        return stored.id

    async def _fail(self, job: ContactImport, token: str, message: str) -> None:
        await ContactImport.get_motor_collection().update_one(
            {"_id": job.id, "owner": token},
            {"$set": {"status": "failed", "error": message, "owner": None, "lease_until": None,
                      "finished_at": utcnow(), "updated_at": utcnow()}})

    # ---- the sweeper ----------------------------------------------------------------------------------

    async def sweep(self, continue_later: ContinueLater) -> int:
        """Queue again the imports a dead worker left (lease lapsed) or whose slice never started; fail
        those restarted ``MAX_RESTARTS`` times. Returns how many were queued again."""
        return await sweep_slices(ContactImport.get_motor_collection(), continue_later,
                                  failed_advice=": upload the file again.")


async def sweep_slices(collection: Any, continue_later: ContinueLater, *, failed_advice: str = "") -> int:
    """The sweeper of jobs run in leased slices (imports, exports): a running job whose lease lapsed (its
    worker died) or whose first slice never started (Redis lost the job) gets a new generation and is
    queued again; one restarted ``MAX_RESTARTS`` times fails with its last error. Returns how many."""
    now = utcnow()
    queued = 0
    stale = collection.find({"status": "running", "$or": [
        {"lease_until": {"$lt": now}}, {"lease_until": None, "queued_at": {"$lt": now - STALL}}]},
        projection={"generation": 1, "restarts": 1, "lease_until": 1, "error": 1})
    async for doc in stale:
        died = doc.get("lease_until") is not None
        if died and doc.get("restarts", 0) >= MAX_RESTARTS:
            await collection.update_one({"_id": doc["_id"], "generation": doc["generation"]}, {"$set": {
                "status": "failed", "finished_at": now, "owner": None, "lease_until": None,
                "error": f"Stopped {MAX_RESTARTS} times before the end"
                         + (f" (last: {doc['error']})" if doc.get("error") else "") + failed_advice}})
            continue
        result = await collection.update_one(
            {"_id": doc["_id"], "generation": doc["generation"], "status": "running"},
            {"$set": {"owner": None, "lease_until": None, "queued_at": now},
             "$inc": {"generation": 1, "restarts": 1 if died else 0}})
        if result.modified_count:
            await continue_later(str(doc["_id"]), doc["generation"] + 1)
            queued += 1
    return queued


async def file_chunks(stored: StoredMedia, per_read: int = CHUNKS_PER_READ) -> AsyncIterator[bytes]:
    """A stored file's bytes, ``per_read`` GridFS chunks (~1 MB) per query. The media store's download
    stream lets the driver fetch one server batch of chunks (up to 16 MiB), so a 20 MB file would be held
    nearly whole: here each read is bounded by chunk number (the (files_id, n) index). The chunks' numbers
    and sizes are checked as GridFS does: a missing or short chunk fails the import instead of importing
    part of a row."""
    chunks = MediaChunk.get_motor_collection()
    expected = -(-stored.length // stored.chunkSize) if stored.length else 0
    received = 0
    for first in range(0, expected, per_read):
        docs = await chunks.find({"files_id": stored.id, "n": {"$gte": first, "$lt": first + per_read}},
                                 sort=[("n", 1)]).to_list(None)
        for offset, doc in enumerate(docs):
            data = bytes(doc["data"])
            size = stored.chunkSize if first + offset < expected - 1 else stored.length - stored.chunkSize * (
                expected - 1)
            if doc["n"] != first + offset or len(data) != size:
                raise CorruptFile(f"chunk {first + offset} of the stored file is missing or truncated")
            received += len(data)
            yield data
        if len(docs) != min(per_read, expected - first):
            raise CorruptFile(f"chunk {first + len(docs)} of the stored file is missing")
    if received != stored.length:
        raise CorruptFile("the stored file is shorter than recorded")


class CorruptFile(Exception):
    """The stored file's chunks do not add up to it (deleted or damaged meanwhile)."""


def _counted(outcomes: dict[int, Outcome]) -> ImportCounts:
    counts = ImportCounts()
    for outcome in outcomes.values():
        setattr(counts, outcome.kind, getattr(counts, outcome.kind) + 1)
    counts.done = len(outcomes)
    return counts
