"""The delivery state machine: statuses only move forward; early statuses wait for their message."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import parse_object_id, utcnow
from app.domains.messages.models import (
    Message,
    MessageError,
    MessagePricing,
    MessageStatus,
    PendingStatus,
    can_advance,
)

OPAQUE_PREFIX = "wa-inbox:"
"""Every send carries ``biz_opaque_callback_data = "wa-inbox:<message id>"``; Meta returns it in the send's status
webhooks, so a status whose wamid we never stored (the worker died between Meta's answer and recording it) still
names its message (``adopt_wamid``), and the outbox does not send that message a second time."""


def opaque_of(message_id: Any) -> str:
    return f"{OPAQUE_PREFIX}{message_id}"


async def adopt_wamid(workspace_id: Any, opaque: str | None, wamid: str, at: datetime) -> bool:
    """A status for ``wamid``, unknown here, whose opaque data names one of our outbound messages still queued:
    Meta accepted that send, whose answer was never recorded. The message takes the wamid (as accepted) so the
    status applies to it, and a worker taking over its send skips it. One conditional update."""
    if not opaque or not opaque.startswith(OPAQUE_PREFIX):
        return False
    oid = parse_object_id(opaque[len(OPAQUE_PREFIX):])
    if oid is None:
        return False
    try:
        adopted = await Message.get_motor_collection().update_one(
            {"_id": oid, "workspace_id": workspace_id, "direction": "outbound", "status": MessageStatus.QUEUED.value,
             "wamid": None},
            {"$set": {"wamid": wamid, "status": MessageStatus.ACCEPTED.value,
                      f"status_at.{MessageStatus.ACCEPTED.value}": at, "updated_at": utcnow()}})
    except DuplicateKeyError:  # the wamid is another message's: not ours to adopt
        return False
    return adopted.modified_count == 1


PricingLike = MessagePricing | Mapping[str, Any] | str | None
"""Meta's pricing: our model, a status webhook's ``pricing`` object, or (older callers) the category alone."""


def as_pricing(pricing: PricingLike) -> MessagePricing | None:
    if pricing is None or isinstance(pricing, MessagePricing):
        return pricing
    if isinstance(pricing, str):
        return MessagePricing(category=pricing) if pricing else None
    return MessagePricing.from_webhook(pricing)


def pricing_changes(pricing: MessagePricing | None) -> dict[str, Any]:
    """The ``$set`` of Meta's pricing (with ``pricing_category`` beside it); empty without pricing.
    Every status that carries pricing sets it (the last one wins): setting it twice is a no-op."""
    if pricing is None:
        return {}
    changes: dict[str, Any] = {"pricing": pricing.model_dump()}
    if pricing.category:
        changes["pricing_category"] = pricing.category
    return changes


async def advance_status(message: Message, status: MessageStatus, at: datetime | None = None,
                         error: MessageError | None = None, pricing: PricingLike = None) -> bool:
    """Move ``message`` to ``status`` if that is forward; returns whether anything changed.

    The update is conditional on the status we read, so two workers applying statuses to the
    same message at once cannot move it backwards. Meta's pricing is kept even from a status
    that does not move the message (a late 'sent' after 'read').
    """
    at = at or utcnow()
    priced = as_pricing(pricing)
    if not can_advance(message.status, status):
        if priced is not None and priced != message.pricing:
            await Message.find_one(Message.id == message.id).update(
                {"$set": {**pricing_changes(priced), "updated_at": utcnow()}})
            _remember_pricing(message, priced)
        return False
    changes: dict = {"status": status, f"status_at.{status.value}": at, "updated_at": utcnow(),
                     **pricing_changes(priced)}
    if error is not None:
        changes["error"] = error.model_dump()
    result = await Message.get_motor_collection().update_one(
        {"_id": message.id, "status": message.status.value}, {"$set": changes}
    )
    if result.modified_count == 0:
        fresh = await Message.get(message.id)
        if fresh is None or fresh.status == message.status:
            return False
        message.status = fresh.status
        return await advance_status(message, status, at, error, priced)
    message.status = status
    message.status_at[status.value] = at
    if error is not None:
        message.error = error
    if priced is not None:
        _remember_pricing(message, priced)
    return True


def _remember_pricing(message: Message, pricing: MessagePricing) -> None:
    message.pricing = pricing
    if pricing.category:
        message.pricing_category = pricing.category


def forward_from(status: MessageStatus) -> list[str]:
    """The states a message may be in for ``status`` to move it forward (the conditional update's filter)."""
    return [s.value for s in MessageStatus if s is not MessageStatus.RECEIVED and can_advance(s, status)]


async def advance_by_wamid(workspace_id: Any, wamid: str, status: MessageStatus, at: datetime,
                           error: MessageError | None, pricing: PricingLike) -> dict | None | bool:
    """A status webhook in one conditional update that only moves forward (the common case: one operation).

    ``pricing``: the status's ``pricing`` object (or None); kept on the message whether or not the
    status moves it. Returns the changed message's ``_id``, ``workspace_id``, ``conversation_id``, ``status`` and
    ``cause``; False when the message is stored but the status is not forward (a late 'delivered'
    after 'read'); None when no message has that wamid yet (the caller keeps the status for later).
    """
    priced = pricing_changes(as_pricing(pricing))
    changes: dict[str, Any] = {"status": status.value, f"status_at.{status.value}": at, "updated_at": utcnow(),
                               **priced}
    if error is not None:
        changes["error"] = error.model_dump()
    collection = Message.get_motor_collection()
    changed = await collection.find_one_and_update(
        {"workspace_id": workspace_id, "wamid": wamid, "status": {"$in": forward_from(status)}}, {"$set": changes},
        projection={"workspace_id": 1, "conversation_id": 1, "status": 1, "cause": 1},
        return_document=ReturnDocument.AFTER)
    if changed is not None:
        return changed
    if priced:  # Meta's pricing can come with a late status: kept, and the same operation says if it is stored
        stored = await collection.find_one_and_update({"workspace_id": workspace_id, "wamid": wamid},
                                                      {"$set": {**priced, "updated_at": utcnow()}},
                                                      projection={"_id": 1})
    else:
        stored = await collection.find_one({"workspace_id": workspace_id, "wamid": wamid}, projection={"_id": 1})
    return None if stored is None else False


async def keep_for_later(wamid: str, status: MessageStatus, at: datetime, error: MessageError | None,
                         pricing: PricingLike) -> None:
    """A status for a wamid we have not stored yet (statuses can beat the send's own answer)."""
    priced = as_pricing(pricing)
    try:
        await PendingStatus(wamid=wamid, status=status, timestamp=at, error=error, pricing=priced,
                            pricing_category=priced.category if priced else None).insert()
    except DuplicateKeyError:
        pass  # Meta delivered the same status twice


async def apply_pending_statuses(message: Message) -> list[MessageStatus]:
    """Called once a message has its wamid: applies the statuses that arrived before it, in order."""
    if not message.wamid:
        return []
    pending = await PendingStatus.find(PendingStatus.wamid == message.wamid).to_list()
    applied = []
    for item in sorted(pending, key=lambda p: (p.timestamp, _order(p.status))):
        if await advance_status(message, item.status, item.timestamp, item.error,
                                item.pricing or item.pricing_category):
            applied.append(item.status)
    if pending:
        await PendingStatus.find(PendingStatus.wamid == message.wamid).delete()
    return applied


WAITING_LOOKBACK = timedelta(minutes=10)
"""A status waits for its message only while the send that will store the wamid is in flight
(seconds); older ones are for messages sent elsewhere (the Business app on the same number)."""


async def apply_waiting_statuses(wamids: list[str] | None = None, *, settle: timedelta = timedelta(seconds=2),
                                 limit: int = 1000) -> list[tuple[Message, list[MessageStatus]]]:
    """Statuses that beat their message, applied now that it may be stored: those of ``wamids``, or
    (the outbox sweeper) every status received between ``WAITING_LOOKBACK`` and ``settle`` ago.
    Returns the messages that changed, with what was applied. Costs one read when nothing waits."""
    now = utcnow()
    query: dict[str, Any] = ({"wamid": {"$in": wamids}} if wamids is not None
                             else {"received_at": {"$gte": now - WAITING_LOOKBACK, "$lte": now - settle}})
    waiting = {p["wamid"] for p in await PendingStatus.get_motor_collection().find(
        query, projection={"wamid": 1, "_id": 0}).limit(limit).to_list(None)}
    if not waiting:
        return []
    # {$gt: ""} beside the $in: the wamid index is partial on it (see Message.Settings).
    found = await Message.find({"wamid": {"$in": sorted(waiting), "$gt": ""}}).to_list()
    changed = []
    for message in found:
        applied = await apply_pending_statuses(message)
        if applied:
            changed.append((message, applied))
    return changed


def _order(status: MessageStatus) -> int:
    return list(MessageStatus).index(status)
