"""Changes that every process must hear about at once, over one Redis channel.

Processes keep short-lived copies of what every request needs and rarely changes (who a
credential is, a number's account). A change that must end those copies at once (a key revoked,
a number disabled, a new token) is published here; each process's listener calls the handlers of
its topic. Should a message be lost (Redis down), each copy's own time to live bounds how long it
is trusted; after a reconnection every handler is called, since changes may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from app.logging import get_logger

log = get_logger(__name__)

CHANNEL = "inbox:changes"

Handler = Callable[[str | None], None]
"""Called with the changed key (None: anything of the topic may have changed)."""


class Changes:
    def __init__(self, redis: Any = None) -> None:
        self.redis = redis
        self._handlers: dict[str, list[Handler]] = {}
        self._closing = False

    def on(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    def _dispatch(self, topic: str | None, key: str | None) -> None:
        for name, handlers in self._handlers.items():
            if topic is None or topic == name:
                for handler in handlers:
                    handler(key)

    async def publish(self, topic: str, key: str | None = None) -> None:
        """This process's copies are dropped now, the other processes' a moment later."""
        self._dispatch(topic, key)
        if self.redis is None:
            return
        try:
            await self.redis.publish(CHANNEL, f"{topic}:{key or ''}".encode())
        except Exception as exc:  # noqa: BLE001 - the other processes' copies end with their TTL
            log.warning("change not broadcast; other processes follow within seconds", topic=topic,
                        error=type(exc).__name__)

    async def listen(self) -> None:
        """Apply every process's changes to this one (runs for the process's life)."""
        while not self._closing:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self._dispatch(None, None)  # whatever was missed while (re)connecting
                while not self._closing:
                    # Waits on the socket (no command sent): a timeout, not the client's socket_timeout.
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        topic, _, key = bytes(message["data"]).decode().partition(":")
                        self._dispatch(topic, key or None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis went away: the TTLs bound staleness meanwhile
                log.info("change listener reconnecting", error=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)

    def close(self) -> None:
        """Ends ``listen`` (with the task's cancellation: redis-py can swallow a cancellation while connecting)."""
        self._closing = True
