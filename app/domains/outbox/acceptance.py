"""Acceptance batching: a drainer records what WhatsApp accepted in bulk, every few milliseconds.

One bulk write moves the accepted messages from ``queued`` to ``accepted`` (with their wamid and the
answer's ``message_status``: accepted, held_for_quality_assessment or paused),
statuses that raced ahead of the acceptance are applied, the live events go out in one Redis
round trip with the finished entries leaving the number's ``taken`` set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo import UpdateOne

from app import redis_scripts
from app.db import utcnow
from app.domains.messages.models import Message, MessageStatus
from app.domains.outbox.lanes import Entry, OutboxQueue
from app.logging import get_logger

if TYPE_CHECKING:
    from app.domains.outbox.items import Item
    from app.realtime import LiveEvents

log = get_logger(__name__)


class AcceptanceBatch:
    """What a drainer has to record: accepted sends, finished entries, spare copies."""

    def __init__(self, queue: OutboxQueue, live: LiveEvents, account_id: str) -> None:
        self.queue = queue
        self.live = live
        self.account_id = account_id
        self.accepted: list[tuple[Item, str, str | None]] = []  # (item, wamid, Meta's message_status)
        self.finished: list[Entry] = []
        self.spares: list[Entry] = []  # second copies of messages the drainer holds: finished, retry state kept

    def __bool__(self) -> bool:
        return bool(self.accepted or self.finished or self.spares)

    async def flush(self) -> list[str]:
        """Record everything pending; returns the ids of the messages now stored as accepted.
        One bulk write, then one Redis round trip (finished entries, spare copies, live events)."""
        accepted, self.accepted = self.accepted, []
        finished, self.finished = self.finished, []
        spares, self.spares = self.spares, []
        events: list[tuple[Any, str, dict[str, Any]]] = []
        if accepted:
            try:
                await self._store(accepted)
            except BaseException:  # not recorded (MongoDB away): kept for the next flush, nothing lost
                self.accepted[:0] = accepted
                self.finished[:0] = finished
                self.spares[:0] = spares
                raise
            finished.extend(item.entry for item, _, _ in accepted)
            events = [(item.message.workspace_id, "message.updated",
                       {"message_id": str(item.message.id), "conversation_id": str(item.message.conversation_id),
                        "status": MessageStatus.ACCEPTED.value}) for item, _, _ in accepted]
        calls = [self.queue.done_call(self.account_id, entries, spare=spare)
                 for entries, spare in ((finished, False), (spares, True)) if entries]
        if calls or events:
            results = await redis_scripts.run(self.queue.redis, [*calls, *self.live.calls(events)])
            await self.live.published(events, results[len(calls):])
            for result in results[:len(calls)]:
                if isinstance(result, Exception):
                    raise result
        return [item.entry.message_id for item, _, _ in accepted]

    async def _store(self, accepted: list[tuple[Item, str, str | None]]) -> None:
        now = utcnow()
        ops = [UpdateOne({"_id": item.message.id, "status": MessageStatus.QUEUED.value},
                         {"$set": {"wamid": wamid, "status": MessageStatus.ACCEPTED.value,
                                   f"status_at.{MessageStatus.ACCEPTED.value}": now, "updated_at": now,
                                   "attempts": item.attempts + 1,
                                   # Meta's answer rides on the same update (no operation of its own)
                                   **({"meta_status": message_status} if message_status else {})}})
               for item, wamid, message_status in accepted]
        result = await Message.get_motor_collection().bulk_write(ops, ordered=False)
        if result.modified_count < len(ops):
            # Already recorded: by its status webhook, which names the message (status.adopt_wamid) when it
            # beats this write; or the message was sent a second time after a crash (another wamid).
            sent = {item.message.id: wamid for item, wamid, _ in accepted}
            stored = await Message.get_motor_collection().find(
                {"_id": {"$in": list(sent)}, "status": {"$ne": MessageStatus.QUEUED.value}},
                projection={"wamid": 1}).to_list(None)
            twice = [str(raw["_id"]) for raw in stored if raw.get("wamid") and raw["wamid"] != sent[raw["_id"]]]
            if twice:
                log.warning("messages sent twice (a crash between Meta's answer and recording it)",
                            account_id=self.account_id, count=len(twice), message_ids=twice[:20])
        # Statuses that beat the send's own answer (rare) wait in PendingStatus: the status side
        # looks again a moment later, and the outbox sweeper after that (status.apply_waiting_statuses),
        # so acceptance costs no read per send for them.
