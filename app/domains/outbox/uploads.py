"""Uploaded files received as they arrive: the multipart body streamed into a temporary file.

Litestar's ``request.form()`` parses a multipart body as it arrives (the ``multipart`` package's push
parser) and spools files over 1 MB to disk, but its only size check is the route's body limit,
answered in its own words, and the handlers then read the whole file into memory. Here the same
parser reads ``request.stream()`` chunk by chunk:

- the file part goes to a temporary file, in memory up to ``SPOOL_BYTES`` (small images, read whole
  anyway to convert them), then on disk in the system's temporary directory (``TMPDIR``), as a file
  without a name, so nothing is left behind even by a process that dies. Its size, SHA-256 and
  first bytes (what tells its type) are taken on the way, so nothing reads it again before storing
  it. The file is closed, and its disk space freed, when the ``async with`` block ends.
- The file is refused with the caller's own 413 as soon as it passes the caller's limit: the rest
  of the body is not read.
- Other parts are form fields (caption, type), kept in memory up to ``FIELD_BYTES`` each; other
  file parts are skipped.

When a form carries its CSRF token as a field instead of the ``X-CSRFToken`` header, Litestar's
CSRF middleware has parsed the whole form before the handler runs; its spooled file is then copied
into the temporary file the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from app.domains.outbox.media import SNIFF_BYTES, Upload
from app.errors import ClientError, PayloadTooLarge
from app.whatsapp.media import KB, MB

SPOOL_BYTES = MB
"""A file up to this size stays in memory; a larger one is written to disk."""
WRITE_BYTES = MB
"""What is gathered before each write to the temporary file (in a thread: one per MB, not per network read)."""
FIELD_BYTES = 64 * KB
"""The most a form field may hold (fields are kept in memory)."""


@dataclass
class ReceivedForm:
    file: Upload | None = None
    """The first part named ``file`` that carries a file name; None when the form has none."""
    filename: str = ""
    content_type: str = ""
    """As the client declared them (the real type is sniffed from the bytes when storing)."""
    fields: dict[str, str] = field(default_factory=dict)
    """Text fields: the first value of each name."""
    other_files: set[str] = field(default_factory=set)
    """Names of the other file parts (not kept)."""


def _invalid() -> ClientError:
    return ClientError("The upload is not a valid multipart/form-data body.", error_code="MULTIPART_INVALID")


class _Receiver:
    """Writes the file part to the temporary file, counting, hashing and keeping its first bytes."""

    def __init__(self, spool: IO[bytes], limit: int, too_large: Callable[[], ClientError]) -> None:
        self.spool = spool
        self.limit = limit
        self.too_large = too_large
        self.size = 0
        self.digest = hashlib.sha256()
        self.head = bytearray()
        self.pending = bytearray()

    async def write(self, data: bytes | bytearray) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise self.too_large()
        if len(self.head) < SNIFF_BYTES:
            self.head += data[:SNIFF_BYTES - len(self.head)]
        self.pending += data
        if len(self.pending) >= WRITE_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self.pending:
            block, self.pending = self.pending, bytearray()
            await asyncio.to_thread(self._write, block)

    def _write(self, block: bytearray) -> None:
        self.digest.update(block)
        self.spool.write(block)

    async def finish(self) -> Upload:
        await self._flush()
        self.spool.seek(0)
        return Upload(self.spool, self.size, self.digest.hexdigest(), bytes(self.head))


@asynccontextmanager
async def receive_upload(request: Request[Any, Any, Any], *, limit: int, too_large: Callable[[], ClientError],
                         file_field: str = "file") -> AsyncIterator[ReceivedForm]:
    """The request's multipart form, its file in a temporary file that lives as long as the block.

    Raises ``too_large()`` once the file passes ``limit`` bytes (also when the whole body passes the
    route's ``request_max_body_size``), and a 400 MULTIPART_INVALID for a broken body. A request
    that is not multipart gives an empty form.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, prefix="wa-inbox-upload-")
    try:
        receiver = _Receiver(spool, limit, too_large)
        try:
            if ScopeState.from_scope(request.scope).form is not Empty:
                form = await _from_parsed_form(request, receiver, file_field)
            else:
                form = await _stream(request, receiver, file_field)
        except RequestEntityTooLarge:  # the route's body limit (Content-Length, or bytes received)
            raise too_large() from None
        yield form
    finally:
        spool.close()


async def _stream(request: Request[Any, Any, Any], receiver: _Receiver, file_field: str) -> ReceivedForm:
    form = ReceivedForm()
    content_type, options = request.content_type
    if content_type != "multipart/form-data":
        return form
    boundary = options.get("boundary")
    if not boundary:
        raise _invalid()
    segment: Any = None
    into = ""  # where the current part's bytes go: "file", "field" or "" (skipped)
    text = bytearray()
    try:
        with PushMultipartParser(boundary.encode(),
                                 max_segment_count=request.app.multipart_form_part_limit) as parser:
            async with aclosing(request.stream()) as body:
                async for chunk in body:
                    for event in parser.parse(chunk):
                        if isinstance(event, MultipartSegment):
                            segment = event
                            name = segment.name or ""
                            if not segment.filename:
                                into, text = "field", bytearray()
                            elif name == file_field and form.file is None and into != "file":
                                into, form.filename = "file", segment.filename
                                form.content_type = segment.content_type or "text/plain"
                            else:
                                into = ""
                                form.other_files.add(name)
                        elif event:
                            if into == "file":
                                await receiver.write(event)
                            elif into == "field":
                                text += event
                                if len(text) > FIELD_BYTES:
                                    raise PayloadTooLarge(f"Form fields hold at most {FIELD_BYTES // KB} KB.",
                                                          error_code="FIELD_TOO_LARGE",
                                                          details={str(segment.name): "too long"})
                        else:  # the end of the part
                            if into == "file":
                                form.file = await receiver.finish()
                            elif into == "field":
                                form.fields.setdefault(segment.name or "",
                                                       text.decode(segment.charset or "utf-8", "replace"))
                            into = ""
                    if parser.closed:
                        break
    except (ParserError, ParserLimitReached):
        raise _invalid() from None
    return form


async def _from_parsed_form(request: Request[Any, Any, Any], receiver: _Receiver, file_field: str) -> ReceivedForm:
    """The form Litestar parsed already (its file spooled to disk), its file copied into ours."""
    form = ReceivedForm()
    parsed = await request.form()
    try:
        for name, value in parsed.multi_items():
            if not isinstance(value, UploadFile):
                form.fields.setdefault(name, str(value))
            elif name == file_field and form.file is None:
                form.filename, form.content_type = value.filename, value.content_type
                while block := await asyncio.to_thread(value.file.read, WRITE_BYTES):
                    await receiver.write(block)
                form.file = await receiver.finish()
            else:
                form.other_files.add(name)
    finally:
        for _, value in parsed.multi_items():
            if isinstance(value, UploadFile):
                await value.close()
    return form
