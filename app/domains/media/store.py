"""The media store: write a file as GridFS chunks, read it back as a stream, scoped to a workspace."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.media.models import CHUNK_SIZE, MediaChunk, StoredMedia
from app.errors import NotFound


class MediaStore:
    async def put(self, workspace_id: PydanticObjectId, data: bytes, *, kind: str, content_type: str,
                  filename: str = "", message_id: PydanticObjectId | None = None,
                  meta_media_id: str | None = None) -> StoredMedia:
        """Store ``data``; the files document goes in last, so a half-written file is never visible."""
        file_id = PydanticObjectId()
        chunks = [{"files_id": file_id, "n": n, "data": data[offset:offset + CHUNK_SIZE]}
                  for n, offset in enumerate(range(0, len(data), CHUNK_SIZE))]
        if chunks:
            await MediaChunk.get_motor_collection().insert_many(chunks, ordered=True)
        stored = StoredMedia(id=file_id, workspace_id=workspace_id, length=len(data), uploadDate=utcnow(),
                             filename=filename, contentType=content_type, kind=kind,
                             sha256=hashlib.sha256(data).hexdigest(), message_id=message_id,
                             meta_media_id=meta_media_id)
        await stored.insert()
        return stored

    async def get(self, workspace_id: PydanticObjectId, file_id: str) -> StoredMedia:
        """The file's metadata in that workspace, or NotFound (also for other workspaces' files)."""
        try:
            return await StoredMedia.get_scoped(workspace_id, file_id)
        except NotFound:
            raise NotFound("No such media file.", error_code="MEDIA_NOT_FOUND") from None

    async def stream(self, stored: StoredMedia) -> AsyncIterator[bytes]:
        """The file's bytes, one chunk at a time (a 100 MB document is never held whole)."""
        cursor = MediaChunk.get_motor_collection().find({"files_id": stored.id}, projection={"data": 1, "n": 1}
                                                        ).sort("n", 1)
        async for chunk in cursor:
            yield bytes(chunk["data"])

    async def read(self, stored: StoredMedia) -> bytes:
        return b"".join([chunk async for chunk in self.stream(stored)])
