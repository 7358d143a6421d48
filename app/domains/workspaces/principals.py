"""Who a credential is, remembered for a few seconds per process.

Resolving an API key or a session cookie read two documents (the key or session, then its user)
on every request: two of the operations of every API send and of every page and HTMX request.
A web process now keeps each resolved Principal for ``TTL_SECONDS``.

A change that must stop a credential at once (a key revoked, a user deactivated or demoted, a
password set, a sign-out) empties the cache of this process and, through one Redis PUBLISH, of
every other process (``listen``); should that message be lost (Redis down), no process trusts
its copy longer than the TTL. Only credentials that resolved are kept: an unknown key is read
every time, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from app.logging import get_logger

if TYPE_CHECKING:
    from app.domains.workspaces.services import Principal

log = get_logger(__name__)

TTL_SECONDS = 5.0
CHANNEL = "inbox:credentials-changed"
MAX_ENTRIES = 10_000


class PrincipalCache:
    def __init__(self, redis: Any = None, ttl: float = TTL_SECONDS) -> None:
        self.redis = redis
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._closing = False

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[digest]
            return None
        return entry[1]

    def put(self, digest: str, principal: Principal, *, until: float | None = None) -> None:
        """Remember ``principal`` for the TTL (or less: ``until``, a monotonic deadline such as a session's end)."""
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # a burst of distinct credentials: start over rather than grow
        expires = time.monotonic() + self.ttl
        self._entries[digest] = (expires if until is None else min(expires, until), principal)

    def forget_here(self) -> None:
        self._entries.clear()

    async def forget_everywhere(self) -> None:
        """Credentials changed: no process may answer from its copy any more."""
        self.forget_here()
        if self.redis is None:
            return
        try:
            await self.redis.publish(CHANNEL, b"1")
        except Exception as exc:  # noqa: BLE001 - the other processes' copies end with the TTL
            log.warning("credential change not broadcast; other processes follow within seconds",
                        error=type(exc).__name__)

    async def listen(self) -> None:
        """Empty this process's cache whenever any process changes credentials (runs for the process's life)."""
        while not self._closing:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.forget_here()  # whatever was missed while (re)connecting
                while not self._closing:
                    # Waits on the socket (no command sent): a timeout, not the client's socket_timeout.
                    if await pubsub.get_message(timeout=1.0) is not None:
                        self.forget_here()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis went away: the TTL bounds staleness meanwhile
                log.info("credential change listener reconnecting", error=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)

    def close(self) -> None:
        """Ends ``listen`` (with the task's cancellation: redis-py can swallow a cancellation while connecting)."""
        self._closing = True
