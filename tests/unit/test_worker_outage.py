"""A job that finds the database unreachable is tried again with backoff and says so in one log line;
every job the worker runs is guarded that way, under its own name and options."""

from __future__ import annotations

import pytest
from arq import Retry
from arq.cron import CronJob
from arq.worker import Function
from pymongo.errors import AutoReconnect, DuplicateKeyError, ServerSelectionTimeoutError
from structlog.testing import capture_logs

from workers import settings, tasks
from workers.settings import outage_tolerant


async def test_an_unreachable_database_retries_the_job_with_growing_delays():
    async def sweep(ctx):
        raise AutoReconnect("127.0.0.1:27017: [Errno 104] Connection reset by peer")

    guarded = outage_tolerant(sweep)
    delays = []
    with capture_logs() as logged:
        for tries in (1, 2, 3):
            with pytest.raises(Retry) as retry:
                await guarded({"job_try": tries})
            delays.append(retry.value.defer_score)
            assert retry.value.__cause__ is None and retry.value.__suppress_context__  # no chained stack trace
    assert delays[0] < delays[1] < delays[2]
    assert [(e["event"], e["log_level"], e["job"], e["tries"]) for e in logged] == [
        ("database unreachable; the job is tried again", "warning", "sweep", n) for n in (1, 2, 3)]
    assert not any("exc_info" in e or "exception" in e for e in logged)  # one line each, no stack trace


async def test_other_failures_are_left_to_arq():
    async def ingest(ctx, event_id):
        raise DuplicateKeyError("E11000")

    with pytest.raises(DuplicateKeyError):
        await outage_tolerant(ingest)({"job_try": 1}, "e1")

    async def fine(ctx, a, *, b):
        return a + b

    assert await outage_tolerant(fine)({}, 1, b=2) == 3


async def test_every_job_of_the_worker_is_guarded_under_its_own_name_and_options():
    class Settings:
        redis_url, worker_poll_delay = "redis://127.0.0.1:1/0", 0.5

    class Runtime:  # a runtime is only read when a job runs
        settings = Settings()

    worker = settings.build_worker(Runtime(), handle_signals=False, owns_runtime=True)
    options = {f.name: f for f in settings.FUNCTIONS if isinstance(f, Function)}
    names = {f.__qualname__ for f in settings.FUNCTIONS if not isinstance(f, Function)} | set(options)
    assert names | {c.name for c in settings.CRON_JOBS} == set(worker.functions)
    guard = outage_tolerant(tasks.heartbeat).__code__
    for name, job in worker.functions.items():
        assert job.coroutine.__code__ is guard and job.coroutine.__wrapped__.__module__ == "workers.tasks", name
        if name in options:
            assert (job.timeout_s, job.keep_result_s) == (options[name].timeout_s, options[name].keep_result_s)
    assert all(isinstance(c, CronJob) for c in worker.cron_jobs)
