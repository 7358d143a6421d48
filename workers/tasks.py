"""Thin arq tasks: take the Runtime from ctx, call one service method."""

from __future__ import annotations

import time
from typing import Any

from app.queue import HEARTBEAT_KEY, HEARTBEAT_TTL_SECONDS
from app.retry import backoff
from app.runtime import Runtime


def runtime_of(ctx: dict[str, Any]) -> Runtime:
    """The typed Runtime stored in arq's ctx by on_startup."""
    return ctx["runtime"]


async def heartbeat(ctx: dict[str, Any]) -> None:
    """Proves to /health/ready that a worker is alive and taking jobs (and keeps its own /metrics' gauges fresh)."""
    runtime = runtime_of(ctx)
    await runtime.redis.set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=HEARTBEAT_TTL_SECONDS)
    if runtime.settings.worker_metrics_port:  # this worker's /metrics serves the same gauges as the web's
        from app.metrics import refresh_read_at_scrape

        await refresh_read_at_scrape(runtime)


# --- inbound: webhook ingestion, its sweeper, media downloads ------------------------------------

async def ingest_webhook_event(ctx: dict[str, Any], event_id: str) -> str:
    """Apply one stored webhook event; on failure keep the error on the event and retry with backoff."""
    from arq import Retry

    from app.domains.webhooks.ingest import record_ingest_failure

    ingestor = runtime_of(ctx).ingestor
    try:
        return (await ingestor.ingest(event_id)).outcome
    except Exception as exc:
        await record_ingest_failure(event_id, exc)
        tries = ctx.get("job_try", 1)
        if tries >= 5:  # arq's max_tries: from here on the sweeper takes over (up to MAX_INGEST_ATTEMPTS)
            raise
        raise Retry(defer=backoff(tries, base=2.0)) from exc


async def sweep_webhook_events(ctx: dict[str, Any]) -> int:
    """Cron: re-enqueue stored webhook events that were never ingested (Redis was down, a worker died),
    and prune the raw bodies of long-ingested ones."""
    from app.domains.webhooks.services import prune_ingested_events, sweep_stale_events

    await prune_ingested_events()
    return await sweep_stale_events(runtime_of(ctx).arq)


async def fetch_media(ctx: dict[str, Any], message_id: str) -> str:
    """Download a message's media from Meta into the media store; transient failures retry with backoff."""
    from arq import Retry

    from app.domains.media.services import MediaFetcher, RetryLater

    runtime = runtime_of(ctx)
    try:
        return (await MediaFetcher(runtime.accounts, runtime.live).fetch(message_id)).outcome
    except RetryLater as later:
        raise Retry(defer=later.defer) from None


# --- outbound: read receipts, the outbox sweeper (drainers: app/domains/outbox/dispatcher.py) --------------------------

async def drain_outbox(ctx: dict[str, Any], account_id: str) -> str:
    """A drain job enqueued by a web process of an older version (during an upgrade): drainers are now
    started by each worker's dispatcher (app/domains/outbox/dispatcher.py)."""
    from app.domains.outbox.drainer import drain

    return await drain(runtime_of(ctx), account_id)


async def send_read_receipt(ctx: dict[str, Any], account_id: str, wamid: str) -> bool:
    """Mark an inbound message read on WhatsApp (blue ticks); transient errors retry with backoff."""
    from arq import Retry

    from app.domains.outbox.sender import OutboxSender
    from app.whatsapp.errors import GraphError

    try:
        return await OutboxSender.of(runtime_of(ctx)).send_read_receipt(account_id, wamid)
    except GraphError:
        tries = ctx.get("job_try", 1)
        if tries >= 5:
            return False
        raise Retry(defer=backoff(tries, base=2.0)) from None


async def sweep_outbox(ctx: dict[str, Any]) -> str:
    """Cron: queue again what a dead worker or a Redis restart left behind (see app/domains/outbox/sweeper.py)."""
    from app.domains.messages.status import apply_waiting_statuses
    from app.domains.outbox.sweeper import sweep_outbox as sweep

    runtime = runtime_of(ctx)
    report = await sweep(runtime.outbox.queue)
    # Statuses that beat their send's answer and were not applied by the process that received them.
    late = await apply_waiting_statuses()
    for message, _ in late:
        await runtime.ingestor.messages.status_changed(message.workspace_id, message.id, message.conversation_id,
                                                       message.status.value)
    return f"rebuilt={report.rebuilt} woken={report.woken} requeued={report.requeued} late_statuses={len(late)}"


# --- integrations: event subscriptions (issue 8) -------------------------------------------------

async def route_integration_event(ctx: dict[str, Any], workspace_id: str, live_event: str,
                                  ids: dict[str, str]) -> int:
    """Turn one live event into the integration events it means (and queue their deliveries)."""
    return await runtime_of(ctx).integrations.route(workspace_id, live_event, ids)


async def deliver_integration_event(ctx: dict[str, Any], delivery_id: str, manual: bool = False) -> str:
    """One signed POST of one event to one endpoint; schedules its own retry when it fails."""
    return await runtime_of(ctx).deliverer.attempt(delivery_id, manual=manual)


async def sweep_event_deliveries(ctx: dict[str, Any]) -> int:
    """Cron: queue again event deliveries whose job was lost."""
    return await runtime_of(ctx).deliverer.sweep()


# --- auto-assignment (app/domains/assignment/) --------------------------------------------------

async def auto_assign_conversation(ctx: dict[str, Any], workspace_id: str, conversation_id: str,
                                   message_id: str) -> str:
    """After a new message: give its conversation to an agent when a rule says so and it is unassigned."""
    return await runtime_of(ctx).auto_assigner.after_message(workspace_id, conversation_id, message_id)


async def assign_waiting_conversations(ctx: dict[str, Any], workspace_id: str) -> int:
    """An agent came online: give out the conversations that found nobody."""
    return await runtime_of(ctx).auto_assigner.assign_waiting(workspace_id)


async def reassign_offline_conversations(ctx: dict[str, Any], workspace_id: str | None = None) -> int:
    """A gone agent's open conversations to online agents, where a rule says so: one workspace (an agent chose
    away or offline), or, by cron, every workspace with such a rule (catches presence lapsed by inactivity)."""
    assigner = runtime_of(ctx).auto_assigner
    return await (assigner.reassign_offline(workspace_id) if workspace_id else assigner.reassign_offline_everywhere())


# --- templates: the periodic sync from Meta (issue 7) ----------------------------------------------

async def sync_templates(ctx: dict[str, Any]) -> dict[str, int]:
    """Every workspace's templates from Meta, all pages: catches status webhooks that never arrived."""
    return await runtime_of(ctx).templates.sync_all()


async def finish_contact_merges(ctx: dict[str, Any]) -> int:
    """Contact merges cut short (a crash, a deploy) are finished; finished ones get their late pass."""
    from app.domains.contacts.merge import ContactMerger

    runtime = runtime_of(ctx)
    return await ContactMerger(runtime.live, runtime.integrations).sweep()


async def wake_snoozed_conversations(ctx: dict[str, Any]) -> int:
    """Snoozed conversations whose time came are open again (with a system event, pushed live)."""
    from app.domains.conversations.actions import ConversationActions

    runtime = runtime_of(ctx)
    return await ConversationActions(runtime.live).wake_snoozed()


# --- contacts: CSV imports and exports (issue 16) -------------------------------------------------

def _continue_import(ctx: dict[str, Any]) -> Any:
    from app.queue import enqueue_contact_import

    pool = runtime_of(ctx).arq
    return lambda import_id, generation: enqueue_contact_import(pool, import_id, generation)


def _continue_export(ctx: dict[str, Any]) -> Any:
    from app.queue import enqueue_contact_export

    pool = runtime_of(ctx).arq
    return lambda export_id, generation: enqueue_contact_export(pool, export_id, generation)


async def run_contact_import(ctx: dict[str, Any], import_id: str, generation: int) -> str:
    """One slice (≤ 45 s) of a CSV import from its checkpoint; queues the next slice itself."""
    from app.domains.contact_files.importing import ContactImporter

    return await ContactImporter().run(import_id, generation, _continue_import(ctx))


async def run_contact_export(ctx: dict[str, Any], export_id: str, generation: int) -> str:
    """One slice (≤ 45 s) of a large CSV export: one more part of the file; queues the next slice itself."""
    from app.domains.contact_files.export_jobs import ContactExports

    return await ContactExports().run(export_id, generation, _continue_export(ctx))


async def delete_old_contact_files(ctx: dict[str, Any]) -> str:
    """Cron: uploads, refusals reports and exports past INBOX_CONTACT_FILES_KEEP_DAYS are deleted."""
    from app.domains.contact_files.retention import delete_old_files

    imports, exports = await delete_old_files(runtime_of(ctx).settings.contact_files_keep_days)
    return f"imports={imports} exports={exports}"


async def sweep_contact_files(ctx: dict[str, Any]) -> str:
    """Cron: imports and exports a dead worker left (their lease lapsed), or whose job Redis lost, go on."""
    from app.domains.contact_files.export_jobs import ContactExports
    from app.domains.contact_files.importing import ContactImporter

    imports = await ContactImporter().sweep(_continue_import(ctx))
    exports = await ContactExports().sweep(_continue_export(ctx))
    return f"imports={imports} exports={exports}"


# --- business hours: the greeting and the away message ---------------------------------------------------

async def answer_customer(ctx: dict[str, Any], workspace_id: str, message_id: str) -> str:
    """Greet a new conversation and / or send the away message for one customer message (at most once each)."""
    from arq import Retry

    from app.domains.business_hours.services import NotYet

    try:
        return await runtime_of(ctx).business_hours.answer_inbound(workspace_id, message_id)
    except NotYet as exc:  # the ingestion is still recording the conversation's window
        tries = ctx.get("job_try", 1)
        if tries >= 5:
            return "not answered: the conversation's window was never recorded"
        raise Retry(defer=backoff(tries, base=0.2)) from exc


# --- STOP / START: the confirmation sent back -------------------------------------------------------------

async def confirm_consent_keyword(ctx: dict[str, Any], workspace_id: str, message_id: str) -> str:
    """Send the workspace's confirmation for a keyword message that changed consent (at most once)."""
    from arq import Retry

    from app.domains.contacts.keywords import NotYet

    runtime = runtime_of(ctx)
    try:
        return await runtime.consent_keywords.confirm(runtime.outbox, workspace_id, message_id)
    except NotYet as exc:  # the ingestion is still recording the consent change or the window
        tries = ctx.get("job_try", 1)
        if tries >= 5:
            return "not confirmed: the consent change was never recorded"
        raise Retry(defer=backoff(tries, base=0.2)) from exc


# --- workflows (app/domains/workflows/) ---------------------------------------------------------

async def advance_workflow_run(ctx: dict[str, Any], run_id: str) -> str:
    """Do a run's steps until it waits or ends."""
    return await runtime_of(ctx).workflows.engine.advance(run_id)


async def workflow_event(ctx: dict[str, Any], workspace_id: str, kind: str, ids: dict[str, str]) -> str:
    """Hand a customer's message to the run that waits for it, or start the runs an event triggers."""
    from arq import Retry

    from app.domains.workflows.triggers import NotYet

    try:
        return await runtime_of(ctx).workflows.triggers.handle(workspace_id, kind, ids)
    except NotYet as exc:  # the ingestion is still recording the conversation's window
        tries = ctx.get("job_try", 1)
        if tries >= 5:
            return "the conversation's window was never recorded"
        raise Retry(defer=backoff(tries, base=0.2)) from exc


async def workflow_tick(ctx: dict[str, Any]) -> dict[str, int]:
    """Fire due "no reply" timers, scan date and segment triggers, queue the runs whose time has come."""
    return await runtime_of(ctx).workflows.triggers.tick()


# --- broadcasts (app/domains/broadcasts/) -------------------------------------------------------

async def send_broadcast(ctx: dict[str, Any], broadcast_id: str) -> str:
    """One slice of a broadcast: recipients handed to the outbox at the number's pace."""
    return await runtime_of(ctx).broadcasts.sender.run_slice(broadcast_id)


async def note_broadcast_reply(ctx: dict[str, Any], workspace_id: str, message_id: str) -> bool:
    """A customer's message: their recipient of a recent broadcast is marked replied."""
    from app.db import parse_object_id
    from app.domains.messages.models import Message

    message = await Message.find_one({"_id": parse_object_id(message_id), "workspace_id": parse_object_id(workspace_id)})
    if message is None or message.direction != "inbound":
        return False
    return await runtime_of(ctx).broadcasts.note_reply(message.workspace_id, message.contact_id, message.timestamp)


async def broadcasts_due(ctx: dict[str, Any]) -> int:
    """Scheduled broadcasts whose time came, and sending ones no worker holds."""
    return await runtime_of(ctx).broadcasts.due()


async def keep_inbox_minutes(ctx: dict[str, Any]) -> int:
    """The presence heartbeats' minutes kept for the reports' time in the inbox (every minute)."""
    return await runtime_of(ctx).presence.keep_minutes()


async def refresh_reports(ctx: dict[str, Any]) -> int:
    """The reports' hourly rollups brought up to date with the messages (every minute)."""
    from app.domains.reports import rollups

    return await rollups.refresh_all(runtime_of(ctx).business_hours.zone)


async def sample_backlog(ctx: dict[str, Any]) -> int:
    """The reports' open backlog: every workspace's open and pending conversations (every quarter hour)."""
    from app.domains.reports.backlog import sample_all

    return await sample_all()


async def purge_audit_log(ctx: dict[str, Any]) -> int:
    """Audit log entries older than INBOX_AUDIT_RETENTION_DAYS deleted (daily)."""
    from app.domains.audit.services import purge

    return await purge(runtime_of(ctx).settings.audit_retention_days)
