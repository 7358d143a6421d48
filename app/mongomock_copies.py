"""Cheaper copies into and out of mongomock's store (the in-memory database), same results as its own.

Into the store: mongomock rebuilds every document it stores or compares through
``helpers.patch_datetime_awareness_in_document`` (datetimes to naive UTC at millisecond
precision, as MongoDB stores them) and checks every key of every inserted document for null
characters, both with ``isinstance`` against abstract types at each level. Profiled on the webhook
path (bench/webhooks.py, issue 4) they were a third of a stored delivery's CPU. These versions
dispatch on the exact type first and fall back to mongomock's functions for anything unusual
(OrderedDict, SON, Timestamp, subclasses), so what is stored is unchanged; a randomized test
compares them with the originals. Inserting one plain dict also skips mongomock's second and
third passes over its keys and its locked membership test (TTL collections keep the original,
which expires documents first). Installed by ``app.mongomock_compat.patch_mongomock``.

Out of the store: every answer is copied leaf by leaf with ``copy.copy`` (an ObjectId or a
datetime through ``__reduce__``), then walked again to make datetimes aware; ``patch_answers``
does both with the same type dispatch, sharing immutable leaves (installed by
``app.mongomock_fast.patch_queries``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId

_PLAIN = frozenset({str, int, float, bool, type(None), bytes, ObjectId, PydanticObjectId})
"""Types mongomock stores as they are (immutable, no datetime inside)."""
_SHARED = _PLAIN | {datetime}
"""Types an answer can share with the store: immutable (datetimes only get a tzinfo on the way out)."""


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


def patch_answers() -> None:
    """mongomock's copy of an answer and its aware-datetime pass, with type dispatch and shared leaves."""
    from datetime import UTC

    from mongomock import collection, helpers

    original_copy, original_aware = collection._copy_field, helpers.make_datetime_timezone_aware_in_document

    def _copy_field(obj: Any, container: Any) -> Any:
        t = type(obj)
        if t in _SHARED:
            return obj
        if t is dict and container is dict:
            return {k: _copy_field(v, container) for k, v in obj.items()}
        if t is list:
            return [_copy_field(v, container) for v in obj]
        return original_copy(obj, container)

    def aware(value: Any) -> Any:
        t = type(value)
        if t is datetime:
            return value.replace(tzinfo=UTC)
        if t in _SHARED:
            return value
        if t is dict:
            return {k: aware(v) for k, v in value.items()}
        if t is list:
            return [aware(v) for v in value]
        return original_aware(value)

    collection._copy_field = _copy_field
    helpers.make_datetime_timezone_aware_in_document = aware
    original_only = collection.Collection._copy_only_fields

    simple: dict[tuple, tuple | None] = {}

    def _simple(fields: dict) -> tuple | None:
        """(fields kept, in the order asked) for {"a": 1, "b": 1} or {"a": 1, "_id": 0} on top-level fields."""
        key = tuple(fields.items())
        if key not in simple:
            plain = (all(type(k) is str and "." not in k and not k.startswith("$") for k in fields)
                     and all(type(v) in (int, bool) and v == 1 for k, v in fields.items() if k != "_id")
                     and type(fields.get("_id", 1)) in (int, bool) and fields.get("_id", 1) in (0, 1)
                     and len(fields) > ("_id" in fields))
            kept = [k for k in fields if k != "_id"]
            if fields.get("_id", 1):
                kept.insert(0, "_id")
            simple[key] = tuple(kept) if plain else None
            if len(simple) > 256:
                simple.clear()
        return simple[key]

    def _copy_only_fields(self: Any, doc: Any, fields: Any, container: Any) -> Any:
        if type(fields) is dict and fields and container is dict:
            kept = _simple(fields)
            if kept is not None:
                return {k: _copy_field(doc[k], dict) for k in kept if k in doc}
        return original_only(self, doc, fields, container)

    collection.Collection._copy_only_fields = _copy_only_fields
