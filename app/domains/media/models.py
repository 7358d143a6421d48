"""StoredMedia and MediaChunk: read-only views of the GridFS bucket "media" (``media.files`` / ``media.chunks``).

Why MongoDB and not a media directory: web processes and workers of the compose deployment run in
separate containers, and the all-in-one mode keeps everything in one store; with the files in
Mongo there is no shared volume to provision, one backup (mongodump) covers messages and their
media, and a web process can serve a file a worker stored on another machine.

The bytes are written, read and deleted by motor's GridFS bucket (app.domains.media.store). These
Documents only read what the bucket writes, and declare the bucket's indexes so that init_beanie
creates them with every other index (the store relies on that: see ``skip_index_check``). Never
insert, save or delete through them: a files document without its chunks, or chunks without their
files document, is a broken file.

A files document holds the spec's ``length``, ``chunkSize``, ``uploadDate`` and ``filename``, and
our fields in ``metadata`` (the spec's place for application data). Query it on ``metadata.*``
(e.g. ``StoredMedia.metadata.workspace_id``); the properties below are for reading a loaded file.

Files stored before the bucket had our fields at the top level of the files document; the
store's ``adopt_legacy_files()`` (run at startup) moves them into ``metadata``. Their chunks were
already in the GridFS layout, so the bucket reads them as they are.
"""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import BaseModel

BUCKET = "media"
"""The GridFS bucket: collections ``media.files`` and ``media.chunks``."""
CHUNK_SIZE = 255 * 1024
"""GridFS's default chunk size."""


class MediaMetadata(BaseModel):
    """What we keep about a file, in its GridFS ``metadata``."""

    workspace_id: PydanticObjectId
    """The workspace that owns the file: every read checks it."""
    kind: str
    """image, video, document, audio or sticker: decides how the file is served."""
    sha256: str
    """Hex SHA-256 of the bytes (inbound: checked against Meta's before storing)."""
    contentType: str = "application/octet-stream"  # noqa: N815 - the GridFS spec's name, in metadata
    message_id: PydanticObjectId | None = None
    meta_media_id: str | None = None


class StoredMedia(Document):
    """One stored file: a GridFS files document (read-only here: see the module docstring)."""

    length: int
    chunkSize: int = CHUNK_SIZE  # noqa: N815 - GridFS field name
    uploadDate: datetime  # noqa: N815 - GridFS field name
    filename: str = ""
    metadata: MediaMetadata

    class Settings:
        name = f"{BUCKET}.files"
        indexes = [pymongo.IndexModel([("metadata.workspace_id", 1), ("metadata.message_id", 1)]),
                   pymongo.IndexModel([("filename", 1), ("uploadDate", 1)])]  # the bucket's own

    @property
    def workspace_id(self) -> PydanticObjectId:
        return self.metadata.workspace_id

    @property
    def kind(self) -> str:
        return self.metadata.kind

    @property
    def contentType(self) -> str:  # noqa: N802 - GridFS field name
        return self.metadata.contentType

    @property
    def sha256(self) -> str:
        return self.metadata.sha256

    @property
    def message_id(self) -> PydanticObjectId | None:
        return self.metadata.message_id

    @property
    def meta_media_id(self) -> str | None:
        return self.metadata.meta_media_id


class MediaChunk(Document):
    """One GridFS chunk (read-only here: see the module docstring)."""

    files_id: PydanticObjectId
    n: int
    data: bytes

    class Settings:
        name = f"{BUCKET}.chunks"
        indexes = [pymongo.IndexModel([("files_id", 1), ("n", 1)], unique=True)]  # the bucket's own
