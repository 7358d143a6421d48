"""Failed messages (the dead-letter view): our messages that failed for good, for admins to read, retry or set aside,
many at a time.

- A message fails for good on a permanent error (Meta's code says so: app/whatsapp/error_table.py) or once its
  retries ran out; nothing tries it again by itself after that.
- **Retry** is a new attempt of the same message (same id, its ``retries`` counted), through OutboxService.retry and
  its rules: the 24-hour window, the template, the number. One that cannot go now is reported with its reason and
  stays in the list.
- **Discard** sets it aside (``Message.discarded``: when, and who): it stays failed in its conversation but leaves
  the list (``discarded=True`` shows those). A retry takes it back.

The list is read per number on the (account_id, status, _id) index, newest first, and merged: no index of its own.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId

from app.db import as_utc, parse_object_id, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.messages.models import Message, MessageStatus
from app.domains.outbox.service import OutboxService
from app.errors import AppError, ValidationFailed

MAX_BATCH = 500
"""Messages one bulk retry or discard takes."""


@dataclass(frozen=True)
class FailedFilter:
    account_id: PydanticObjectId | None = None
    error_code: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    discarded: bool = False
    before: ObjectId | None = None
    """The cursor: messages older than this one."""
    limit: int = 50


@dataclass
class FailedPage:
    messages: list[Message]
    next_cursor: str | None


def _query(workspace_id: PydanticObjectId, account_id: PydanticObjectId, asked: FailedFilter) -> dict[str, Any]:
    query: dict[str, Any] = {"account_id": account_id, "status": MessageStatus.FAILED.value, "workspace_id": workspace_id,
                             "direction": "outbound", "discarded": {"$ne": None} if asked.discarded else None}
    ids: dict[str, Any] = {}
    if asked.start is not None:
        ids["$gte"] = ObjectId.from_datetime(as_utc(asked.start))
    if asked.end is not None:
        ids["$lt"] = ObjectId.from_datetime(as_utc(asked.end))
    if asked.before is not None:
        ids["$lt"] = min(ids.get("$lt", asked.before), asked.before)
    if ids:
        query["_id"] = ids
    if asked.error_code is not None:
        query["error.code"] = asked.error_code
    return query


async def failed_page(workspace_id: PydanticObjectId, asked: FailedFilter) -> FailedPage:
    """The workspace's failed messages (of one number, one error code, a time range), newest first."""
    numbers = [asked.account_id] if asked.account_id is not None else [
        a.id for a in await WhatsAppAccount.find(WhatsAppAccount.workspace_id == workspace_id).to_list()]
    runs = [await Message.find(_query(workspace_id, number, asked)).sort("-_id").limit(asked.limit + 1).to_list()
            for number in numbers if number is not None]
    merged = list(heapq.merge(*runs, key=lambda m: m.id, reverse=True))
    shown = merged[:asked.limit]
    more = len(merged) > asked.limit
    return FailedPage(shown, str(shown[-1].id) if more and shown else None)


def _ids(ids: list[str]) -> list[ObjectId]:
    if not ids:
        raise ValidationFailed("Choose at least one message.", error_code="NO_MESSAGES", details={"ids": "empty"})
    if len(ids) > MAX_BATCH:
        raise ValidationFailed(f"At most {MAX_BATCH} messages at a time.", error_code="TOO_MANY_MESSAGES",
                               details={"ids": f"{len(ids)} given"})
    parsed = [parse_object_id(i) for i in ids]
    if any(p is None for p in parsed):
        raise ValidationFailed("Each id must be a message id.", error_code="VALIDATION_ERROR", details={"ids": "not ids"})
    return [p for p in parsed if p is not None]


async def retry_many(outbox: OutboxService, workspace_id: PydanticObjectId, ids: list[str]) -> dict[str, Any]:
    """Each message tried again (OutboxService.retry); those it refuses counted by their reason's error code."""
    retried, skipped = 0, Counter[str]()
    for message_id in _ids(ids):
        try:
            await outbox.retry(workspace_id, str(message_id))
            retried += 1
        except AppError as error:
            skipped[error.error_code] += 1
    return {"retried": retried, "skipped": dict(skipped)}


async def discard_many(workspace_id: PydanticObjectId, ids: list[str], by: str) -> int:
    """Set failed messages aside; returns how many were (others: not failed, not this workspace's, already aside)."""
    result = await Message.find({"_id": {"$in": _ids(ids)}, "workspace_id": workspace_id,
                                 "status": MessageStatus.FAILED.value, "direction": "outbound",
                                 "discarded": None}).update({"$set": {"discarded": {"at": utcnow(), "by": by},
                                                                      "updated_at": utcnow()}})
    return result.modified_count
