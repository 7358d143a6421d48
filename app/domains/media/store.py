"""The media store: files in motor's GridFS bucket "media", every read and delete scoped to a workspace.

The bucket writes the chunks first and the files document last, so a half-written file is never
visible. Reads find the files document by id *and* ``metadata.workspace_id``
(app.domains.media.models.StoredMedia) before the bucket opens the file, so another workspace's
file is simply not found. Downloads stream one chunk at a time (the driver holds one server batch
of chunks, at most 16 MiB, never the whole of a larger file); the bucket checks each chunk's number
and size, so a truncated file fails instead of serving short bytes. The SHA-256 of the bytes is
kept in ``metadata.sha256``; size caps are the callers' (Meta's per-kind limits on download,
``MAX_UPLOAD_BYTES`` on upload), before anything is stored. A file to store can be given as a file
object (an upload received into a temporary file): the bucket reads it one chunk at a time, in
motor's thread, so it is never held whole; it inserts its chunks ``UPLOAD_BATCH_BYTES`` at a time
(``limit_upload_batches``).

In the mongomock quick lane (``INBOX_MONGODB_URL=mongomock://``) motor's bucket cannot take
mongomock's database: pymongo's own synchronous bucket runs over it instead
(app.mongomock_compat.gridfs_bucket), same GridFS code and layout, in-process.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Iterable
from typing import IO, Any

import gridfs.synchronous.grid_file
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


UPLOAD_BATCH_BYTES = 4 * 1024 * 1024
"""The chunks a file's upload holds before inserting them (one ``insert_many`` per 16 chunks of 255 KB)."""


def limit_upload_batches() -> None:
    """Make the bucket insert a file's chunks ``UPLOAD_BATCH_BYTES`` at a time, not 48 MB at a time.

    pymongo 4.x's GridIn keeps the chunks it has read until they reach its largest message (48 MB),
    then encodes them all in one ``insert_many``: storing a 60 MB file from a file object still took
    ~90 MB of memory at its peak (measured by bench/upload_memory.py); with 4 MB batches, ~13 MB, for
    15 round trips per 60 MB instead of 2. The limit is a module constant of pymongo's synchronous
    GridIn (motor's bucket and the quick lane's both use that class), set once for the process; were
    it renamed, setting it would do nothing and uploads would batch as pymongo does.
    """
    if hasattr(gridfs.synchronous.grid_file, "_UPLOAD_BUFFER_SIZE"):
        gridfs.synchronous.grid_file._UPLOAD_BUFFER_SIZE = UPLOAD_BATCH_BYTES


limit_upload_batches()


def _sha256_of(source: IO[bytes]) -> str:
    source.seek(0)
    digest = hashlib.sha256()
    while block := source.read(1024 * 1024):
        digest.update(block)
    return digest.hexdigest()


def _not_found() -> NotFound:
    return NotFound("No such media file.", error_code="MEDIA_NOT_FOUND")


class MediaStore:
    def _bucket(self) -> Any:
        database = StoredMedia.get_motor_collection().database  # the database init_beanie bound
        if type(database).__module__.startswith("mongomock_motor"):
            from app.mongomock_compat import gridfs_bucket

            return gridfs_bucket(database, BUCKET)
        return AsyncIOMotorGridFSBucket(database, bucket_name=BUCKET, chunk_size_bytes=CHUNK_SIZE)

    async def put(self, workspace_id: PydanticObjectId, data: bytes | IO[bytes], *, kind: str, content_type: str,
                  filename: str = "", message_id: PydanticObjectId | None = None,
                  meta_media_id: str | None = None, sha256: str | None = None) -> StoredMedia:
        """Store ``data`` (bytes, or a file object read from its start) as a new file of the workspace.

        ``sha256``: the bytes' digest when the caller has it already (else it is computed). Returns the
        files document as stored.
        """
        if isinstance(data, bytes):
            source: IO[bytes] = io.BytesIO(data)
            sha256 = sha256 or hashlib.sha256(data).hexdigest()
        else:
            source = data
            if sha256 is None:
                sha256 = await asyncio.to_thread(_sha256_of, source)
            source.seek(0)
        file_id = PydanticObjectId()
        metadata = MediaMetadata(workspace_id=workspace_id, kind=kind, sha256=sha256,
                                 contentType=content_type, message_id=message_id, meta_media_id=meta_media_id)
        # What the bucket's upload_from_stream_with_id() does, less its per-upload index check.
        grid_in = self._bucket().open_upload_stream_with_id(file_id, filename, metadata=metadata.model_dump())
        skip_index_check(grid_in)
        async with grid_in:  # closing writes the files document
            await grid_in.write(source)  # a file-like: read one chunk (255 KB) at a time
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
