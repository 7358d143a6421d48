"""Cheaper write-side paths for mongomock (the in-memory database), same results as its own.

mongomock rebuilds every document it stores or compares through
``helpers.patch_datetime_awareness_in_document`` (datetimes to naive UTC at millisecond
precision, as MongoDB stores them) and checks every key of every inserted document for null
characters, both with ``isinstance`` against abstract types at each level. Profiled on the webhook
path (bench/webhooks.py, issue 4) they were a third of a stored delivery's CPU. These versions
dispatch on the exact type first and fall back to mongomock's functions for anything unusual
(OrderedDict, SON, Timestamp, subclasses), so what is stored is unchanged; a randomized test
compares them with the originals. Inserting one plain dict also skips mongomock's second and
third passes over its keys and its locked membership test (TTL collections keep the original,
which expires documents first). Installed by ``app.mongomock_compat.patch_mongomock``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId

_PLAIN = frozenset({str, int, float, bool, type(None), bytes, ObjectId, PydanticObjectId})
"""Types mongomock returns as they are (immutable, no datetime inside)."""


def patch_writes() -> None:
    from mongomock import collection, helpers

    original_patch = helpers.patch_datetime_awareness_in_document
    original_check = collection._recursive_key_check_null_character  # kept for the comparison test

    def patch_datetime_awareness_in_document(value: Any) -> Any:
        kind = type(value)
        if kind in _PLAIN:
            return value
        if kind is dict:
            return {k: v if type(v) in _PLAIN else patch_datetime_awareness_in_document(v) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [v if type(v) in _PLAIN else patch_datetime_awareness_in_document(v) for v in value]
        if kind is datetime:
            mongo_us = (value.microsecond // 1000) * 1000
            if value.tzinfo:
                return (value - value.utcoffset()).replace(tzinfo=None, microsecond=mongo_us)
            return value.replace(microsecond=mongo_us) if value.microsecond != mongo_us else value
        return original_patch(value)  # subclasses and BSON types: mongomock's own rules

    def check_keys(data: Any) -> None:
        for key, value in data.items():
            if "\0" in key:
                raise collection.InvalidDocument(f"Field names cannot contain the null character (found: {key})")
            kind = type(value)
            if kind is dict or (kind not in _PLAIN and kind is not list and isinstance(value, Mapping)):
                check_keys(value)

    def _insert(self: Any, data: Any, session: Any = None, ordered: bool = True) -> Any:
        store = self._store
        if session or type(data) is not dict or store._ttl_indexes:
            return original_insert(self, data, session, ordered)
        for key, value in data.items():  # what mongomock checks in three passes, in one
            if type(key) is not str or "\0" in key or key[:1] == "$":
                return original_insert(self, data, session, ordered)  # it raises the right error
            if type(value) is dict:
                check_keys(value)
        collection.BSON.encode(data)  # values MongoDB could not store raise here, as in mongomock
        if "_id" not in data:
            data["_id"] = ObjectId()  # pymongo fills the caller's dict too
        object_id = data["_id"]
        if type(object_id) is dict:
            return original_insert(self, data, session, ordered)
        if object_id in store._documents:
            raise collection.DuplicateKeyError("E11000 Duplicate Key Error", 11000)
        data = patch_datetime_awareness_in_document(data)
        store[object_id] = data
        try:
            self._ensure_uniques(data)
        except collection.DuplicateKeyError:
            del store[object_id]  # roll back, as mongomock does
            raise
        return data["_id"]

    original_insert = collection.Collection._insert
    collection.Collection._insert = _insert
    patch_datetime_awareness_in_document.original = original_patch  # type: ignore[attr-defined]
    check_keys.original = original_check  # type: ignore[attr-defined]
    helpers.patch_datetime_awareness_in_document = patch_datetime_awareness_in_document
    collection._recursive_key_check_null_character = check_keys
