"""Keyset (cursor) pagination shared by every JSON list (``{"data": [...], "next_cursor": ...}``) and the
inbox's pages: one cursor codec (:func:`encode_cursor` / :func:`decode_cursor`), one error (``INVALID_CURSOR``, 400).

A cursor is an opaque base64url token holding the last item's (sort key, _id) and the listing it
belongs to. The next page is "everything strictly after that pair" in the sort order, so items
inserted meanwhile never shift or repeat what a client already has (unlike skip/limit), and
each page is one indexed range query. Items whose sort key is null sort after every dated one
in a descending listing, and are walked by _id alone.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from beanie import PydanticObjectId
from beanie.odm.queries.find import FindMany
from bson import ObjectId
from bson.errors import InvalidId

from app.db import as_utc
from app.errors import ClientError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class InvalidCursor(ClientError):
    error_code = "INVALID_CURSOR"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"d": as_utc(value).isoformat()}
    if isinstance(value, ObjectId):
        return {"o": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "d" in value:
        return datetime.fromisoformat(value["d"])
    if isinstance(value, dict) and "o" in value:
        return PydanticObjectId(value["o"])
    return value


def encode_cursor(listing: str, key: Any, item_id: ObjectId) -> str:
    """The cursor after the item (``key``, ``item_id``) of ``listing``: the one codec for every paged
    list, JSON API and inbox pages alike. ``listing`` names the order (e.g. ``conversations``,
    ``messages:<conversation id>``): lists in the same order share it, and so accept each other's cursors."""
    raw = json.dumps({"l": listing, "k": _encode_value(key), "i": str(item_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str, *, key_type: type | None = None) -> tuple[Any, PydanticObjectId]:
    """(sort key, _id) from a cursor of ``listing`` (whose key is a ``key_type`` when one is given);
    InvalidCursor (400, ``INVALID_CURSOR``) for anything else."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, dict) or raw.get("l") != listing:
            raise ValueError("cursor of another listing")
        key = _decode_value(raw.get("k"))
        if key_type is not None and not isinstance(key, key_type):
            raise TypeError("cursor key of another type")
        return key, PydanticObjectId(raw["i"])
    except (ValueError, TypeError, KeyError, InvalidId, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("This cursor is not valid for this list; start again without it.",
                            details={"cursor": cursor[:100]}) from None


def after_filter(field: str, key: Any, item_id: PydanticObjectId, *, descending: bool) -> dict[str, Any]:
    """The Mongo filter for "strictly after (key, id)" in (field, _id) order."""
    id_op = "$lt" if descending else "$gt"
    if field == "_id":
        return {"_id": {id_op: item_id}}
    if key is None:  # nulls come last when descending (first when ascending): only ties on null remain
        if descending:
            return {field: None, "_id": {id_op: item_id}}
        return {"$or": [{field: None, "_id": {id_op: item_id}}, {field: {"$ne": None}}]}
    key_op = "$lt" if descending else "$gt"
    branches: list[dict[str, Any]] = [{field: {key_op: key}}, {field: key, "_id": {id_op: item_id}}]
    if descending:
        branches.append({field: None})
    return {"$or": branches}


async def paginate(query: FindMany[Any], listing: str, *, field: str, limit: int, cursor: str | None,
                   descending: bool = True) -> Page[Any]:
    """One page of ``query`` in (field, _id) order, starting after ``cursor``."""
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor:
        key, item_id = decode_cursor(listing, cursor)
        query = query.find(after_filter(field, key, item_id, descending=descending))
    direction = -1 if descending else 1
    sort = [("_id", direction)] if field == "_id" else [(field, direction), ("_id", direction)]
    items = await query.sort(sort).limit(limit + 1).to_list()
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        key = last.id if field == "_id" else getattr(last, field)
        next_cursor = encode_cursor(listing, key, last.id)
    return Page(items, next_cursor)
