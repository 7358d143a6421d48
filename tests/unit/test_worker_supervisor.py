"""WorkerSupervisor: a worker that ends is replaced (with backoff), a stop ends everything.

The arq workers here are stand-ins with arq's surface (async_run, close, tasks); the real path
(Redis restarted under `inbox run` and `inbox worker`) is in tests/integration/test_outbound_faults.py.
"""

from __future__ import annotations

import asyncio

from workers.supervisor import WorkerSupervisor


class StandIn:
    """async_run() fails like arq's does when Redis is gone, or runs until close()."""

    def __init__(self, fails: bool, job: asyncio.Task | None = None) -> None:
        self.fails = fails
        self.tasks = {"job": job} if job else {}
        self.closed = asyncio.Event()

    async def async_run(self) -> None:
        if self.fails:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        await self.closed.wait()

    async def close(self) -> None:
        self.closed.set()


async def test_a_worker_that_ends_is_replaced_until_stopped():
    lingering = asyncio.create_task(asyncio.sleep(3600))  # a job the first worker had started
    built = [StandIn(True, lingering), StandIn(True), StandIn(False)]
    supervisor = WorkerSupervisor(None, build=iter(built).__next__, first_backoff=0.001)
    running = asyncio.create_task(supervisor.run())
    while supervisor.worker is not built[2]:
        await asyncio.sleep(0.001)
    assert supervisor.restarts == 2 and not lingering.done()  # the old worker's job was left to finish
    await supervisor.stop()
    await asyncio.wait_for(running, 1)
    assert built[2].closed.is_set() and lingering.cancelled()


class Hangs(StandIn):
    """A worker whose close() waits on something that never ends (a drainer stuck on a dead socket)."""

    def __init__(self, stuck: asyncio.Task) -> None:
        super().__init__(False, stuck)
        self.stuck = stuck

    async def close(self) -> None:
        self.closed.set()
        await asyncio.shield(self.stuck)  # not even the stop's cancellation reaches it through close()


async def never_ends() -> None:
    await asyncio.Event().wait()


async def test_a_stop_ends_in_bounded_time_and_says_where_the_worker_hung():
    from structlog.testing import capture_logs

    stuck = asyncio.create_task(never_ends(), name="drain:abc")
    worker = Hangs(stuck)
    supervisor = WorkerSupervisor(None, build=lambda: worker, stop_seconds=0.2)
    running = asyncio.create_task(supervisor.run())
    while supervisor.worker is None:
        await asyncio.sleep(0.001)
    with capture_logs() as logs:
        await asyncio.wait_for(supervisor.stop(), 2)
    await asyncio.wait_for(running, 1)
    assert stuck.cancelled()  # cancelled, not left running after the process thinks it stopped
    [warning] = [e for e in logs if e["event"].startswith("background worker did not stop in time")]
    assert any(line.startswith("drain:abc: tests/unit/test_worker_supervisor.py:") and "in never_ends" in line
               for line in warning["still_running"])
