"""``GET /media/{id}``: a stored media file, to signed-in users of its workspace only."""

from __future__ import annotations

import re
from urllib.parse import quote

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream

from app.auth import requires_login
from app.domains.access.services import visible_message
from app.domains.media.models import StoredMedia
from app.domains.media.store import MediaStore
from app.domains.workspaces.services import Principal
from app.errors import NotFound
from app.whatsapp.media import MediaKind, is_allowed


def served_content_type(stored: StoredMedia) -> str:
    """Only WhatsApp's own types for the kind are served as such; anything else is opaque bytes."""
    if stored.kind in set(MediaKind) and is_allowed(stored.kind, stored.contentType):
        return stored.contentType
    return "application/octet-stream"


def content_disposition(stored: StoredMedia, content_type: str) -> str:
    """Documents (and anything not shown inline) download as attachments under their own name."""
    inline = stored.kind != MediaKind.DOCUMENT and content_type != "application/octet-stream"
    name = stored.filename or f"{stored.kind}-{stored.id}"
    ascii_name = re.sub(r'[^A-Za-z0-9._ -]', "_", name)[:150] or "file"
    return f"{'inline' if inline else 'attachment'}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name[:150])}"


class MediaController(Controller):
    path = "/media"
    guards = [requires_login]
    include_in_schema = False

    @get("/{media_id:str}")
    async def download(self, principal: NamedDependency[Principal], media_id: FromPath[str]) -> Stream:
        store = MediaStore()
        stored = await store.get(principal.workspace_id, media_id)
        if stored.metadata.message_id is not None:  # a customer's file: as visible as its conversation
            try:
                await visible_message(principal.scope, stored.metadata.message_id)
            except NotFound:
                raise NotFound("No such media file.", error_code="MEDIA_NOT_FOUND") from None
        content_type = served_content_type(stored)
        return Stream(
            store.stream(stored), media_type=content_type,
            headers={
                "Content-Length": str(stored.length),
                "Content-Disposition": content_disposition(stored, content_type),
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=86400",
                # A customer's file must never run as a page of ours, whatever it contains.
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )
