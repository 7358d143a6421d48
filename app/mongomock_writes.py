"""Cheaper write-side helpers for mongomock (the in-memory database), same results as its own.

mongomock rebuilds every document it stores or compares through
``helpers.patch_datetime_awareness_in_document`` (datetimes to naive UTC at millisecond
precision, as MongoDB stores them) and checks every key of every inserted document for null
characters, both with ``isinstance`` against abstract types at each level. Profiled on the webhook
path (bench/webhooks.py, issue 4) they were a third of a stored delivery's CPU. These versions
dispatch on the exact type first and fall back to mongomock's functions for anything unusual
(OrderedDict, SON, Timestamp, subclasses), so what is stored is unchanged; a randomized test
compares them with the originals. Installed by ``app.mongomock_compat.patch_mongomock``.
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

    patch_datetime_awareness_in_document.original = original_patch  # type: ignore[attr-defined]
    check_keys.original = original_check  # type: ignore[attr-defined]
    helpers.patch_datetime_awareness_in_document = patch_datetime_awareness_in_document
    collection._recursive_key_check_null_character = check_keys
