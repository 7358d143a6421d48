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
