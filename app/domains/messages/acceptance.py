"""Acceptance batching: a drainer records what WhatsApp accepted in bulk, every few milliseconds.

One bulk write moves the accepted messages from ``queued`` to ``accepted`` (with their wamid),
statuses that raced ahead of the acceptance are applied, the live events go out in one Redis
round trip, and the finished entries leave the number's ``taken`` set in one script call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beanie.operators import In
from pymongo import UpdateOne

from app.db import utcnow
from app.domains.messages.models import Message, MessageStatus, PendingStatus
from app.domains.messages.outbox_queue import Entry, OutboxQueue
from app.domains.messages.status import apply_pending_statuses
from app.logging import get_logger

if TYPE_CHECKING:
    from app.domains.messages.drainer import Item
    from app.realtime import LiveEvents

log = get_logger(__name__)


class AcceptanceBatch:
    """What a drainer has to record: accepted sends, finished entries, spare copies."""

    def __init__(self, queue: OutboxQueue, live: LiveEvents, account_id: str) -> None:
        self.queue = queue
        self.live = live
        self.account_id = account_id
        self.accepted: list[tuple[Item, str]] = []
        self.finished: list[Entry] = []
        self.spares: list[Entry] = []  # second copies of messages the drainer holds: finished, retry state kept

    def __bool__(self) -> bool:
        return bool(self.accepted or self.finished or self.spares)

    async def flush(self) -> list[str]:
        """Record everything pending; returns the ids of the messages now stored as accepted."""
        accepted, self.accepted = self.accepted, []
        finished, self.finished = self.finished, []
        spares, self.spares = self.spares, []
        stored: list[str] = []
        if accepted:
            await self._store(accepted)
            finished.extend(item.entry for item, _ in accepted)
            stored = [item.entry.message_id for item, _ in accepted]
        if finished:
            await self.queue.done(self.account_id, finished)
        if spares:
            await self.queue.done(self.account_id, spares, spare=True)
        return stored

    async def _store(self, accepted: list[tuple[Item, str]]) -> None:
        now = utcnow()
        ops = [UpdateOne({"_id": item.message.id, "status": MessageStatus.QUEUED.value},
                         {"$set": {"wamid": wamid, "status": MessageStatus.ACCEPTED.value,
                                   f"status_at.{MessageStatus.ACCEPTED.value}": now, "updated_at": now,
                                   "attempts": item.attempts + 1}})
               for item, wamid in accepted]
        result = await Message.get_motor_collection().bulk_write(ops, ordered=False)
        if result.modified_count < len(ops):
            log.warning("accepted messages no longer queued (sent twice after a crash?)",
                        account_id=self.account_id, count=len(ops) - result.modified_count)
        wamids = [wamid for _, wamid in accepted]
        early = {p.wamid for p in await PendingStatus.find(In(PendingStatus.wamid, wamids)).to_list()}
        events: list[tuple[Any, str, dict[str, Any]]] = []
        for item, wamid in accepted:
            outgoing = item.message
            status = MessageStatus.ACCEPTED
            if wamid in early:  # statuses that beat the send's own answer (rare): load the document
                message = await Message.get(outgoing.id)
                if message is not None:
                    await apply_pending_statuses(message)
                    status = message.status
            events.append((outgoing.workspace_id, "message.updated",
                           {"message_id": str(outgoing.id), "conversation_id": str(outgoing.conversation_id),
                            "status": status.value}))
        await self.live.publish_many(events)  # one round trip for the batch
