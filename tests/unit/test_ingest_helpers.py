"""Pure pieces of the inbound pipeline (cursors, previews, errors, media headers, backoff), and the media store's GridFS bucket."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
from beanie import PydanticObjectId

from app.domains.media.controllers import content_disposition, served_content_type
from app.domains.media.models import CHUNK_SIZE, MediaMetadata, StoredMedia
from app.domains.media.services import MAX_DELAY_SECONDS, retry_delay
from app.domains.media.store import MediaStore, skip_index_check
from app.domains.messages.ingest import message_error
from app.domains.messages.preview import preview_text
from app.domains.webhooks.services import MAX_BODY_BYTES, body_too_large
from app.errors import NotFound
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
    return StoredMedia.model_construct(id=PydanticObjectId(), filename=filename,
                                       metadata=MediaMetadata.model_construct(kind=kind, contentType=content_type))


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


def test_media_retry_delay_grows_and_is_capped():
    assert 4.0 <= retry_delay(1) <= 6.0 and 8.0 <= retry_delay(2) <= 12.0
    assert retry_delay(30) <= MAX_DELAY_SECONDS * 1.2


def test_content_length_check():
    assert body_too_large(str(MAX_BODY_BYTES + 1)) and not body_too_large(str(MAX_BODY_BYTES))
    assert not body_too_large(None) and not body_too_large("abc")


def test_the_index_check_flag_is_pymongos_own():
    """skip_index_check sets a flag GridIn has: a pymongo that renamed it fails here, not by slowing uploads."""
    import gridfs
    import pymongo

    with pymongo.MongoClient(connect=False) as client:
        grid_in = gridfs.GridIn(client["db"]["media"])
        assert vars(grid_in)["_ensured_index"] is False
        skip_index_check(grid_in)
        assert vars(grid_in)["_ensured_index"] is True


def _read_with_stock_gridfs(settings, file_id) -> bytes:
    """The file as pymongo's synchronous GridFS bucket "media" reads it: a reader outside the product."""
    import gridfs
    import pymongo

    if settings.mongodb_url.startswith("mongomock"):  # the quick lane: the mongomock database Beanie is bound to
        from mongomock.gridfs import enable_gridfs_integration

        enable_gridfs_integration()
        database = StoredMedia.get_motor_collection().database.delegate
        return gridfs.GridFSBucket(database, bucket_name="media").open_download_stream(file_id).read()
    with pymongo.MongoClient(settings.mongodb_url) as client:
        bucket = gridfs.GridFSBucket(client[settings.mongodb_database], bucket_name="media")
        return bucket.open_download_stream(file_id).read()


async def test_media_store_is_a_gridfs_bucket_scoped_to_the_workspace(settings, client_factory):
    """What we store is a GridFS bucket "media": a stock GridFS reader gets the same bytes back."""
    await client_factory()  # the app binds Beanie to this test's database
    db = StoredMedia.get_motor_collection().database
    data = bytes(range(256)) * ((CHUNK_SIZE * 2 + 1000) // 256)
    workspace, other = PydanticObjectId(), PydanticObjectId()
    store = MediaStore()
    stored = await store.put(workspace, data, kind="document", content_type="application/pdf", filename="x.pdf")
    assert (stored.length, stored.filename, stored.kind, stored.contentType, stored.workspace_id) == (
        len(data), "x.pdf", "document", "application/pdf", workspace)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await db["media.chunks"].count_documents({"files_id": stored.id}) == 3
    chunk_indexes = await db["media.chunks"].index_information()  # init_beanie's: uploads skip the bucket's check
    assert chunk_indexes["files_id_1_n_1"]["unique"]
    assert await store.read(await store.get(workspace, str(stored.id))) == data
    assert _read_with_stock_gridfs(settings, stored.id) == data
    with pytest.raises(NotFound):
        await store.get(other, str(stored.id))
    assert await store.delete(other, [stored.id]) == 0  # not theirs: left alone
    assert await store.delete(workspace, [stored.id]) == 1
    assert await StoredMedia.count() == 0 and await db["media.chunks"].count_documents({}) == 0


async def test_files_stored_before_the_bucket_read_back(client_factory):
    """Our own code used to write the files documents, our fields at the top level: moved into metadata."""
    await client_factory()
    db = StoredMedia.get_motor_collection().database
    data = b"%PDF legacy bytes " * 20000
    file_id, workspace, message_id = PydanticObjectId(), PydanticObjectId(), PydanticObjectId()
    await db["media.chunks"].insert_many([{"files_id": file_id, "n": n, "data": data[o:o + CHUNK_SIZE]}
                                          for n, o in enumerate(range(0, len(data), CHUNK_SIZE))])
    await db["media.files"].insert_one({
        "_id": file_id, "workspace_id": workspace, "created_at": datetime.now(UTC), "length": len(data),
        "chunkSize": CHUNK_SIZE, "uploadDate": datetime.now(UTC), "filename": "old.pdf",
        "contentType": "application/pdf", "kind": "document", "sha256": hashlib.sha256(data).hexdigest(),
        "message_id": message_id, "meta_media_id": "m1"})
    store = MediaStore()
    with pytest.raises(NotFound):
        await store.get(workspace, str(file_id))
    assert await store.adopt_legacy_files() == 1  # what Runtime.bootstrap runs at every start
    assert await store.adopt_legacy_files() == 0
    stored = await store.get(workspace, str(file_id))
    assert (stored.kind, stored.contentType, stored.message_id, stored.meta_media_id) == (
        "document", "application/pdf", message_id, "m1")
    assert "workspace_id" not in await db["media.files"].find_one({"_id": file_id})
    assert await store.read(stored) == data
    assert await store.file_ids_of_messages(workspace, [message_id]) == {file_id}
