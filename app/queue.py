"""arq queues: names, the pool, and typed enqueue helpers (no string job names elsewhere)."""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings, create_pool

# Agent replies and inbound work must not wait behind bulk sends, so they get their own queue.
DEFAULT_QUEUE = "inbox:queue"

HEARTBEAT_KEY = "inbox:worker:heartbeat"
HEARTBEAT_TTL_SECONDS = 30


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = 1
    settings.conn_timeout = 2
    return settings


async def open_pool(url: str) -> ArqRedis:
    return await create_pool(redis_settings(url), default_queue_name=DEFAULT_QUEUE)
