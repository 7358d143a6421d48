"""arq queues: names, the pool, and typed enqueue helpers (no string job names elsewhere)."""

from __future__ import annotations

import uuid

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


# --- outbound: one drain job per number with work, read receipts, the outbox sweeper ----------
DRAIN_JOB = "drain_outbox"
MARK_READ_JOB = "send_read_receipt"
OUTBOX_SWEEP_JOB = "sweep_outbox"


async def enqueue_drain(pool: ArqRedis, account_id: str) -> bool:
    """Start a drainer for a number. Exclusivity comes from the outbox lease (outbox_queue.py), so
    every activation gets a fresh job id: a finishing job can never swallow the next wake-up."""
    job_id = f"drain:{account_id}:{uuid.uuid4().hex[:12]}"
    return await pool.enqueue_job(DRAIN_JOB, account_id, _job_id=job_id) is not None


async def enqueue_mark_read(pool: ArqRedis, account_id: str, wamid: str) -> bool:
    """Send one read receipt; job id = the wamid, so it is sent once however often it is asked."""
    return await pool.enqueue_job(MARK_READ_JOB, account_id, wamid, _job_id=f"read:{wamid}") is not None
