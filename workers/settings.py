"""Builds the arq Worker: its functions, cron jobs, queue and poll delay, with a Runtime in ctx."""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.worker import Worker

from app.queue import DEFAULT_QUEUE, redis_settings
from app.runtime import Runtime
from workers import tasks

FUNCTIONS = [tasks.heartbeat]
CRON_JOBS = [cron(tasks.heartbeat, second=set(range(0, 60, 10)), run_at_startup=True)]
FUNCTIONS += [tasks.ingest_webhook_event, tasks.fetch_media, tasks.sweep_webhook_events]
CRON_JOBS += [cron(tasks.sweep_webhook_events, second={15, 45}, run_at_startup=True)]
# Outbound: a drain job lives up to its slice (50 s); its result is never kept, so wake-ups are never refused.
FUNCTIONS += [func(tasks.drain_outbox, keep_result=0, timeout=110), tasks.send_read_receipt, tasks.sweep_outbox]
CRON_JOBS += [cron(tasks.sweep_outbox, second=set(range(5, 60, 10)), run_at_startup=True)]
# Event subscriptions: routing and deliveries (a delivery waits at most the webhook timeout).
FUNCTIONS += [tasks.route_integration_event, func(tasks.deliver_integration_event, keep_result=0, timeout=60),
              tasks.sweep_event_deliveries]
CRON_JOBS += [cron(tasks.sweep_event_deliveries, second={30})]
# Templates: hourly sync from Meta (webhooks keep statuses live; this catches any that were missed).
FUNCTIONS += [tasks.sync_templates]
CRON_JOBS += [cron(tasks.sync_templates, minute={7}, second={0}, unique=True)]
# Inbox: snoozed conversations reopen when their time comes (checked every 30 s).
FUNCTIONS += [tasks.wake_snoozed_conversations]
CRON_JOBS += [cron(tasks.wake_snoozed_conversations, second={20, 50}, run_at_startup=True)]


class InboxWorker(Worker):
    """arq's Worker, minus a poll's round trips for jobs this process is already running.

    A started job stays in arq's queue until it ends, and every poll (each ``poll_delay``, 5 ms)
    checks each such job again with a WATCH/EXISTS/ZSCORE/reset pipeline before skipping it. A
    drain job runs for up to 50 s per number with work, so with 20 busy numbers that was ~9 % of a
    sending worker's CPU (issue 5). Its own running tasks are skipped here without asking Redis.
    """

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        tasks = self.tasks
        if tasks:
            job_ids = [j for j in job_ids if (t := tasks.get(j.decode())) is None or t.done()]
        await super().start_jobs(job_ids)


def build_worker(runtime: Runtime, *, handle_signals: bool, owns_runtime: bool) -> Worker:
    """A worker bound to ``runtime``; when it owns it, it starts and stops it itself."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        if owns_runtime:
            await runtime.start()
            if runtime.settings.worker_metrics_port:
                from prometheus_client import start_http_server

                start_http_server(runtime.settings.worker_metrics_port, addr=runtime.settings.host)
        ctx["runtime"] = runtime

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if owns_runtime:
            await runtime.stop()

    return InboxWorker(
        functions=FUNCTIONS,
        cron_jobs=CRON_JOBS,
        queue_name=DEFAULT_QUEUE,
        redis_settings=redis_settings(runtime.settings.redis_url) if owns_runtime else None,
        redis_pool=None if owns_runtime else runtime.arq,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        handle_signals=handle_signals,
        poll_delay=runtime.settings.worker_poll_delay,
        max_jobs=200,  # a number with a backlog holds one slot (its drain job) while it sends
        job_timeout=120,
        keep_result=60,
        ctx={},
        log_results=False,
    )
