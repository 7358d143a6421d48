"""A per-process cache with a time to live where concurrent misses of one key share one load.

For what every request needs and rarely changes (a webhook URL's account, a number's account):
without the shared load, the first second of a burst (Meta delivering to 16 connections at
once) read the same document once per connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from app.changes import Changes

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(self, ttl: float, *, keep: Callable[[V], bool] = lambda value: value is not None) -> None:
        """``keep``: whether a loaded value is cached (by default not None: an unknown key is read again)."""
        self.ttl = ttl
        self.keep = keep
        self._entries: dict[Hashable, tuple[float, asyncio.Future[V]]] = {}

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]], *, fresh: bool = False) -> V:
        """The value of ``key``, loaded with ``load()`` when missing, expired or ``fresh`` is asked for."""
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now and not fresh:
            return await asyncio.shield(cached[1])
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._entries[key] = (now + self.ttl, future)
        try:
            value = await load()
        except BaseException as exc:
            self._forget_if(key, future)
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: the waiters re-raise it; nobody else must log it
            raise
        if not self.keep(value):
            self._forget_if(key, future)
        future.set_result(value)
        return value

    def expires_in(self, key: Hashable) -> float | None:
        """Seconds until ``key``'s value is read again (None when not cached)."""
        cached = self._entries.get(key)
        return None if cached is None else cached[0] - time.monotonic()

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def _forget_if(self, key: Hashable, future: asyncio.Future[V]) -> None:
        cached = self._entries.get(key)
        if cached is not None and cached[1] is future:
            del self._entries[key]


class SharedCache(Generic[V]):
    """A TtlCache of per-workspace settings whose entries every process drops as soon as one process says
    they changed (``changed``: published on ``topic`` through app/changes.py); the TTL only bounds a
    notice that was lost. Without ``changes`` (a test's lone process) a change drops this process's copy."""

    def __init__(self, topic: str, ttl: float, changes: Changes | None = None, *,
                 keep: Callable[[V], bool] = lambda value: True) -> None:
        self.topic = topic
        self.changes = changes
        self._cache: TtlCache[V] = TtlCache(ttl, keep=keep)
        if changes is not None:
            changes.on(topic, self.forget)

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        return await self._cache.get(str(key), load)

    async def changed(self, key: Hashable) -> None:
        if self.changes is None:
            self.forget(str(key))
        else:
            await self.changes.publish(self.topic, str(key))

    def forget(self, key: str | None) -> None:
        """Drop ``key`` (None: everything, as when the notices' connection was lost)."""
        if key is None:
            self._cache.clear()
        else:
            self._cache.forget(key)
