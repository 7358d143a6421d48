"""Live events: Litestar Channels on Redis pub/sub, one channel per workspace."""

from __future__ import annotations

from beanie import PydanticObjectId
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis


def workspace_channel(workspace_id: PydanticObjectId | str) -> str:
    return f"ws:{workspace_id}"


def channels_plugin(redis: Redis) -> ChannelsPlugin:
    """Every web process subscribes through Redis, so an event published anywhere reaches every tab."""
    return ChannelsPlugin(
        backend=RedisChannelsPubSubBackend(redis=redis),
        arbitrary_channels_allowed=True,
        create_ws_route_handlers=False,
    )
