"""An idle worker waits for its queue to change instead of polling Redis every 5 ms (workers/wake.py),
and an enqueued job still starts at once; where Redis refuses CONFIG, or the subscription is lost,
the worker polls every poll_delay as before and keeps running jobs.

Real workers (build_worker, under the WorkerSupervisor `inbox worker` runs), each on a redis-server
started by the test (Redis counts commands server-wide: a worker another test left running must not
count there). Cron jobs are left out of the workers counted here: they run
every 5 s whatever the queue does, and would make a 1-s count depend on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import redis.asyncio as aredis

from app.embedded_redis import EmbeddedRedis
from app.queue import DEFAULT_QUEUE
from app.runtime import Runtime
from workers.settings import build_worker
from workers.supervisor import WorkerSupervisor

IDLE_CALLS_PER_SECOND = 20
START_WITHIN_MS = 50
QUEUE_CHANNEL = f"__keyspace@0__:{DEFAULT_QUEUE}"  # the tests' Redis URLs name db 0


class RedisWith(EmbeddedRedis):
    """Our embedded redis-server (it sets the keyspace flags itself), with other ``options`` after its own."""

    def __init__(self, directory, *options: str) -> None:
        super().__init__(directory, persist=False)
        self.options = list(options)

    def command(self) -> list[str]:
        return [*super().command(), *self.options]


@contextlib.contextmanager
def own_redis(settings, directory, *options: str):
    """``settings`` on a redis-server of this test's own."""
    with RedisWith(directory, *options) as server:
        yield settings.model_copy(update={"redis_url": server.url})


@contextlib.asynccontextmanager
async def running_worker(settings):
    runtime = Runtime(settings)
    await runtime.start()

    def build():
        worker = build_worker(runtime, handle_signals=False, owns_runtime=False)
        worker.cron_jobs = []
        return worker

    supervisor = WorkerSupervisor(runtime, build=build)
    running = asyncio.create_task(supervisor.run())
    try:
        while supervisor.worker is None:
            await asyncio.sleep(0.01)
        yield runtime, supervisor
    finally:
        await supervisor.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await runtime.stop()


async def commands_per_second(client: aredis.Redis, seconds: float) -> dict[str, float]:
    """What Redis ran in ``seconds``, per command and second (INFO commandstats; INFO itself left out)."""

    async def calls() -> dict[str, int]:
        stats = await client.info("commandstats")
        return {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items() if name != "cmdstat_info"}

    before = await calls()
    await asyncio.sleep(seconds)
    after = await calls()
    return {name: (n - before.get(name, 0)) / seconds for name, n in after.items() if n != before.get(name, 0)}


async def start_delays_ms(runtime: Runtime, samples: int = 5) -> list[float]:
    """For each of ``samples`` heartbeat jobs enqueued into an idle worker: enqueue -> start, in ms
    (arq's own timestamps, in the job's result)."""
    delays = []
    for i in range(samples):
        await asyncio.sleep(0.13 + 0.02 * i)  # well into an idle wait, at a different point each time
        job = await runtime.arq.enqueue_job("heartbeat")
        await job.result(timeout=5, poll_delay=0.01)
        info = await job.result_info()
        delays.append((info.start_time - info.enqueue_time).total_seconds() * 1000)
    return delays


async def until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def subscribers(client: aredis.Redis) -> int:
    """Subscribers to the queue's keyspace channel."""
    [(_, count)] = await client.pubsub_numsub(QUEUE_CHANNEL)
    return count


async def test_an_idle_worker_waits_for_its_queue_and_an_enqueued_job_starts_at_once(settings, tmp_path):
    # A Redis that publishes other events but not these: the worker adds its flags, keeping the others.
    with own_redis(settings, tmp_path / "redis", "--notify-keyspace-events", "Ex") as settings:
        await idle_worker_waits(settings)


async def idle_worker_waits(settings):
    client = aredis.Redis.from_url(settings.redis_url)
    async with running_worker(settings) as (runtime, supervisor):
        await asyncio.sleep(0.5)  # started and subscribed
        rates = await commands_per_second(client, 1.5)
        assert sum(rates.values()) <= IDLE_CALLS_PER_SECOND, rates
        assert 5 <= rates.get("zrangebyscore", 0) <= 12, rates  # still polls, for deferred jobs: ~10/s

        delays = await start_delays_ms(runtime)
        assert max(delays) <= START_WITHIN_MS, delays
        assert supervisor.worker.jobs_complete == len(delays)

        assert await subscribers(client) == 1
        assert sorted((await client.config_get("notify-keyspace-events"))["notify-keyspace-events"]) == list("EKxz")
    assert await subscribers(client) == 0  # the subscription ended with the worker
    await client.aclose()


async def test_a_lost_subscription_falls_back_to_polling(settings, tmp_path):
    with own_redis(settings, tmp_path / "redis") as settings:
        await lost_subscription_falls_back(settings)


async def lost_subscription_falls_back(settings):
    client = aredis.Redis.from_url(settings.redis_url)
    async with running_worker(settings) as (runtime, supervisor):
        worker = supervisor.worker
        await until(lambda: worker._waker is not None and worker._waker.ready)
        await client.client_kill_filter(_type="pubsub")
        await until(lambda: not worker._waker.ready)

        delays = await start_delays_ms(runtime, samples=3)
        assert max(delays) <= START_WITHIN_MS, delays
        assert supervisor.worker is worker and supervisor.restarts == 0  # the same worker went on
        rates = await commands_per_second(client, 0.5)
        assert rates.get("zrangebyscore", 0) > 50, rates  # every poll_delay, as before
    await client.aclose()


async def test_where_redis_refuses_config_the_worker_polls_as_before(settings, tmp_path):
    # A managed Redis's stance: no CONFIG (the flags may be set, but the worker cannot know).
    with own_redis(settings, tmp_path / "redis", "--rename-command", "CONFIG", "") as settings:
        await a_worker_polls_as_before(settings)


async def a_worker_polls_as_before(settings):
    client = aredis.Redis.from_url(settings.redis_url)
    async with running_worker(settings) as (runtime, supervisor):
        delays = await start_delays_ms(runtime, samples=3)
        assert max(delays) <= START_WITHIN_MS, delays
        assert await subscribers(client) == 0  # it did not subscribe
        rates = await commands_per_second(client, 0.5)
        assert rates.get("zrangebyscore", 0) > 50, rates  # every poll_delay, as before
        assert supervisor.restarts == 0
    await client.aclose()
