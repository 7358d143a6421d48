"""arq queues: names, the pool, and typed enqueue helpers (no string job names elsewhere)."""

from __future__ import annotations

import uuid
import weakref
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.exceptions import NoScriptError

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


# arq's enqueue_job in one round trip: WATCH / EXISTS / MULTI / PSETEX / ZADD / EXEC cost five on
# the webhook's hot path. Same keys and job format, so arq workers run these jobs unchanged.
_ENQUEUE_ONCE = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""
_enqueue_scripts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def enqueue_once(pool: ArqRedis, function: str, job_id: str, *args: Any, queue_name: str = DEFAULT_QUEUE) -> bool:
    """Enqueue ``function(*args)`` unless a job (or kept result) with ``job_id`` exists; True if enqueued."""
    script = _enqueue_scripts.get(pool)
    if script is None:
        script = _enqueue_scripts[pool] = pool.register_script(_ENQUEUE_ONCE)
    now = timestamp_ms()
    job = serialize_job(function, args, {}, None, now, serializer=pool.job_serializer)
    keys = [job_key_prefix + job_id, result_key_prefix + job_id, queue_name]
    return bool(await script(keys=keys, args=[pool.expires_extra_ms, job, now, job_id]))


# The same for many jobs in one script call: one command for a batch instead of one per job, since
# redis-py's per-command packing and parsing was most of an enqueue's CPU on the webhook path.
# KEYS[1] = queue; ARGV = expiry ms, score, job key prefix, result key prefix, then id / job pairs.
_ENQUEUE_MANY = """
local added = 0
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('EXISTS', ARGV[3] .. id, ARGV[4] .. id) == 0 then
    redis.call('PSETEX', ARGV[3] .. id, ARGV[1], ARGV[i + 1])
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    added = added + 1
  end
end
return added
"""
_enqueue_many_shas: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SPLICE = "f" * 64  # an event id's shape (64 hex characters), to find where ids go in a job


async def enqueue_ingest_many(pool: ArqRedis, event_ids: list[str]) -> int:
    """Enqueue several ingestions (job id = event id) in one round trip; returns how many were new jobs."""
    now = timestamp_ms()
    args: list[Any] = [pool.expires_extra_ms, now, job_key_prefix, result_key_prefix]
    # Event ids are SHA-256 hex digests, all 64 characters: their pickled jobs differ only in those
    # characters, so one job is serialized per batch and the others are spliced from it.
    prefix = suffix = b""
    if pool.job_serializer is None:
        prefix, found, suffix = serialize_job(INGEST_JOB, (_SPLICE,), {}, None, now).partition(_SPLICE.encode())
        if not found:
            prefix = suffix = b""
    for event_id in event_ids:
        if prefix and len(event_id) == len(_SPLICE) and event_id.isascii():
            job = prefix + event_id.encode() + suffix
        else:
            job = serialize_job(INGEST_JOB, (event_id,), {}, None, now, serializer=pool.job_serializer)
        args += (event_id, job)
    for attempt in range(2):
        sha = _enqueue_many_shas.get(pool)
        if sha is None or attempt:  # loaded once, not SCRIPT EXISTS per call; again after a Redis restart
            sha = _enqueue_many_shas[pool] = await pool.script_load(_ENQUEUE_MANY)
        try:
            return int(await pool.evalsha(sha, 1, DEFAULT_QUEUE, *args))
        except NoScriptError:
            continue
    return 0


async def enqueue_ingest(pool: ArqRedis, event_id: str) -> bool:
    """Ingest one stored webhook event. Job id = event id, so redeliveries share one job."""
    return await enqueue_once(pool, INGEST_JOB, event_id, event_id)


async def enqueue_fetch_media(pool: ArqRedis, message_id: str, *, generation: int = 0) -> bool:
    """Download a message's media. ``generation`` > 0 for a fresh job after an earlier one gave up."""
    job_id = f"media:{message_id}:{generation}"  # prefixed: outbound send jobs use the bare message id
    return await pool.enqueue_job(FETCH_MEDIA_JOB, message_id, _job_id=job_id) is not None


# --- outbound: one drain job per number with work, read receipts, the outbox sweeper ----------
DRAIN_JOB = "drain_outbox"
MARK_READ_JOB = "send_read_receipt"
OUTBOX_SWEEP_JOB = "sweep_outbox"


async def enqueue_drain(pool: ArqRedis, account_id: str) -> bool:
    """Start a drainer for a number. Exclusivity comes from the outbox lease (app/domains/outbox/lanes.py), so
    every activation gets a fresh job id: a finishing job can never swallow the next wake-up."""
    job_id = f"drain:{account_id}:{uuid.uuid4().hex[:12]}"
    return await pool.enqueue_job(DRAIN_JOB, account_id, _job_id=job_id) is not None


async def enqueue_mark_read(pool: ArqRedis, account_id: str, wamid: str) -> bool:
    """Send one read receipt; job id = the wamid, so it is sent once however often it is asked."""
    return await pool.enqueue_job(MARK_READ_JOB, account_id, wamid, _job_id=f"read:{wamid}") is not None


# --- integrations: event subscriptions (issue 8) ----------------------------------------------
ROUTE_EVENT_JOB = "route_integration_event"
DELIVER_EVENT_JOB = "deliver_integration_event"
SWEEP_EVENT_DELIVERIES_JOB = "sweep_event_deliveries"


async def enqueue_route_event(pool: ArqRedis, workspace_id: str, live_event: str, ids: dict[str, str]) -> bool:
    """Decide which integration events one live event means (subscriptions/events.py)."""
    return await pool.enqueue_job(ROUTE_EVENT_JOB, workspace_id, live_event, ids) is not None


async def enqueue_event_delivery(pool: ArqRedis, delivery_id: str, attempt: int, *, defer: float = 0,
                                 manual: bool = False) -> bool:
    """One attempt of one delivery. Job id = (delivery, attempt number): a retry or the sweeper never
    doubles an attempt; a manual redelivery gets its own id so a retry waiting hours can't swallow it."""
    job_id = f"evt-delivery:{delivery_id}:{attempt}"
    if manual:
        job_id += f":manual:{uuid.uuid4().hex[:8]}"
    job = await pool.enqueue_job(DELIVER_EVENT_JOB, delivery_id, manual, _job_id=job_id,
                                 _defer_by=max(0.0, defer) or None)
    return job is not None
