"""Pure pieces of the inbound pipeline: cursors, previews, errors, media headers, backoff, GridFS layout."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from beanie import PydanticObjectId, init_beanie

from app.domains.media.controllers import content_disposition, served_content_type
from app.domains.media.models import CHUNK_SIZE, MediaChunk, StoredMedia
from app.domains.media.services import MAX_DELAY_SECONDS, backoff
from app.domains.media.store import MediaStore
from app.domains.messages.ingest import message_error, preview_text
from app.domains.webhooks.services import MAX_BODY_BYTES, body_too_large
from app.pagination import InvalidCursor, after_filter, decode_cursor, encode_cursor
from app.whatsapp.webhooks import WebhookError


def test_cursor_round_trip_and_is_bound_to_its_listing():
    oid = PydanticObjectId()
    at = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    cursor = encode_cursor("conversations", at, oid)
    assert "=" not in cursor and "conversations" not in cursor  # opaque, URL-safe
    assert decode_cursor("conversations", cursor) == (at, oid)
    assert decode_cursor("conversations", encode_cursor("conversations", None, oid)) == (None, oid)
    with pytest.raises(InvalidCursor):
        decode_cursor("messages:1", cursor)


@pytest.mark.parametrize("bad", ["", "!!", "e30", base64.urlsafe_b64encode(b"[1]").decode(),
                                 base64.urlsafe_b64encode(json.dumps({"l": "c", "i": "zz"}).encode()).decode()])
def test_garbage_cursors_are_invalid(bad):
    with pytest.raises(InvalidCursor):
        decode_cursor("c", bad)


def test_after_filter_orders_by_key_then_id_with_nulls_last():
    oid = PydanticObjectId()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert after_filter("_id", oid, oid, descending=True) == {"_id": {"$lt": oid}}
    assert after_filter("t", at, oid, descending=True) == {
        "$or": [{"t": {"$lt": at}}, {"t": at, "_id": {"$lt": oid}}, {"t": None}]}
    assert after_filter("t", None, oid, descending=True) == {"t": None, "_id": {"$lt": oid}}


@pytest.mark.parametrize("kind,content,expected", [
    ("text", {"body": "hello"}, "hello"), ("image", {"caption": "pic"}, "pic"), ("image", {}, "[image]"),
    ("document", {"filename": "a.pdf"}, "a.pdf"), ("interactive", {"button_reply": {"title": "Yes"}}, "Yes"),
    ("button", {"text": "Stop"}, "Stop"), ("location", {"name": "Office"}, "Office"),
    ("contacts", [{"name": {}}], "[contacts]"), ("whatever", None, "[whatever]"),
])
def test_preview_text(kind, content, expected):
    assert preview_text(kind, content) == expected


def test_message_error_keeps_metas_words_and_adds_a_sentence():
    error = message_error([WebhookError(code=131051, title="Message type unknown",
                                        error_data={"details": "Not supported"})])
    assert (error.code, error.title, error.detail) == (131051, "Message type unknown", "Not supported")
    assert error.agent_message
    assert message_error([]) is None


def _stored(kind, content_type, filename=""):
    return StoredMedia.model_construct(id=PydanticObjectId(), kind=kind, contentType=content_type, filename=filename)


def test_media_is_served_only_as_whatsapps_own_types():
    assert served_content_type(_stored("image", "image/jpeg")) == "image/jpeg"
    assert served_content_type(_stored("audio", "audio/ogg; codecs=opus")) == "audio/ogg; codecs=opus"
    assert served_content_type(_stored("image", "text/html")) == "application/octet-stream"
    assert served_content_type(_stored("document", "image/svg+xml")) == "application/octet-stream"


def test_documents_download_as_attachments_with_a_safe_name():
    doc = _stored("document", "application/pdf", 'evil"\r\nX: y.pdf')
    header = content_disposition(doc, "application/pdf")
    assert header.startswith("attachment; ") and "\r" not in header and "\n" not in header and 'evil_' in header
    assert content_disposition(_stored("image", "image/png"), "image/png").startswith("inline; ")
    assert content_disposition(_stored("image", "text/html"), "application/octet-stream").startswith("attachment")


def test_backoff_grows_and_is_capped():
    assert 4.0 <= backoff(1) <= 6.0 and 8.0 <= backoff(2) <= 12.0
    assert backoff(30) <= MAX_DELAY_SECONDS * 1.2


def test_content_length_check():
    assert body_too_large(str(MAX_BODY_BYTES + 1)) and not body_too_large(str(MAX_BODY_BYTES))
    assert not body_too_large(None) and not body_too_large("abc")


async def test_media_store_writes_the_gridfs_layout():
    """What we store is a GridFS bucket "media": a stock GridFS reader gets the same bytes back."""
    import gridfs
    from mongomock.gridfs import enable_gridfs_integration
    from mongomock_motor import AsyncMongoMockClient

    enable_gridfs_integration()
    client = AsyncMongoMockClient()
    await init_beanie(database=client["media_test"], document_models=[StoredMedia, MediaChunk])
    data = bytes(range(256)) * ((CHUNK_SIZE * 2 + 1000) // 256)
    workspace = PydanticObjectId()
    store = MediaStore()
    stored = await store.put(workspace, data, kind="document", content_type="application/pdf", filename="x.pdf")
    assert await MediaChunk.find_all().count() == 3
    assert await store.read(await store.get(workspace, str(stored.id))) == data
    sync_db = client["media_test"]._AsyncMongoMockDatabase__database  # the mongomock Database behind motor's API
    assert gridfs.GridFSBucket(sync_db, bucket_name="media").open_download_stream(stored.id).read() == data
