"""Files of contact imports and exports are not kept for ever: a 20 MB upload, its refusals report and a
large export's parts are deleted ``contact_files_keep_days`` after the import or export ended (an upload
never started: after it was made). The import's record and counts stay, so the page still says what it
did; its report, and an expired export's download, answer 410 with why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.db import utcnow
from app.domains.contact_files.models import ContactExport, ContactImport
from app.domains.media.store import MediaStore
from app.logging import get_logger

log = get_logger(__name__)


async def delete_old_files(keep_days: int, store: MediaStore | None = None) -> tuple[int, int]:
    """Delete what has outlived ``keep_days``; returns (imports, exports) whose files went."""
    store = store or MediaStore()
    now = utcnow()
    cutoff = now - timedelta(days=keep_days)
    imports = exports = 0
    old_imports = ContactImport.find({"files_deleted_at": None, "$or": [
        {"status": {"$in": ["done", "failed", "cancelled"]}, "finished_at": {"$lt": cutoff}},
        {"status": "uploaded", "created_at": {"$lt": cutoff}}]})
    async for job in old_imports:
        await store.delete(job.workspace_id, [f for f in (job.file_id, job.report_file_id) if f])
        update: dict[str, Any] = {"files_deleted_at": now, "report_file_id": None}
        if job.status == "uploaded":  # never started: there is nothing left to start
            update |= {"status": "cancelled", "finished_at": now}
        await ContactImport.find_one({"_id": job.id, "status": job.status}).update({"$set": update})
        imports += 1
    async for export in ContactExport.find({"status": {"$in": ["done", "failed"]}, "finished_at": {"$lt": cutoff}}):
        await store.delete(export.workspace_id, export.parts)
        await ContactExport.find_one({"_id": export.id}).update({"$set": {"status": "expired", "parts": []}})
        exports += 1
    if imports or exports:
        log.info("contact files deleted", imports=imports, exports=exports, keep_days=keep_days)
    return imports, exports
