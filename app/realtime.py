"""Live events: Litestar Channels on Redis pub/sub, one channel per workspace, and a sequence.

Web processes and workers publish the same way, so an event published anywhere reaches every
subscribed tab of every web process. Each event is also appended to the workspace's Redis
Stream (``inbox:live:<workspace>``, the last ``STREAM_LENGTH`` events, kept ``STREAM_TTL_MS``
after the last one) in the same script as the PUBLISH (one round trip), and carries the stream
id it got as ``seq``. A tab remembers the last ``seq`` it saw and, after a reconnect, asks for
what came after it (``events_since``): catch-up follows the order Redis gave the events, never
the clocks of the processes that published them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app import redis_scripts
from app.logging import get_logger

log = get_logger(__name__)


STREAM_LENGTH = 2000
STREAM_TTL_MS = 6 * 3600 * 1000
"""A tab away longer than this (or missing more than STREAM_LENGTH events) reloads instead."""

# KEYS: stream, channel; ARGV: payload (a JSON object), max length, ttl ms. The stream id is
# spliced in as the payload's first key, so subscribers read one JSON object with its "seq".
_PUBLISH = """
local seq = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], '{"seq":"' .. seq .. '",' .. string.sub(ARGV[1], 2))
return seq
"""


def workspace_channel(workspace_id: PydanticObjectId | str) -> str:
    return f"ws:{workspace_id}"


def workspace_stream(workspace_id: PydanticObjectId | str) -> str:
    return f"inbox:live:{workspace_id}"


def _payload(event: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"event": event, **data}, default=str).encode()


def channels_plugin(redis: Redis) -> ChannelsPlugin:
    """The web side: subscribers (WebSocket handlers) listen through this plugin."""
    return ChannelsPlugin(
        backend=RedisChannelsPubSubBackend(redis=redis),
        arbitrary_channels_allowed=True,
        create_ws_route_handlers=False,
    )


class LiveEvents:
    """Publishes ``{"event": name, **data}`` JSON to a workspace's channel."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._publish = redis.register_script(_PUBLISH)
        # async fn(workspace_id, event, data) called after each publish: event subscriptions (issue 8)
        # hook here, since every change to a message or conversation is already published.
        self.listeners: list[Any] = []

    async def publish(self, workspace_id: PydanticObjectId | str, event: str, **data: Any) -> None:
        try:
            await self._publish(keys=[workspace_stream(workspace_id), workspace_channel(workspace_id)],
                                args=[_payload(event, data), STREAM_LENGTH, STREAM_TTL_MS])
        except Exception as exc:  # a live update is best effort: the data is already stored
            log.warning("live event not published", event_name=event, error=type(exc).__name__)
        await self._tell_listeners(workspace_id, event, data)

    async def publish_many(self, events: Sequence[tuple[ObjectId | str, str, dict[str, Any]]]) -> None:
        """Several ``(workspace_id, event, data)`` in one Redis round trip (the same script each, so
        subscribers see no difference): a worker recording a batch of sends publishes them this way."""
        if not events:
            return
        try:
            results = await redis_scripts.run(self._redis, self.calls(events))
        except Exception as exc:  # best effort, as above
            log.warning("live events not published", count=len(events), error=type(exc).__name__)
            results = []
        await self.published(events, results)

    def calls(self, events: Sequence[tuple[ObjectId | str, str, dict[str, Any]]]) -> list[redis_scripts.Call]:
        """The script calls that publish ``events``, to send with other calls in one round trip
        (``redis_scripts.run``); then call ``published`` with their answers."""
        return [redis_scripts.Call(self._publish, [workspace_stream(workspace_id), workspace_channel(workspace_id)],
                                   [_payload(event, data), STREAM_LENGTH, STREAM_TTL_MS])
                for workspace_id, event, data in events]

    async def published(self, events: Sequence[tuple[ObjectId | str, str, dict[str, Any]]],
                        results: Sequence[Any]) -> None:
        """After ``calls`` ran (``results``: their answers, [] when the round trip failed)."""
        failed = len(events) if not results else sum(isinstance(r, Exception) for r in results)
        if failed:
            log.warning("live events not published", count=failed)
        for workspace_id, event, data in events:
            await self._tell_listeners(workspace_id, event, data)

    async def tell(self, workspace_id: PydanticObjectId | str, event: str, **data: Any) -> None:
        """Tell this process's listeners only (no tab shows it): a fact for automations, such as a
        contact's tags changing (``contact.changed``)."""
        await self._tell_listeners(workspace_id, event, data)

    async def latest_seq(self, workspace_id: PydanticObjectId | str) -> str:
        """The id of the workspace's newest event ("0-0" when none): a page rendered after reading it
        shows everything up to it, and its tab catches up from there."""
        try:
            newest = await self._redis.xrevrange(workspace_stream(workspace_id), count=1)
        except Exception as exc:  # noqa: BLE001 - the page still renders; its tab reloads on reconnect
            log.warning("live sequence not read", error=type(exc).__name__)
            return ""
        return newest[0][0].decode() if newest else "0-0"

    async def events_since(self, workspace_id: PydanticObjectId | str, seq: str,
                           limit: int = STREAM_LENGTH) -> list[dict[str, Any]] | None:
        """The events after ``seq``, oldest first, each with its "seq"; None when some of them are gone
        (trimmed or expired: the tab must reload) or ``seq`` is not one of ours."""
        key = workspace_stream(workspace_id)
        try:
            _id_key(seq)
            entries = await self._redis.xrange(key, min="(" + seq, count=limit + 1)
            if seq != "0-0":
                oldest = await self._redis.xrange(key, count=1)
                # Expired (nothing for hours) or trimmed past ``seq``: what came after it may be gone.
                if not oldest or _id_key(oldest[0][0].decode()) > _id_key(seq):
                    return None
        except (ResponseError, ValueError):
            return None
        if len(entries) > limit:
            return None
        events = []
        for entry_id, fields in entries:
            try:
                events.append({"seq": entry_id.decode(), **json.loads(fields[b"e"])})
            except (KeyError, ValueError):
                continue
        return events

    async def _tell_listeners(self, workspace_id: PydanticObjectId | str, event: str, data: dict[str, Any]) -> None:
        for listener in self.listeners:
            try:
                await listener(workspace_id, event, data)
            except Exception as exc:  # a listener never breaks the change that was published
                log.warning("live event listener failed", event_name=event, error=type(exc).__name__)


def _id_key(seq: str) -> tuple[int, int]:
    """A stream id as a sortable pair; ValueError when it is not one."""
    ms, _, n = seq.partition("-")
    return int(ms), int(n or 0)
