"""Issue 14, item 14: large uploads arrive on disk, not in memory, through the composer and the API.

A 20 MB document (far over the 1 MB kept in memory) is stored whole: the download gives back the
bytes sent. Receiving and storing it takes far less memory than the file (Python's allocations,
tracemalloc: before, the file was read whole, and the driver held all its chunks). While it
arrives it is in a temporary file of the system's temp dir; once answered, no temporary file is
left or held open. An upload over 100 MB is refused with the route's own
413 and words as soon as it passes the limit, without reading the rest. Only Meta is simulated.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.domains.messages.models import Message
from tests.integration.outbound_env import outbound, sandbox_server  # noqa: F401
from tests.integration.test_inbox_actions import conversation_of, setup

MB = 1024 * 1024
BOUNDARY = "wa-inbox-large-upload-test"
MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def document(size: int) -> bytes:
    return b"%PDF-1.4\n" + os.urandom(size) + b"\n%%EOF\n"


def slices(data: bytes, size: int = 64 * 1024) -> Iterable[bytes]:
    return (data[i:i + size] for i in range(0, len(data), size))


class Body:
    """A multipart body sent as it is produced (as a browser sends a large file), counting what was read."""

    def __init__(self, chunks: Iterable[bytes], filename: str, fields: dict[str, str] | None = None,
                 before_end: Callable[[], None] | None = None) -> None:
        self.chunks, self.filename, self.fields, self.before_end = chunks, filename, fields or {}, before_end
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for name, value in self.fields.items():
            yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{self.filename}"\r\n'
               "Content-Type: application/pdf\r\n\r\n").encode()
        for chunk in self.chunks:
            self.sent += len(chunk)
            yield chunk
        if self.before_end is not None:
            self.before_end()
        yield f"\r\n--{BOUNDARY}--\r\n".encode()


@dataclass
class Peak:
    mb: float = 0.0


@contextlib.contextmanager
def peak_memory() -> Iterator[Peak]:
    """The most memory Python code of this process (the app, its threads) held in the block, over what it held before."""
    peak = Peak()
    tracemalloc.start()
    try:
        yield peak
        peak.mb = tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


def held_open(directory: Path) -> list[str]:
    """Files under ``directory`` this process has open (a deleted one still takes its disk space)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


@pytest.fixture
def upload_dir(tmp_path, monkeypatch) -> Path:
    """The system temp dir, as the web process sees it (TMPDIR), for this test alone."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("reads the process's open files from /proc (Linux)")
    directory = tmp_path / "tmpdir"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def on_disk_while_arriving(directory: Path, seen: list[str]) -> Callable[[], None]:
    def check() -> None:  # every byte of the file is in, the body not finished
        seen.extend(held_open(directory))
    return check


def too_big() -> Iterable[bytes]:
    block = bytes(64 * 1024)
    return (block for _ in range(110 * MB // len(block)))  # 110 MB: over the 100 MB limit


async def test_composer_streams_a_large_document_to_disk_and_refuses_over_100_mb_in_words(client_factory,
                                                                                          upload_dir):
    client, headers = await setup(client_factory)
    lucia = await conversation_of("Lucía Hernández")
    url = f"/inbox/c/{lucia.id}/attachments"
    pdf, seen = document(20 * MB), []
    body = Body(slices(pdf), "catalogue.pdf", {"caption": "the whole catalogue"},
                before_end=on_disk_while_arriving(upload_dir, seen))
    with peak_memory() as peak:
        answer = await client.post(url, headers={**headers, **MULTIPART}, content=body)
    assert answer.status_code == 200, answer.text[:300]
    assert peak.mb < 12, f"{peak.mb:.1f} MB"  # far less than the file: never held whole
    assert len(seen) == 1, seen  # the upload was in one temporary file while it arrived...
    assert held_open(upload_dir) == [] and os.listdir(upload_dir) == []  # ...and is gone now
    sent = await Message.find_one(Message.conversation_id == lucia.id, Message.type == "document",
                                  sort=[("_id", -1)])
    assert sent.content["filename"] == "catalogue.pdf" and sent.content["caption"] == "the whole catalogue"
    download = await client.get(f"/media/{sent.content['id']}", headers=headers)
    assert download.status_code == 200 and download.content == pdf  # stored whole

    body = Body(too_big(), "huge.pdf")
    refused = await client.post(url, headers={**headers, **MULTIPART}, content=body)
    assert refused.status_code == 413
    assert 'data-error-code="FILE_TOO_LARGE"' in refused.text and "Files are at most 100 MB." in refused.text
    assert body.sent < 101 * MB  # refused as soon as it passed 100 MB: the rest was never read
    assert held_open(upload_dir) == [] and os.listdir(upload_dir) == []

    # A form carrying its CSRF token as a field (no header): the CSRF check reads the form first.
    token = headers["X-CSRFToken"]
    small = document(2 * MB)
    answer = await client.post(url, headers={"HX-Request": "true"}, data={"_csrf_token": token, "caption": "again"},
                               files={"file": ("price-list.pdf", small, "application/pdf")})
    assert answer.status_code == 200, answer.text[:300]
    sent = await Message.find_one(Message.conversation_id == lucia.id, Message.type == "document",
                                  sort=[("_id", -1)])
    assert sent.content["filename"] == "price-list.pdf" and sent.content["caption"] == "again"
    assert (await client.get(f"/media/{sent.content['id']}", headers=headers)).content == small
    assert held_open(upload_dir) == [] and os.listdir(upload_dir) == []


async def test_api_streams_a_large_document_to_disk_and_refuses_over_100_mb_in_words(outbound, upload_dir):
    env = await outbound()
    pdf, seen = document(20 * MB), []
    body = Body(slices(pdf), "report.pdf", {"type": "document"}, before_end=on_disk_while_arriving(upload_dir, seen))
    with peak_memory() as peak:
        answer = await env.client.post("/api/v1/media", headers={**env.headers, **MULTIPART}, content=body)
    assert answer.status_code == 201, answer.text
    assert peak.mb < 12, f"{peak.mb:.1f} MB"  # far less than the file: never held whole
    media = answer.json()
    assert media["kind"] == "document" and media["size"] == len(pdf) and media["filename"] == "report.pdf"
    assert len(seen) == 1, seen
    assert held_open(upload_dir) == [] and os.listdir(upload_dir) == []
    download = await env.client.get(f"/media/{media['id']}", headers=env.headers)
    assert download.status_code == 200 and download.content == pdf
    again = await env.client.post("/api/v1/media", headers={**env.headers, **MULTIPART},
                                  content=Body(slices(pdf), "copy.pdf"))
    assert again.json()["id"] == media["id"]  # the same bytes: stored once

    body = Body(too_big(), "huge.pdf")
    refused = await env.client.post("/api/v1/media", headers={**env.headers, **MULTIPART}, content=body)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error_code"] == "MEDIA_TOO_LARGE" and "Files may be at most 100 MB." in refused.text
    assert body.sent < 101 * MB
    # Announced too large: refused before a byte of the body is read, in the same words.
    body = Body(too_big(), "huge.pdf")
    announced = await env.client.post("/api/v1/media", content=body,
                                      headers={**env.headers, **MULTIPART, "content-length": str(110 * MB)})
    assert announced.status_code == 413 and announced.json()["error_code"] == "MEDIA_TOO_LARGE"
    assert body.sent == 0
    # A body cut short (the client went away mid-file): refused, its part-file gone too.
    cut = Body(slices(document(3 * MB)), "cut.pdf")
    broken = await env.client.post("/api/v1/media", headers={**env.headers, **MULTIPART},
                                   content=_without_end(cut))
    assert broken.status_code == 400 and broken.json()["error_code"] == "MULTIPART_INVALID", broken.text
    assert held_open(upload_dir) == [] and os.listdir(upload_dir) == []


async def _without_end(body: Body) -> AsyncIterator[bytes]:
    async for chunk in body:
        if chunk.startswith(f"\r\n--{BOUNDARY}--".encode()):
            return
        yield chunk
