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


# --- inbound: webhook ingestion and media downloads -------------------------------------------
# Both run on DEFAULT_QUEUE: it is the low-latency queue (bulk sends get their own), and a
# customer's message must reach the inbox as fast as an agent's reply leaves it.
INGEST_JOB = "ingest_webhook_event"
FETCH_MEDIA_JOB = "fetch_media"
SWEEP_JOB = "sweep_webhook_events"


async def enqueue_ingest(pool: ArqRedis, event_id: str) -> bool:
    """Ingest one stored webhook event. Job id = event id, so redeliveries share one job."""
    return await pool.enqueue_job(INGEST_JOB, event_id, _job_id=event_id) is not None


async def enqueue_fetch_media(pool: ArqRedis, message_id: str, *, generation: int = 0) -> bool:
    """Download a message's media. ``generation`` > 0 for a fresh job after an earlier one gave up."""
    job_id = f"media:{message_id}:{generation}"  # prefixed: outbound send jobs use the bare message id
    return await pool.enqueue_job(FETCH_MEDIA_JOB, message_id, _job_id=job_id) is not None
