"""Keeps an arq worker running: arq's worker ends when Redis goes away, and nothing restarts it.

:class:`WorkerSupervisor` runs one worker at a time on a started Runtime (it shares the
Runtime's arq pool, which reconnects by itself). When the worker ends without being asked to,
it logs why and starts a new one after a backoff (0.5 s, doubling to 30 s while Redis stays
down; back to 0.5 s once a worker has run a minute). A new worker runs the sweepers at startup,
so whatever Redis forgot is queued again. Jobs the old worker had started finish on their own.

`inbox run` supervises its in-process worker this way (app/main.py); `inbox worker` does too
(:func:`run_worker_process`), and exits 0 on SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arq.worker import Worker

from app.logging import get_logger
from app.metrics import WORKER_RESTARTS
from app.retry import backoff

log = get_logger(__name__)
_ROOT = f"{Path(__file__).resolve().parents[1]}/"

FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0
STOP_SECONDS = 25.0
"""How long a stop waits for the worker to close: a send already on its way has its answer waited for
(``send_timeout_seconds``, 15 s) so it is recorded, not sent again. Past this something hangs: it is
logged by where it waits and cancelled, so a stop always ends (under compose's stop_grace_period, 30 s)."""


class WorkerSupervisor:
    """Runs ``build()``'s workers one after another until :meth:`stop` (see the module docstring)."""

    def __init__(self, runtime: Any, *, build: Callable[[], Worker] | None = None,
                 first_backoff: float = FIRST_BACKOFF_SECONDS, max_backoff: float = MAX_BACKOFF_SECONDS,
                 stop_seconds: float = STOP_SECONDS) -> None:
        self.runtime = runtime
        self._build = build or self._build_worker
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.stop_seconds = stop_seconds
        self.worker: Worker | None = None
        self.restarts = 0
        self._stopping = False
        self._retired: list[Worker] = []  # ended workers whose jobs still run: kept referenced

    def _build_worker(self) -> Worker:
        from workers.settings import build_worker

        return build_worker(self.runtime, handle_signals=False, owns_runtime=False)

    async def run(self) -> None:
        failures = 0  # in a row, without a worker that ran a minute
        while not self._stopping:
            worker = self.worker = self._build()
            started = time.monotonic()
            try:
                await worker.async_run()
                reason = "returned"
            except asyncio.CancelledError:
                if self._stopping:
                    return
                raise
            except Exception as exc:  # noqa: BLE001 - whatever ended it, a new worker must follow
                reason = f"{type(exc).__name__}: {exc}"[:200]
            if self._stopping:
                return
            self._retire(worker)
            failures = 1 if time.monotonic() - started >= STABLE_AFTER_SECONDS else failures + 1
            delay = backoff(failures, base=self.first_backoff, cap=self.max_backoff)
            self.restarts += 1
            WORKER_RESTARTS.inc()
            log.warning("background worker stopped; starting a new one", reason=reason, restart_in_s=delay)
            await asyncio.sleep(delay)

    def _retire(self, worker: Worker) -> None:
        self._retired = [w for w in self._retired if _running(w)]
        if _running(worker):
            self._retired.append(worker)

    async def stop(self) -> None:
        """Stop picking jobs, cancel the running ones (as arq does on shutdown), close the worker;
        within ``stop_seconds``: what still runs then is logged with where it waits, and cancelled."""
        self._stopping = True
        workers = [*self._retired, *([self.worker] if self.worker is not None else [])]
        closing = asyncio.ensure_future(self._close())
        done, _ = await asyncio.wait([closing], timeout=self.stop_seconds)
        if done:
            return
        stuck = [t for w in workers for t in _running(w)]
        log.warning("background worker did not stop in time; cancelling what still runs",
                    waited_s=self.stop_seconds, still_running=[where_waiting(t) for t in stuck] or None,
                    closing=where_waiting(closing))
        for task in (*stuck, closing):
            task.cancel()
        await asyncio.wait([closing, *stuck], timeout=1.0)

    async def _close(self) -> None:
        for worker in self._retired:
            tasks = _running(worker)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.worker is not None:
            # arq's close() cancels running jobs and then gathers them, re-raising their
            # CancelledError: a job in flight at shutdown must not fail the shutdown.
            await asyncio.gather(self.worker.close(), return_exceptions=True)


def where_waiting(task: asyncio.Future[Any]) -> str:
    """A task's name and the innermost frame of our code it is suspended in (a library's if none)."""
    name = task.get_name() if isinstance(task, asyncio.Task) else "future"
    frames = task.get_stack() if isinstance(task, asyncio.Task) else []
    ours = [f for f in frames if "/site-packages/" not in f.f_code.co_filename] or frames
    if not ours:
        return f"{name}: (not suspended)"
    frame = ours[-1]
    return f"{name}: {frame.f_code.co_filename.removeprefix(_ROOT)}:{frame.f_lineno} in {frame.f_code.co_name}"


def _running(worker: Worker) -> list[asyncio.Task[Any]]:
    """A worker's tasks that have not ended: its jobs', and its drainers' (workers.settings.InboxWorker)."""
    running = getattr(worker, "running", None)
    if running is not None:
        return list(running())
    return [t for t in worker.tasks.values() if not t.done()]


def run_worker_process(settings: Any) -> int:
    """`inbox worker`: a Runtime and a supervised worker until SIGTERM / SIGINT."""
    from app.runtime import Runtime

    async def main() -> int:
        runtime = Runtime(settings)
        await runtime.start()
        if settings.worker_metrics_port:
            from prometheus_client import start_http_server

            start_http_server(settings.worker_metrics_port, addr=settings.host)
        supervisor = WorkerSupervisor(runtime)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        running = asyncio.create_task(supervisor.run())
        waiting = asyncio.create_task(stopping.wait())
        await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
        log.info("worker shutting down")
        await supervisor.stop()
        for task in (running, waiting):
            task.cancel()
        await asyncio.gather(running, waiting, return_exceptions=True)
        await runtime.stop()
        return 0

    return asyncio.run(main())
