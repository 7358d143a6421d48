"""Live events: Litestar Channels on Redis pub/sub, one channel per workspace.

Web processes and workers publish the same way (a Redis PUBLISH through the channels backend),
so an event published anywhere reaches every subscribed tab of every web process.
"""

from __future__ import annotations

import json
from typing import Any

from beanie import PydanticObjectId
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis

from app.logging import get_logger

log = get_logger(__name__)


def workspace_channel(workspace_id: PydanticObjectId | str) -> str:
    return f"ws:{workspace_id}"


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
        self._backend = RedisChannelsPubSubBackend(redis=redis)
        # async fn(workspace_id, event, data) called after each publish: event subscriptions (issue 8)
        # hook here, since every change to a message or conversation is already published.
        self.listeners: list[Any] = []

    async def publish(self, workspace_id: PydanticObjectId | str, event: str, **data: Any) -> None:
        payload = json.dumps({"event": event, **data}, default=str).encode()
        try:
            await self._backend.publish(payload, [workspace_channel(workspace_id)])
        except Exception as exc:  # a live update is best effort: the data is already stored
            log.warning("live event not published", event_name=event, error=type(exc).__name__)
        await self._tell_listeners(workspace_id, event, data)

    async def publish_many(self, events: list[tuple[PydanticObjectId | str, str, dict[str, Any]]]) -> None:
        """Several ``(workspace_id, event, data)`` in one Redis round trip (the same PUBLISH each, so
        subscribers see no difference): a worker recording a batch of sends publishes them this way."""
        if not events:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for workspace_id, event, data in events:
                    payload = json.dumps({"event": event, **data}, default=str).encode()
                    pipe.publish(workspace_channel(workspace_id), payload)
                await pipe.execute()
        except Exception as exc:  # best effort, as above
            log.warning("live events not published", count=len(events), error=type(exc).__name__)
        for workspace_id, event, data in events:
            await self._tell_listeners(workspace_id, event, data)

    async def _tell_listeners(self, workspace_id: PydanticObjectId | str, event: str, data: dict[str, Any]) -> None:
        for listener in self.listeners:
            try:
                await listener(workspace_id, event, data)
            except Exception as exc:  # a listener never breaks the change that was published
                log.warning("live event listener failed", event_name=event, error=type(exc).__name__)
