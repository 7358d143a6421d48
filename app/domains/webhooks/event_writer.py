"""Group commit for webhook events: deliveries that arrive together are stored with one insert_many.

Each delivery still waits until its own document is stored (or found stored already: a
redelivery) before Meta gets its 200; deliveries in flight at the same moment share one database
call: one round trip for a burst instead of one per delivery. Nothing waits on a timer: a batch is
whatever joined before the event loop's next turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000
MAX_BATCH = 200
"""Deliveries per insert_many (Meta's bodies are up to 3 MB; MongoDB splits big batches anyway)."""


class EventWriteError(Exception):
    """The database refused this document for another reason than a duplicate key."""


class EventWriter:
    def __init__(self, collection: Callable[[], Any]) -> None:
        self._collection = collection
        self._pending: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._flushing: set[asyncio.Task[None]] = set()  # referenced until done

    async def insert(self, document: dict[str, Any]) -> bool:
        """Store ``document``; True when a document with its ``_id`` was stored already."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append((document, future))
        if len(self._pending) == 1:  # the first of a batch schedules its write
            task = loop.create_task(self._flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        return await future

    async def _flush(self) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if self._pending:  # more than a batch joined: the rest get their own write
            task = asyncio.get_running_loop().create_task(self._flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        outcomes: dict[int, bool | BaseException] = {}
        try:
            await self._collection().insert_many([document for document, _ in batch], ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                index = error.get("index")
                if error.get("code") == DUPLICATE_KEY:
                    outcomes[index] = True
                else:
                    outcomes[index] = EventWriteError(str(error.get("errmsg", "write refused"))[:200])
        except Exception as exc:  # the database is unreachable: every delivery in the batch fails (Meta retries)
            for index in range(len(batch)):
                outcomes[index] = exc
        for index, (_, future) in enumerate(batch):
            if future.done():  # the request went away meanwhile
                continue
            outcome = outcomes.get(index, False)
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
