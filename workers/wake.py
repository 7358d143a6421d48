"""Wakes an idle arq worker when its queue changes, so it need not poll Redis every ``poll_delay``.

arq finds new jobs by polling its queue's sorted set every ``poll_delay`` (5 ms here, so that a job
an API call enqueues starts at once): ~190 ZRANGEBYSCOREs a second from a worker with nothing to do.
Redis publishes a keyspace notification on ``__keyspace@<db>__:<queue>`` for each write to that
sorted set (an enqueue's ZADD from any process, a finished job's ZREM), when its
``notify-keyspace-events`` contain ``K`` and ``z`` (or ``A``, all types). An idle worker subscribed
to it can wait for a notification instead, and still poll now and then for what no write announces:
a deferred job (a retry, a cron job queued ahead) becoming due, a job whose worker died.

Our own redis-servers start with those flags (app/embedded_redis.py, docker-compose.yml); on any
other the worker adds them with CONFIG SET. A managed Redis that refuses CONFIG gets one warning
and today's polling every ``poll_delay``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis.exceptions import RedisError, ResponseError

from app.logging import get_logger

log = get_logger(__name__)

# How often an idle worker still polls: a deferred job, a retry or a cron job starts at most this late.
IDLE_POLL_SECONDS = 0.1
NOTIFY_EVENTS = "notify-keyspace-events"


def missing_flags(flags: str) -> str:
    """What ``flags`` (a notify-keyspace-events value) lacks to publish sorted-set writes on keyspace channels."""
    return ("" if "K" in flags else "K") + ("" if "z" in flags or "A" in flags else "z")


async def enable_keyspace_events(redis: Any) -> bool:
    """Make the server publish sorted-set keyspace events (keeping its other flags); False if it refuses."""
    try:
        flags = (await redis.config_get(NOTIFY_EVENTS)).get(NOTIFY_EVENTS, "")
        if missing := missing_flags(flags):
            await redis.config_set(NOTIFY_EVENTS, flags + missing)
            log.info("redis: keyspace events enabled for the worker's queue", notify_keyspace_events=flags + missing)
    except ResponseError as exc:  # managed Redis: CONFIG renamed or not allowed (Redis being down is arq's to see)
        log.warning("redis refuses CONFIG, so the worker polls its queue every poll_delay",
                    error=f"{type(exc).__name__}: {exc}"[:200])
        return False
    return True


class QueueWaker:
    """Sets :attr:`changed` at each write to the queue; :meth:`wait` waits for it while the subscription holds."""

    def __init__(self, redis: Any, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.changed = asyncio.Event()
        # True from the subscription's confirmation (no write after it goes unseen) until it is lost.
        self.ready = False
        self._closed = False
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not await enable_keyspace_events(self.redis) or self._closed:
            return
        db = self.redis.connection_pool.connection_kwargs.get("db", 0)
        self._pubsub = self.redis.pubsub()  # its own connection from the pool, held until close()
        try:
            await self._pubsub.subscribe(f"__keyspace@{db}__:{self.queue_name}")
        except RedisError as exc:
            log.warning("queue subscription failed; the worker polls every poll_delay", error=str(exc)[:200])
            return
        if self._closed:  # the worker closed meanwhile
            await self.close()
            return
        self._reader = asyncio.create_task(self._read(), name="queue-waker")

    async def _read(self) -> None:
        try:
            async for message in self._pubsub.listen():
                if message["type"] == "subscribe":
                    self.ready = True
                self.changed.set()
        except Exception as exc:  # noqa: BLE001 - connection lost: polling takes over, the worker goes on
            log.warning("queue subscription lost; the worker polls every poll_delay",
                        error=f"{type(exc).__name__}: {exc}"[:200])
        finally:
            self.ready = False
            self.changed.set()  # a poll waiting on it goes on now

    async def wait(self, timeout: float) -> None:
        """Until the queue changes (since ``changed`` was cleared) or ``timeout``; no wait without a subscription."""
        if self.ready:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.changed.wait()

    async def close(self) -> None:
        """Ends the subscription (more than once is fine); :meth:`wait` no longer waits."""
        self._closed = True
        self.ready = False
        self.changed.set()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._pubsub is not None:
            with contextlib.suppress(Exception):  # the connection may be gone with Redis already
                await self._pubsub.aclose()
