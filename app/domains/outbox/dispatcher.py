"""Each worker process's dispatcher: starts a drainer for every number put on the ready list.

A push that finds no drainer for its number sets the number's lease to ``wake`` and appends the
number to one shared list (lanes.READY_KEY), in the same script. Every worker process waits on
that list with one blocking pop, so each woken number goes to exactly one worker, at once, with no
job to enqueue, poll for or claim: the first send to a quiet number costs the web process nothing
more than its push, and the worker one wait (plus the drainer's claim, which also takes the first
entries). Before this, each activation was an arq job: about 15 Redis round trips between
enqueue, poll, claim and result, and up to a poll's delay.

A woken number whose worker died before its drainer claimed it keeps its ``wake`` lease until
the lease expires (30 s); the outbox sweeper then wakes it again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from app.domains.outbox.drainer import LINGER_SECONDS, MAX_BELL_SECONDS, drain
from app.domains.outbox.lanes import OutboxQueue
from app.logging import get_logger

if TYPE_CHECKING:
    from app.runtime import Runtime

log = get_logger(__name__)

MAX_DRAINERS = 200        # numbers drained at once by one process; more wait on the list for another worker
WAIT_SECONDS = MAX_BELL_SECONDS  # one wait on the list (under the Redis client's 5-s socket timeout)
RETRY_SECONDS = 1.0       # after Redis failed to answer


class Dispatcher:
    """Waits on the ready list and runs one drainer task per number it takes (see the module docstring)."""

    def __init__(self, runtime: Runtime, *, max_drainers: int = MAX_DRAINERS, linger: float = LINGER_SECONDS
                 ) -> None:
        self.runtime = runtime
        self.max_drainers = max_drainers
        self.linger = linger
        self.drainers: set[asyncio.Task[str]] = set()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def queue(self) -> OutboxQueue:
        return self.runtime.outbox.queue

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    def stop_taking(self) -> None:
        """Take no more numbers; running drainers carry on (``stop`` ends them)."""
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        """Take no more numbers and stop the running drainers: each hands its number back to the ready
        list, so another worker carries on at once."""
        self.stop_taking()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self.drainers):
            task.cancel()
        if self.drainers:
            await asyncio.gather(*self.drainers, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._room.wait()
            try:
                account_id = await self.queue.next_ready(WAIT_SECONDS)
            except (RedisError, OSError) as exc:
                log.info("outbox dispatcher: Redis did not answer; trying again", error=type(exc).__name__)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if account_id is not None:
                self._start(account_id)

    def _start(self, account_id: str) -> None:
        task = asyncio.create_task(drain(self.runtime, account_id, linger=self.linger), name=f"drain:{account_id}")
        self.drainers.add(task)
        if len(self.drainers) >= self.max_drainers:
            self._room.clear()
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[str]) -> None:
        self.drainers.discard(task)
        self._room.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("drainer ended with an error", error=repr(task.exception()))
