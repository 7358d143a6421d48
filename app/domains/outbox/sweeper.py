"""The outbox sweeper (arq cron): no queued message waits forever, whatever died.

- Redis started empty or lost its data (the ``epoch`` key is gone): every queued message in
  Mongo is pushed again, oldest first, so order within a conversation is kept. The sweep first
  waits REBUILD_SETTLE: a drainer that held the number before stops at its next send slot (the
  slots are fenced by its lease, pacing.py) and records what WhatsApp accepted meanwhile, so those
  messages are no longer ``queued`` when the rebuild reads them.
- A number with entries but no drainer (its worker was killed and the lease expired, or a
  wake-up was lost): it is woken (put on the ready list, dispatcher.py); the new drainer puts the dead one's unfinished
  entries back in front.
- A queued message older than STALE_AFTER whose number has no entries and no drainer (the API
  stored it while Redis was down): pushed again.

Pushing a message twice is harmless: a drainer sends only messages still ``queued`` and skips
a second copy it already holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bson import ObjectId
from redis.exceptions import RedisError

from app.db import utcnow
from app.domains.messages.models import Message, MessageStatus
from app.domains.outbox.lanes import OutboxQueue
from app.logging import get_logger

log = get_logger(__name__)

STALE_AFTER = timedelta(seconds=60)
REBUILD_SETTLE = 2.0  # s: > the limiter's horizon (0.75) + a flush (0.2) + a send's usual answer
REBUILD_BATCH = 1000


@dataclass
class SweepReport:
    rebuilt: int = 0
    woken: int = 0
    requeued: int = 0


# A sweep reads only what it pushes (no document is built): it may go through thousands.
_FIELDS = {"account_id": 1, "conversation_id": 1, "priority": 1}


async def _push(queue: OutboxQueue, raw: dict[str, Any]) -> bool:
    lane = "b" if raw.get("priority") == "bulk" else "a"
    return await queue.push(str(raw["account_id"]), str(raw["_id"]), str(raw["conversation_id"]), lane)


async def _queued(query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    cursor = Message.get_motor_collection().find(
        {"status": MessageStatus.QUEUED.value, "direction": "outbound", **query}, _FIELDS)
    return await cursor.sort("_id", 1).limit(limit).to_list(None)


async def sweep_outbox(queue: OutboxQueue) -> SweepReport:
    report = SweepReport()
    try:
        woken: set[str] = set()
        if await queue.mark_epoch():
            # Fresh Redis: rebuild every lane from Mongo, in _id (queued) order.
            await asyncio.sleep(REBUILD_SETTLE)
            last = None
            while True:
                batch = await _queued({} if last is None else {"_id": {"$gt": last}}, REBUILD_BATCH)
                if not batch:
                    break
                for raw in batch:
                    if await _push(queue, raw):
                        woken.add(str(raw["account_id"]))
                    report.rebuilt += 1
                last = batch[-1]["_id"]
            if report.rebuilt:
                log.warning("outbox rebuilt from Mongo after Redis started empty", messages=report.rebuilt)
        idle: set[str] = set()
        for account_id in await queue.accounts():
            agent, bulk, taken = await queue.depth(account_id)
            if agent + bulk + taken == 0:
                if await queue.forget_if_idle(account_id):
                    idle.add(account_id)
                continue
            if account_id not in woken and await queue.wake(account_id):
                woken.add(account_id)
        # Numbers with entries or a drainer hold their messages already: only the others are searched.
        busy = [ObjectId(a) for a in await queue.accounts() if a not in idle and ObjectId.is_valid(a)]
        query: dict[str, Any] = {"updated_at": {"$lt": utcnow() - STALE_AFTER}}
        if busy:
            query["account_id"] = {"$nin": busy}
        drained: dict[str, bool] = {}  # number -> a drainer holds it (asked once: our own pushes wake it)
        for raw in await _queued(query, REBUILD_BATCH):
            account_id = str(raw["account_id"])
            if account_id not in drained:
                drained[account_id] = await queue.has_lease(account_id)
            if drained[account_id]:
                continue
            if await _push(queue, raw):
                woken.add(account_id)
            report.requeued += 1
        report.woken = len(woken)  # each one put on the ready list by its push or wake
    except RedisError as exc:
        log.warning("outbox sweep skipped: Redis unavailable", error=type(exc).__name__)
    return report
