"""The media store: files in motor's GridFS bucket "media", every read and delete scoped to a workspace.

The bucket writes the chunks first and the files document last, so a half-written file is never
visible. Reads find the files document by id *and* ``metadata.workspace_id``
(app.domains.media.models.StoredMedia) before the bucket opens the file, so another workspace's
file is simply not found. Downloads stream one chunk at a time (the driver holds one server batch
of chunks, at most 16 MiB, never the whole of a larger file); the bucket checks each chunk's number
and size, so a truncated file fails instead of serving short bytes. The SHA-256 of the bytes is
kept in ``metadata.sha256``; size caps are the callers' (Meta's per-kind limits on download,
``MAX_UPLOAD_BYTES`` on upload), before anything is stored.

In the mongomock quick lane (``INBOX_MONGODB_URL=mongomock://``) motor's bucket cannot take
mongomock's database: pymongo's own synchronous bucket runs over it instead
(app.mongomock_compat.gridfs_bucket), same GridFS code and layout, in-process.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from beanie import PydanticObjectId
from gridfs.errors import NoFile
from motor.motor_asyncio import AsyncIOMotorGridFSBucket

from app.db import parse_object_id
from app.domains.media.models import BUCKET, CHUNK_SIZE, MediaMetadata, StoredMedia
from app.errors import NotFound
from app.logging import get_logger

log = get_logger(__name__)

_LEGACY_FIELDS = ("workspace_id", "kind", "sha256", "contentType", "message_id", "meta_media_id")
"""Top-level fields of files stored before the bucket (our own code wrote the files documents)."""


def skip_index_check(grid_in: Any) -> None:
    """Spare an upload the bucket's index check: init_beanie created the indexes (app.domains.media.models).

    Before writing, each GridIn runs ``find_one({}, {"_id": 1})`` on the files and chunks collections,
    to create the indexes when a collection is empty. MongoDB answers that from the first document.
    SecantusDB gap: it reads the whole collection to answer a ``find`` with ``limit: 1`` and no
    selective filter (measured 16 / 96 / 160 ms at 50 / 200 / 400 chunks of 255 KB: every upload
    would slow with all the media ever stored). The flag is the GridIn's own "indexes ensured" mark
    (pymongo 4.x); were it renamed, setting it would do nothing and uploads would check again.
    """
    object.__setattr__(getattr(grid_in, "delegate", grid_in), "_ensured_index", True)


def _not_found() -> NotFound:
    return NotFound("No such media file.", error_code="MEDIA_NOT_FOUND")


class MediaStore:
    def _bucket(self) -> Any:
        database = StoredMedia.get_motor_collection().database  # the database init_beanie bound
        if type(database).__module__.startswith("mongomock_motor"):
            from app.mongomock_compat import gridfs_bucket

            return gridfs_bucket(database, BUCKET)
        return AsyncIOMotorGridFSBucket(database, bucket_name=BUCKET, chunk_size_bytes=CHUNK_SIZE)

    async def put(self, workspace_id: PydanticObjectId, data: bytes, *, kind: str, content_type: str,
                  filename: str = "", message_id: PydanticObjectId | None = None,
                  meta_media_id: str | None = None) -> StoredMedia:
        """Store ``data`` as a new file of the workspace; returns its files document as stored."""
        file_id = PydanticObjectId()
        metadata = MediaMetadata(workspace_id=workspace_id, kind=kind, sha256=hashlib.sha256(data).hexdigest(),
                                 contentType=content_type, message_id=message_id, meta_media_id=meta_media_id)
        # What the bucket's upload_from_stream_with_id() does, less its per-upload index check.
        grid_in = self._bucket().open_upload_stream_with_id(file_id, filename, metadata=metadata.model_dump())
        skip_index_check(grid_in)
        async with grid_in:  # closing writes the files document
            await grid_in.write(data)
        stored = await StoredMedia.get(file_id)  # the bucket sets uploadDate; one small read gets it exactly
        assert stored is not None, "the bucket wrote the files document last"
        return stored

    async def get(self, workspace_id: PydanticObjectId, file_id: str) -> StoredMedia:
        """The file's metadata in that workspace, or NotFound (also for other workspaces' files)."""
        oid = parse_object_id(file_id)
        found = await StoredMedia.find_one({"_id": oid, "metadata.workspace_id": workspace_id}) if oid else None
        if found is None:
            raise _not_found()
        return found

    async def stream(self, stored: StoredMedia) -> AsyncIterator[bytes]:
        """The file's bytes, one chunk at a time (a 100 MB document is never held whole)."""
        try:
            grid_out = await self._bucket().open_download_stream(stored.id)
        except NoFile:  # deleted since get()
            raise _not_found() from None
        # A client that goes away mid-file drops grid_out: the driver kills its cursor in the background.
        while chunk := await grid_out.readchunk():
            yield chunk

    async def read(self, stored: StoredMedia) -> bytes:
        return b"".join([chunk async for chunk in self.stream(stored)])

    async def file_ids_of_messages(self, workspace_id: PydanticObjectId,
                                   message_ids: Iterable[PydanticObjectId]) -> set[PydanticObjectId]:
        """The workspace's files stored for those messages (inbound media)."""
        ids = list(message_ids)
        if not ids:
            return set()
        cursor = StoredMedia.get_motor_collection().find(
            {"metadata.workspace_id": workspace_id, "metadata.message_id": {"$in": ids}}, projection={"_id": 1})
        return {PydanticObjectId(doc["_id"]) async for doc in cursor}

    async def delete(self, workspace_id: PydanticObjectId, file_ids: Iterable[PydanticObjectId]) -> int:
        """Delete those of the files that belong to the workspace (others' ids are ignored); returns how many."""
        ids = list(file_ids)
        if not ids:
            return 0
        cursor = StoredMedia.get_motor_collection().find(
            {"_id": {"$in": ids}, "metadata.workspace_id": workspace_id}, projection={"_id": 1})
        owned = [doc["_id"] async for doc in cursor]
        bucket = self._bucket()
        deleted = 0
        for file_id in owned:
            try:
                await bucket.delete(file_id)  # the files document, then its chunks
                deleted += 1
            except NoFile:  # deleted meanwhile (the bucket removed any chunks left anyway)
                pass
        return deleted

    async def adopt_legacy_files(self) -> int:
        """Move the fields of files stored before the bucket (top level) into ``metadata``; returns how many.

        Idempotent and cheap once done: the query matches nothing and can use the old
        ``workspace_id_1_message_id_1`` index where one exists.
        """
        files = StoredMedia.get_motor_collection()
        moved = 0
        async for doc in files.find({"workspace_id": {"$type": "objectId"}}):
            metadata = {**(doc.get("metadata") or {}), **{k: doc[k] for k in _LEGACY_FIELDS if k in doc}}
            unset = {k: "" for k in (*_LEGACY_FIELDS, "created_at") if k in doc}
            await files.update_one({"_id": doc["_id"]}, {"$set": {"metadata": metadata}, "$unset": unset})
            moved += 1
        if moved:
            log.info("media files moved to the GridFS metadata layout", files=moved)
        return moved
