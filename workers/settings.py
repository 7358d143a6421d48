"""Builds the arq Worker: its functions, cron jobs, queue and poll delay, with a Runtime in ctx."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry, cron, func
from arq.cron import CronJob
from arq.worker import Function, Worker

from app import correlation, tracing
from app.db import DATABASE_DOWN
from app.domains.outbox.dispatcher import Dispatcher
from app.logging import get_logger
from app.queue import DEFAULT_QUEUE, redis_settings
from app.retry import backoff
from app.runtime import Runtime
from workers import tasks
from workers.wake import IDLE_POLL_SECONDS, QueueWaker

FUNCTIONS = [tasks.heartbeat]
CRON_JOBS = [cron(tasks.heartbeat, second=set(range(0, 60, 10)), run_at_startup=True)]
FUNCTIONS += [tasks.ingest_webhook_event, tasks.fetch_media, tasks.sweep_webhook_events]
CRON_JOBS += [cron(tasks.sweep_webhook_events, second={15, 45}, run_at_startup=True)]
# Outbound: drainers are started by each worker's dispatcher (app/domains/outbox/dispatcher.py), not by jobs;
# ``drain_outbox`` stays for the jobs a web process of an older version may still enqueue during an upgrade.
FUNCTIONS += [func(tasks.drain_outbox, keep_result=0, timeout=110), tasks.send_read_receipt, tasks.sweep_outbox]
CRON_JOBS += [cron(tasks.sweep_outbox, second=set(range(5, 60, 10)), run_at_startup=True)]
# Event subscriptions: routing and deliveries (a delivery waits at most the webhook timeout).
FUNCTIONS += [tasks.route_integration_event, func(tasks.deliver_integration_event, keep_result=0, timeout=60),
              tasks.sweep_event_deliveries]
CRON_JOBS += [cron(tasks.sweep_event_deliveries, second={30})]
# Auto-assignment: after a customer's message, and when an agent comes online (app/domains/assignment/).
# (assign_waiting keeps no result: its job id is a 2-s bucket, and a kept result would refuse a later one.)
FUNCTIONS += [tasks.auto_assign_conversation, func(tasks.assign_waiting_conversations, keep_result=0)]
# ... and a gone agent's open conversations to online agents (a rule's setting): at once, and every 30 s.
FUNCTIONS += [func(tasks.reassign_offline_conversations, keep_result=0)]  # keep_result=0: see wiring.py
CRON_JOBS += [cron(tasks.reassign_offline_conversations, second={25, 55}, run_at_startup=True)]
# Templates: hourly sync from Meta (webhooks keep statuses live; this catches any that were missed).
FUNCTIONS += [tasks.sync_templates]
CRON_JOBS += [cron(tasks.sync_templates, minute={7}, second={0}, unique=True)]
# Inbox: snoozed conversations reopen when their time comes (checked every 30 s).
FUNCTIONS += [tasks.wake_snoozed_conversations]
CRON_JOBS += [cron(tasks.wake_snoozed_conversations, second={20, 50}, run_at_startup=True)]
# Contacts: merges cut short are finished, and finished ones get their late pass (every minute).
FUNCTIONS += [tasks.finish_contact_merges]
CRON_JOBS += [cron(tasks.finish_contact_merges, second={40}, run_at_startup=True)]
# Contacts: CSV imports and exports run in slices of ≤ 45 s, each queuing the next (the job timeout stays 2 min);
# the sweep gives a dead worker's import or export to another within ~90 s (its 60-s lease, then a sweep).
FUNCTIONS += [tasks.run_contact_import, tasks.run_contact_export, tasks.sweep_contact_files]
CRON_JOBS += [cron(tasks.sweep_contact_files, second={10, 40}, run_at_startup=True)]
# Contacts: files of imports and exports ended INBOX_CONTACT_FILES_KEEP_DAYS ago are deleted (hourly).
FUNCTIONS += [tasks.delete_old_contact_files]
CRON_JOBS += [cron(tasks.delete_old_contact_files, minute={23}, second={0}, unique=True)]
# Business hours: the greeting and the away message for a customer's new message (queued by a live-event listener).
FUNCTIONS += [tasks.answer_customer]
# STOP / START: the workspace's confirmation for a keyword that changed consent (queued by a live-event listener).
FUNCTIONS += [tasks.confirm_consent_keyword]
# Workflows: runs advance in jobs (a slice of steps each); the tick fires timers, scans date and segment
# triggers and wakes runs whose wait ended or whose worker died (every 10 s).
FUNCTIONS += [func(tasks.advance_workflow_run, keep_result=0), func(tasks.workflow_event, keep_result=0),
              tasks.workflow_tick]
CRON_JOBS += [cron(tasks.workflow_tick, second=set(range(3, 60, 10)), run_at_startup=True)]
# Broadcasts: slices of ≤ 45 s each queue the next; the cron starts scheduled ones and takes over a dead worker's.
FUNCTIONS += [func(tasks.send_broadcast, keep_result=0), func(tasks.note_broadcast_reply, keep_result=0),
              tasks.broadcasts_due]
CRON_JOBS += [cron(tasks.broadcasts_due, second=set(range(7, 60, 15)), run_at_startup=True)]
# Reports: the hourly rollups of the messages recomputed where messages changed (every minute; the page too).
FUNCTIONS += [tasks.refresh_reports]
CRON_JOBS += [cron(tasks.refresh_reports, second={35}, unique=True)]
FUNCTIONS += [tasks.keep_inbox_minutes]
CRON_JOBS += [cron(tasks.keep_inbox_minutes, second={32}, unique=True)]
FUNCTIONS += [tasks.purge_audit_log]
CRON_JOBS += [cron(tasks.purge_audit_log, hour={3}, minute={17}, second={0}, unique=True)]
FUNCTIONS += [tasks.sample_backlog]
CRON_JOBS += [cron(tasks.sample_backlog, minute={0, 15, 30, 45}, second={2}, unique=True)]


log = get_logger(__name__)

Task = Callable[..., Awaitable[Any]]


def outage_tolerant(task: Task) -> Task:
    """``task``, where the database being unreachable is an outage, not a bug, run under the request id that caused
    it (its ``cause`` keyword, added by app/queue.py).

    The job is tried again with backoff (arq's Retry, within its max_tries; the sweeps and crons pick
    up whatever is left after that) and the log says so in one line, not with a stack trace.
    """

    @functools.wraps(task)
    async def run(ctx: dict[str, Any], *args: Any, cause: str | None = None, trace: str | None = None,
                  **kwargs: Any) -> Any:
        try:
            # The request id of what enqueued it (app/queue.py) on every log line; a span under its trace.
            with correlation.bound(cause), tracing.span(f"job {task.__name__}", trace, job_try=ctx.get("job_try")):
                return await task(ctx, *args, **kwargs)
        except DATABASE_DOWN as exc:
            tries = ctx.get("job_try", 1)
            log.warning("database unreachable; the job is tried again", job=task.__name__, tries=tries,
                        error=type(exc).__name__)
            raise Retry(defer=backoff(tries, base=1.0)) from None

    return run


def _guarded(job: Any) -> Any:
    """A function or cron job of the list above, its coroutine made outage_tolerant (same name, options)."""
    if isinstance(job, Function | CronJob):
        return dataclasses.replace(job, coroutine=outage_tolerant(job.coroutine))
    return outage_tolerant(job)


class InboxWorker(Worker):
    """arq's Worker, minus the polls of an idle worker, plus the outbox's dispatcher.

    A poll that starts no job is followed by a wait for the queue to change (workers/wake.py), of
    at most ``idle_poll_s``: ~10 polls a second instead of ~190 while idle, and an enqueued job still
    starts at once. A poll that started jobs is followed by the next one after ``poll_delay``, as in
    arq, so a backlog drains as fast as before.
    """

    idle_poll_s = IDLE_POLL_SECONDS
    _waker: QueueWaker | None = None
    dispatcher: Dispatcher | None = None
    """Starts this process's drainers (set by build_worker, started with the worker)."""

    async def main(self) -> None:
        try:
            await super().main()
        finally:  # ended by close(), or by Redis going away (the supervisor then builds a new worker)
            if self.dispatcher is not None:
                self.dispatcher.stop_taking()  # its running drainers end on their own (or in close())
            await self._close_waker()

    def running(self) -> list[asyncio.Task[Any]]:
        """Its jobs' and drainers' tasks that have not ended."""
        drainers = self.dispatcher.drainers if self.dispatcher is not None else ()
        return [t for t in (*self.tasks.values(), *drainers) if not t.done()]

    async def _poll_iteration(self) -> None:
        if self._waker is None:  # the pool exists from here on (arq's main() makes it when it owns it)
            self._waker = QueueWaker(self.pool, self.queue_name)
            await self._waker.start()
        waker = self._waker
        waker.changed.clear()  # before the poll: an enqueue during it ends the wait below at once
        before = self._started()
        await super()._poll_iteration()
        if self._started() == before:
            await waker.wait(self.idle_poll_s)

    def _started(self) -> int:
        """Jobs this worker has started so far (arq's public counters: running, done, failed, retried)."""
        return len(self.tasks) + self.jobs_complete + self.jobs_failed + self.jobs_retried

    async def close(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()  # the drainers hand their numbers back for another worker
        await self._close_waker()
        await super().close()

    async def _close_waker(self) -> None:
        if self._waker is not None:  # kept (closed): a poll still running must not subscribe again
            await self._waker.close()


def build_worker(runtime: Runtime, *, handle_signals: bool, owns_runtime: bool) -> Worker:
    """A worker bound to ``runtime``; when it owns it, it starts and stops it itself."""

    dispatcher = Dispatcher(runtime)

    async def on_startup(ctx: dict[str, Any]) -> None:
        if owns_runtime:
            await runtime.start()
            if runtime.settings.worker_metrics_port:
                from prometheus_client import start_http_server

                start_http_server(runtime.settings.worker_metrics_port, addr=runtime.settings.host)
        ctx["runtime"] = runtime
        dispatcher.start()

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if owns_runtime:
            await runtime.stop()

    worker = InboxWorker(
        functions=[_guarded(f) for f in FUNCTIONS],
        cron_jobs=[_guarded(c) for c in CRON_JOBS],
        queue_name=DEFAULT_QUEUE,
        redis_settings=redis_settings(runtime.settings.redis_url) if owns_runtime else None,
        redis_pool=None if owns_runtime else runtime.arq,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        handle_signals=handle_signals,
        poll_delay=runtime.settings.worker_poll_delay,
        max_jobs=200,
        job_timeout=120,
        keep_result=60,
        ctx={},
        log_results=False,
    )
    worker.dispatcher = dispatcher
    return worker
