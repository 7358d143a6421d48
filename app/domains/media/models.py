"""StoredMedia and MediaChunk: GridFS's two collections (``media.files`` / ``media.chunks``), as Documents.

Why MongoDB and not a media directory: web processes and workers of the compose deployment run in
separate containers, and the all-in-one mode keeps everything in one store; with the files in
Mongo there is no shared volume to provision, one backup (mongodump) covers messages and their
media, and a web process can serve a file a worker stored on another machine. Why our own code
rather than motor's GridFSBucket: motor's bucket refuses mongomock's database (the in-memory mode
and the tests), and two code paths would leave the production one untested. The layout is the
GridFS spec's (``files_id``, ``n``, ``data``; ``length``, ``chunkSize``, ``uploadDate``,
``filename``), so ``mongofiles --prefix media`` and any driver's GridFS bucket named "media" read it.
"""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from app.db import WorkspaceDocument, utcnow

CHUNK_SIZE = 255 * 1024
"""GridFS's default chunk size."""


class StoredMedia(WorkspaceDocument):
    """One stored file (GridFS ``files`` document plus the workspace that owns it)."""

    length: int
    chunkSize: int = CHUNK_SIZE  # noqa: N815 - GridFS field name
    uploadDate: datetime = Field(default_factory=utcnow)  # noqa: N815 - GridFS field name
    filename: str = ""
    contentType: str = "application/octet-stream"  # noqa: N815 - GridFS (legacy) field name
    kind: str
    """image, video, document, audio or sticker: decides how the file is served."""
    sha256: str
    """Hex SHA-256 of the bytes, checked against Meta's before storing."""
    message_id: PydanticObjectId | None = None
    meta_media_id: str | None = None

    class Settings:
        name = "media.files"
        indexes = [pymongo.IndexModel([("workspace_id", 1), ("message_id", 1)])]


class MediaChunk(Document):
    """One GridFS chunk; read only through the media store."""

    files_id: PydanticObjectId
    n: int
    data: bytes

    class Settings:
        name = "media.chunks"
        indexes = [pymongo.IndexModel([("files_id", 1), ("n", 1)], unique=True)]
