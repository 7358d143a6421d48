"""The outbox sweeper (arq cron): no queued message waits forever, whatever died.

- Redis started empty or lost its data (the ``epoch`` key is gone): every queued message in
  Mongo is pushed again, oldest first, so order within a conversation is kept.
- A number with entries but no drainer (its worker was killed and the lease expired, or a
  wake-up was lost): a drain job is enqueued; the new drainer puts the dead one's unfinished
  entries back in front.
- A queued message older than STALE_AFTER whose number has no entries and no drainer (the API
  stored it while Redis was down): pushed again.

Pushing a message twice is harmless: a drainer sends only messages still ``queued`` and skips
a second copy it already holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import RedisError

from app.db import utcnow
from app.domains.messages.models import Message, MessageStatus
from app.domains.messages.outbox_queue import OutboxQueue
from app.logging import get_logger
from app.queue import enqueue_drain

log = get_logger(__name__)

STALE_AFTER = timedelta(seconds=60)
REBUILD_BATCH = 1000


@dataclass
class SweepReport:
    rebuilt: int = 0
    woken: int = 0
    requeued: int = 0


async def _push(queue: OutboxQueue, message: Message) -> bool:
    lane = "b" if message.priority == "bulk" else "a"
    return await queue.push(str(message.account_id), str(message.id), str(message.conversation_id), lane)


async def sweep_outbox(queue: OutboxQueue, arq: object) -> SweepReport:
    report = SweepReport()
    try:
        woken: set[str] = set()
        if await queue.mark_epoch():
            # Fresh Redis: rebuild every lane from Mongo, in _id (queued) order.
            last = None
            while True:
                query = {"status": MessageStatus.QUEUED.value, "direction": "outbound"}
                if last is not None:
                    query["_id"] = {"$gt": last}
                batch = await Message.find(query).sort("+_id").limit(REBUILD_BATCH).to_list()
                if not batch:
                    break
                for message in batch:
                    if await _push(queue, message):
                        woken.add(str(message.account_id))
                    report.rebuilt += 1
                last = batch[-1].id
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
        stale = await Message.find(
            {"status": MessageStatus.QUEUED.value, "direction": "outbound",
             "updated_at": {"$lt": utcnow() - STALE_AFTER}}).sort("+_id").limit(REBUILD_BATCH).to_list()
        known = set(await queue.accounts())
        for message in stale:
            account_id = str(message.account_id)
            if account_id in known and account_id not in idle:
                continue  # its number has entries or a drainer: the message is in there
            if await queue.has_lease(account_id):
                continue
            if await _push(queue, message):
                woken.add(account_id)
            report.requeued += 1
        for account_id in woken:
            await enqueue_drain(arq, account_id)  # type: ignore[arg-type]
        report.woken = len(woken)
    except RedisError as exc:
        log.warning("outbox sweep skipped: Redis unavailable", error=type(exc).__name__)
    return report
