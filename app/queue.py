"""arq queues: names, the pool, and typed enqueue helpers (no string job names elsewhere)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job

from app import correlation, tracing

# Agent replies and inbound work must not wait behind bulk sends, so they get their own queue.
DEFAULT_QUEUE = "inbox:queue"

HEARTBEAT_KEY = "inbox:worker:heartbeat"
HEARTBEAT_TTL_SECONDS = 30


async def _enqueue(pool: ArqRedis, function: str, *args: Any, **options: Any) -> Job | None:
    """arq's enqueue_job, with the request id of what asked for it as the job's ``cause`` keyword, which the worker
    binds again around the job (workers/settings.py), so its log lines carry it (app/correlation.py)."""
    cause = correlation.current()
    if cause is not None:
        options["cause"] = cause
    traced = tracing.current()  # and the trace it is part of, when tracing is on (app/tracing.py)
    if traced is not None:
        options["trace"] = traced
    return await pool.enqueue_job(function, *args, **options)


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
    """Ingest one stored webhook event. Job id = event id, so redeliveries share one job.

    arq's own enqueue (a few round trips): webhooks are applied by the endpoint itself, so this is
    only for bodies kept for a worker (too big to apply while Meta waits, or failed), not per message."""
    return await _enqueue(pool, INGEST_JOB, event_id, _job_id=event_id) is not None


async def enqueue_fetch_media(pool: ArqRedis, message_id: str, *, generation: int = 0) -> bool:
    """Download a message's media. ``generation`` > 0 for a fresh job after an earlier one gave up."""
    job_id = f"media:{message_id}:{generation}"  # prefixed: outbound send jobs use the bare message id
    return await _enqueue(pool, FETCH_MEDIA_JOB, message_id, _job_id=job_id) is not None


# --- outbound: read receipts, the outbox sweeper (drainers are started by app/domains/outbox/dispatcher.py,
# not by jobs; DRAIN_JOB is what web processes of older versions enqueue) --------------------------------
DRAIN_JOB = "drain_outbox"
MARK_READ_JOB = "send_read_receipt"
OUTBOX_SWEEP_JOB = "sweep_outbox"


async def enqueue_mark_read(pool: ArqRedis, account_id: str, wamid: str) -> bool:
    """Send one read receipt; job id = the wamid, so it is sent once however often it is asked."""
    return await _enqueue(pool, MARK_READ_JOB, account_id, wamid, _job_id=f"read:{wamid}") is not None


# --- integrations: event subscriptions (issue 8) ----------------------------------------------
ROUTE_EVENT_JOB = "route_integration_event"
DELIVER_EVENT_JOB = "deliver_integration_event"
SWEEP_EVENT_DELIVERIES_JOB = "sweep_event_deliveries"


async def enqueue_route_event(pool: ArqRedis, workspace_id: str, live_event: str, ids: dict[str, str]) -> bool:
    """Decide which integration events one live event means (subscriptions/events.py)."""
    return await _enqueue(pool, ROUTE_EVENT_JOB, workspace_id, live_event, ids) is not None


async def enqueue_event_delivery(pool: ArqRedis, delivery_id: str, attempt: int, *, defer: float = 0,
                                 manual: bool = False) -> bool:
    """One attempt of one delivery. Job id = (delivery, attempt number): a retry or the sweeper never
    doubles an attempt; a manual redelivery gets its own id so a retry waiting hours can't swallow it."""
    job_id = f"evt-delivery:{delivery_id}:{attempt}"
    if manual:
        job_id += f":manual:{uuid.uuid4().hex[:8]}"
    job = await _enqueue(pool, DELIVER_EVENT_JOB, delivery_id, manual, _job_id=job_id,
                                 _defer_by=max(0.0, defer) or None)
    return job is not None


# --- contacts: CSV imports and exports (issue 16), in slices (app/domains/contact_files/importing.py) ----------
CONTACT_IMPORT_JOB = "run_contact_import"
CONTACT_EXPORT_JOB = "run_contact_export"
SWEEP_CONTACT_FILES_JOB = "sweep_contact_files"


async def enqueue_contact_import(pool: ArqRedis, import_id: str, generation: int) -> bool:
    """One slice of an import. Job id = (import, slice number): the sweeper's new slice is never swallowed
    by a job of a dead worker, and a slice is queued once however often it is asked."""
    job = await _enqueue(pool, CONTACT_IMPORT_JOB, import_id, generation,
                                 _job_id=f"contact-import:{import_id}:{generation}")
    return job is not None


async def enqueue_contact_export(pool: ArqRedis, export_id: str, generation: int) -> bool:
    """One slice of a large export (same ids as imports)."""
    job = await _enqueue(pool, CONTACT_EXPORT_JOB, export_id, generation,
                                 _job_id=f"contact-export:{export_id}:{generation}")
    return job is not None


# --- auto-assignment (app/domains/assignment/) --------------------------------------------------
AUTO_ASSIGN_JOB = "auto_assign_conversation"
ASSIGN_WAITING_JOB = "assign_waiting_conversations"


async def enqueue_auto_assign(pool: ArqRedis, workspace_id: str, conversation_id: str, message_id: str) -> bool:
    """Maybe give a conversation to an agent after a new message in it. Job id = the message: a message
    published twice (ingestion re-run) is looked at once; the job itself only assigns the unassigned."""
    job = await _enqueue(pool, AUTO_ASSIGN_JOB, workspace_id, conversation_id, message_id,
                                 _job_id=f"auto-assign:{message_id}")
    return job is not None


REASSIGN_OFFLINE_JOB = "reassign_offline_conversations"
"""workers/tasks.py: a gone agent's conversations to online agents (at once, and by cron every 30 s)."""


async def enqueue_reassign_offline(pool: ArqRedis, workspace_id: str) -> bool:
    """One reassignment pass over a workspace (an agent chose away or offline, or someone came online). Job id
    = the workspace: changes made while a pass is queued share it; the task keeps no result (workers/settings.py),
    so the next change after it ran gets its own pass at once (a change during a pass waits for the cron)."""
    job = await _enqueue(pool, REASSIGN_OFFLINE_JOB, workspace_id, _job_id=f"reassign-offline:{workspace_id}")
    return job is not None


async def enqueue_assign_waiting(pool: ArqRedis, workspace_id: str, *, bucket_seconds: float = 2.0) -> bool:
    """Give out a workspace's waiting conversations (an agent came online). Job id = workspace and a
    short time bucket: agents coming online together share one job, and a later one gets its own."""
    bucket = int(time.time() / bucket_seconds)
    job = await _enqueue(pool, ASSIGN_WAITING_JOB, workspace_id, _job_id=f"assign-waiting:{workspace_id}:{bucket}")
    return job is not None


# --- business hours: the greeting and the away message (app/domains/business_hours/services.py) ----------
AUTO_REPLY_JOB = "answer_customer"


async def enqueue_auto_reply(pool: ArqRedis, workspace_id: str, message_id: str) -> bool:
    """Greet or answer (closed) one new message. Job id = the message: asked twice, queued once (the
    replies' idempotency keys make a second run send nothing anyway)."""
    job = await _enqueue(pool, AUTO_REPLY_JOB, workspace_id, message_id, _job_id=f"auto-reply:{message_id}")
    return job is not None


# --- STOP / START confirmations (app/domains/contacts/keywords.py) ----------------------------------------
CONSENT_CONFIRMATION_JOB = "confirm_consent_keyword"


async def enqueue_consent_confirmation(pool: ArqRedis, workspace_id: str, message_id: str) -> bool:
    """Confirm a STOP / START keyword if this message is one that changed consent. Job id = the message
    (the send's idempotency key makes a second run send nothing anyway)."""
    job = await _enqueue(pool, CONSENT_CONFIRMATION_JOB, workspace_id, message_id,
                                 _job_id=f"consent-confirm:{message_id}")
    return job is not None


# --- workflows (app/domains/workflows/) -------------------------------------------------------------
WORKFLOW_RUN_JOB = "advance_workflow_run"
WORKFLOW_EVENT_JOB = "workflow_event"


async def enqueue_workflow_run(pool: ArqRedis, run_id: str, marker: str, at: datetime | None = None) -> bool:
    """Advance one run (``at``: not before then, the end of a wait). Job id = run and ``marker`` (its visit
    count, a wake-up, a reply): asked twice for the same moment, queued once; the run's lease keeps two jobs
    of different moments from both advancing it. A deferred job Redis forgets is queued by the tick."""
    job = await _enqueue(pool, WORKFLOW_RUN_JOB, run_id, _job_id=f"wf-run:{run_id}:{marker}", _defer_until=at)
    return job is not None


async def enqueue_workflow_event(pool: ArqRedis, workspace_id: str, kind: str, ids: dict[str, str]) -> bool:
    """Start the runs one event triggers. Job id = the event (its message, conversation or contact change)."""
    ident = ids.get("message_id") or ids.get("conversation_id") or ids.get("contact_id") or uuid.uuid4().hex
    if kind == "contact":  # each change of a contact is its own event
        ident = f"{ident}:{uuid.uuid4().hex}"
    job = await _enqueue(pool, WORKFLOW_EVENT_JOB, workspace_id, kind, ids, _job_id=f"wf-event:{kind}:{ident}")
    return job is not None


# --- broadcasts (app/domains/broadcasts/) -------------------------------------------------------------
BROADCAST_SLICE_JOB = "send_broadcast"
BROADCAST_REPLY_JOB = "note_broadcast_reply"


async def enqueue_broadcast_slice(pool: ArqRedis, broadcast_id: str, generation: int, *, defer: float = 0.0) -> bool:
    """The next slice of a broadcast. Job id = broadcast and generation (each slice's claim moves it on), so
    a slice is queued once however many ask; the broadcast's lease keeps two from sending at once."""
    job = await _enqueue(pool, BROADCAST_SLICE_JOB, broadcast_id, _job_id=f"broadcast:{broadcast_id}:{generation}",
                                 _defer_by=defer or None)
    return job is not None


async def enqueue_broadcast_reply(pool: ArqRedis, workspace_id: str, message_id: str) -> bool:
    job = await _enqueue(pool, BROADCAST_REPLY_JOB, workspace_id, message_id, _job_id=f"broadcast-reply:{message_id}")
    return job is not None
