"""What a message costs, counted: MongoDB operations by kind, Redis commands and round trips, CPU.

These counts do not depend on the database's speed, unlike throughput and latency on the embedded
server (SecantusDB answers a simple operation in ~1 ms, mongod in ~0.05 ms): they are the figures
to compare between runs and machines.

Inside each server or worker process a benchmark starts, :func:`install` runs first, before the
app or any client exists:

- MongoDB: a pymongo ``CommandListener`` registered globally (``pymongo.monitoring.register``), so
  every client the process makes (motor's included) reports each command it sends. One command is
  one operation, whatever it touches: a bulk write of 100 updates is one ``update``. The driver's
  own traffic (handshake, hello, ping, endSessions) and index management are left out.
- Redis round trips: redis-py's connection classes (asyncio and sync) count each write to the
  socket (``send_packed_command``: one command, or one whole pipeline or MULTI/EXEC, or one script
  call), and each command they pack.

:func:`answer_on_stdin` (or the process's own stdin loop) answers a ``stats`` line with one JSON line
on stdout, ``{"stats": {...}}``, read by :class:`Counted`.

On the benchmark's side, :class:`Meter` samples, before and after a phase: each counted process's
counters, the benchmark's own Redis (``INFO commandstats``: calls per command exactly as Redis ran
them, those a Lua script ran included) and the CPU time (user + system, /proc) of every process
it watches, ours and not ours (the database, Redis, the sandbox). :func:`report` prints a phase's
usage per message, optionally net of what the idle processes do anyway (the worker's queue polls,
cron sweeps) at the rates an idle phase measured.

    python bench/counting.py web|worker [inbox CLI arguments]    # `inbox web` / `inbox worker`, counted
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOGS = Path(tempfile.gettempdir()) / "wa-inbox-bench-logs"


def log_file(name: str) -> Any:
    """Where a server process of a benchmark logs (its stderr), as deployed at INFO: a file, never the terminal (a
    line per request and per send) nor a pipe (a full one blocks the process). Its path is printed once."""
    LOGS.mkdir(exist_ok=True)
    path = LOGS / f"{name}-{os.getpid()}.log"
    print(f"  ({name} logs to {path})", file=sys.stderr, flush=True)
    return open(path, "ab")  # noqa: SIM115 - the child holds it; closed when the benchmark exits

# ---- inside a counted process ----------------------------------------------------------------------

# Driver housekeeping and index management: not what a message costs.
IGNORED_COMMANDS = frozenset({"hello", "ismaster", "isMaster", "ping", "endSessions", "createIndexes",
                              "listIndexes", "buildInfo", "saslStart", "saslContinue", "getnonce"})

# What the process is doing when it sends something: "work" (requests, jobs: what messages cost),
# "poll" (arq's queue polls, every worker_poll_delay whatever the load) or "cron" (the periodic sweeps).
# A context variable: asyncio tasks copy it, and motor runs each pymongo call in the caller's context.
CONTEXTS = ("work", "poll", "cron")
_context: contextvars.ContextVar[str] = contextvars.ContextVar("bench_counting", default="work")
_lock = threading.Lock()
_mongo: dict[str, Counter[str]] = {c: Counter() for c in CONTEXTS}  # "kind collection" -> commands started
_trips: Counter[str] = Counter()  # context -> writes to a Redis socket
_sent: dict[str, Counter[str]] = {c: Counter() for c in CONTEXTS}  # Redis command name -> packed
_installed = False


def install() -> None:
    """Count this process's MongoDB commands and Redis round trips (call before any client exists)."""
    global _installed
    if _installed:
        return
    _installed = True
    from pymongo import monitoring

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            name = event.command_name
            if name in IGNORED_COMMANDS:
                return
            target = event.command.get("collection") if name == "getMore" else event.command.get(name)
            key = f"{name} {target}" if isinstance(target, str) else name
            with _lock:  # motor runs pymongo in a thread pool: callbacks come from several threads
                _mongo[_context.get()][key] += 1

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    monitoring.register(Listener())

    import redis.asyncio.connection as async_connection
    import redis.connection as sync_connection

    def count_commands(cls: type) -> None:
        pack = cls.pack_command

        def pack_command(self: Any, *args: Any) -> Any:
            name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            _sent[_context.get()][name.lower()] += 1
            return pack(self, *args)

        cls.pack_command = pack_command

    send_async = async_connection.AbstractConnection.send_packed_command

    async def send_packed_async(self: Any, command: Any, check_health: bool = True) -> None:
        _trips[_context.get()] += 1
        await send_async(self, command, check_health)

    send_sync = sync_connection.AbstractConnection.send_packed_command

    def send_packed_sync(self: Any, command: Any, check_health: bool = True) -> None:
        _trips[_context.get()] += 1
        send_sync(self, command, check_health)

    async_connection.AbstractConnection.send_packed_command = send_packed_async
    sync_connection.AbstractConnection.send_packed_command = send_packed_sync
    count_commands(async_connection.AbstractConnection)
    count_commands(sync_connection.AbstractConnection)
    _label_worker()


def _in_context(name: str, coroutine: Any) -> Any:
    @functools.wraps(coroutine)
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = _context.set(name)
        try:
            return await coroutine(*args, **kwargs)
        finally:
            _context.reset(token)

    return wrapped


def _label_worker() -> None:
    """arq's poll loop is "poll", except the start of the jobs it found: a cron job's (its id starts
    with ``cron:``) is "cron" from its claim to its end, any other job's is "work"."""
    from arq.worker import Worker

    from workers import settings

    start_jobs = Worker.start_jobs

    async def start_jobs_by_kind(self: Any, job_ids: list[bytes]) -> None:
        cron = [j for j in job_ids if j.startswith(b"cron:")]
        other = [j for j in job_ids if not j.startswith(b"cron:")]
        for context, ids in (("work", other), ("cron", cron)):
            if ids:
                token = _context.set(context)  # the job's task, created in there, keeps it
                try:
                    await start_jobs(self, ids)
                finally:
                    _context.reset(token)

    Worker._poll_iteration = _in_context("poll", Worker._poll_iteration)
    Worker.start_jobs = start_jobs_by_kind
    for job in settings.CRON_JOBS:
        job.coroutine = _in_context("cron", job.coroutine)


def snapshot() -> dict[str, Any]:
    """This process's counters so far, by context."""
    with _lock:
        mongo = {c: dict(counts) for c, counts in _mongo.items()}
    return {"mongo": mongo, "trips": dict(_trips), "sent": {c: dict(counts) for c, counts in _sent.items()}}


def stats_line() -> str:
    return json.dumps({"stats": snapshot()})


def answer_on_stdin() -> None:
    """A daemon thread answering each ``stats`` line on stdin with the counters, on stdout."""

    def loop() -> None:
        for line in sys.stdin:
            if line.strip() == "stats":
                sys.stdout.write(stats_line() + "\n")
                sys.stdout.flush()

    threading.Thread(target=loop, name="bench-stats", daemon=True).start()


# ---- on the benchmark's side ----------------------------------------------------------------------

def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (Linux /proc); 0 when it is gone or unknown."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def read_json(proc: subprocess.Popen, key: str) -> dict:
    """The child's next JSON line holding ``key`` (its log lines share stdout)."""
    while text := proc.stdout.readline():
        text = text.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict) and key in data:
                return data
    raise RuntimeError(f"server exited before printing {key!r}")


class Counted:
    """A child process that runs :func:`install` and answers ``stats`` on stdin (text pipes)."""

    def __init__(self, name: str, proc: subprocess.Popen) -> None:
        self.name, self.proc = name, proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stats(self) -> dict[str, Any]:
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return read_json(self.proc, "stats")["stats"]


@dataclass
class Sample:
    at: float
    redis: Counter[str]
    processes: dict[str, dict[str, Any]]
    cpu: dict[str, float]


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


@dataclass
class Usage:
    """What a phase cost: the counted processes' MongoDB commands ("kind collection") and Redis
    commands sent, by context; their Redis round trips by process and context; Redis's own count
    per command (all clients); CPU seconds per watched process."""

    seconds: float
    mongo: dict[str, dict[str, int]] = field(default_factory=lambda: {c: {} for c in CONTEXTS})
    sent: dict[str, dict[str, int]] = field(default_factory=lambda: {c: {} for c in CONTEXTS})
    trips: dict[str, dict[str, int]] = field(default_factory=dict)
    redis: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def operations(self, context: str = "work") -> int:
        return sum(self.mongo[context].values())

    def by_kind(self, context: str = "work") -> Counter[str]:
        kinds: Counter[str] = Counter()
        for key, count in self.mongo[context].items():
            kinds[key.split(" ", 1)[0]] += count
        return kinds

    def round_trips(self, context: str = "work") -> int:
        return sum(by_context.get(context, 0) for by_context in self.trips.values())

    def own_redis(self) -> dict[str, int]:
        """Redis's count per command less what the queue polls and cron jobs sent (scripts' inner
        commands stay: Redis counts them, the client cannot)."""
        own = dict(self.redis)
        for context in ("poll", "cron"):
            for name, count in self.sent[context].items():
                if name in own:
                    own[name] = max(0, own[name] - count)
        return {k: v for k, v in own.items() if v}


class Meter:
    """Samples the counted processes, the benchmark's Redis and the CPU of every watched process."""

    def __init__(self, redis_url: str, counted: list[Counted], others: dict[str, int | None]) -> None:
        import redis

        self.redis = redis.Redis.from_url(redis_url)
        self.counted = counted
        self.others = others
        self.commandstats()  # the client's own connection handshake, before any phase

    def commandstats(self) -> Counter[str]:
        calls: Counter[str] = Counter()
        for key, value in self.redis.info("commandstats").items():
            name = key.removeprefix("cmdstat_")
            if name != "info":  # our own sampling
                calls[name] = int(value["calls"])
        return calls

    def sample(self) -> Sample:
        cpu = {c.name: cpu_seconds(c.pid) for c in self.counted}
        cpu.update({name: cpu_seconds(pid) for name, pid in self.others.items()})
        processes = {c.name: c.stats() for c in self.counted}
        return Sample(time.perf_counter(), self.commandstats(), processes, cpu)

    def since(self, before: Sample) -> Usage:
        after = self.sample()
        usage = Usage(after.at - before.at)
        for name, stats in after.processes.items():
            old = before.processes[name]
            for context in CONTEXTS:
                for key, count in _diff(stats["mongo"][context], old["mongo"][context]).items():
                    usage.mongo[context][key] = usage.mongo[context].get(key, 0) + count
                for key, count in _diff(stats["sent"][context], old["sent"][context]).items():
                    usage.sent[context][key] = usage.sent[context].get(key, 0) + count
            usage.trips[name] = {c: stats["trips"].get(c, 0) - old["trips"].get(c, 0) for c in CONTEXTS}
        usage.redis = _diff(after.redis, before.redis)
        usage.cpu = {k: v - before.cpu.get(k, 0.0) for k, v in after.cpu.items()}
        return usage

    @contextlib.contextmanager
    def phase(self) -> Iterator[list[Usage]]:
        """``with meter.phase() as got: ...`` then ``got[0]`` is the block's Usage."""
        got: list[Usage] = []
        before = self.sample()
        yield got
        got.append(self.since(before))

    async def settle(self, quiet: float = 0.5, timeout: float = 60.0) -> None:
        """Until the counted processes' work is over: no MongoDB operation outside cron jobs and queue
        polls for ``quiet`` seconds (a message's live event comes before the last writes of its job)."""
        last, since, deadline = None, time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = [sum(c.stats()["mongo"]["work"].values()) for c in self.counted]
            if current != last:
                last, since = current, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            await asyncio.sleep(0.1)

    async def idle(self, seconds: float) -> Usage:
        with self.phase() as got:
            await asyncio.sleep(seconds)
        return got[0]

    def close(self) -> None:
        self.redis.close()


def num(value: float) -> str:
    """A per-message figure: up to two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def listing(counts: dict[str, float], n: float = 1, limit: int = 12) -> str:
    items = sorted(((k, v / n) for k, v in counts.items() if v / n >= 0.005), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{k} {num(v)}" for k, v in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _by_collection(mongo: dict[str, int], n: int) -> str:
    groups: dict[str, Counter[str]] = {}
    for key, count in mongo.items():
        kind, _, collection = key.partition(" ")
        groups.setdefault(collection or "(database)", Counter())[kind] += count
    parts = []
    for collection, kinds in sorted(groups.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(kinds.values()) / n
        if total >= 0.005:
            parts.append(f"{collection} {num(total)} ({', '.join(f'{k} {num(v / n)}' for k, v in kinds.most_common())})")
    return "; ".join(parts)


@dataclass
class PerMessage:
    operations: float
    kinds: dict[str, float]
    redis_commands: float
    round_trips: float
    cpu_ms: float


def idle_cpu(usage: Usage, idle: Usage | None) -> dict[str, float]:
    """CPU seconds the phase's processes would have spent idle: for a process that polls the queue,
    its idle CPU per poll times its polls in the phase (it polls less when busy); for any other,
    its idle CPU per second times the phase's seconds."""
    if idle is None or not idle.seconds:
        return {}
    spent = {}
    for name, seconds in idle.cpu.items():
        idle_polls = idle.trips.get(name, {}).get("poll", 0)
        if idle_polls:
            spent[name] = seconds / idle_polls * usage.trips.get(name, {}).get("poll", 0)
        else:
            spent[name] = seconds / idle.seconds * usage.seconds
    return spent


def report(usage: Usage, n: int, unit: str, ours: list[str], idle: Usage | None = None) -> PerMessage:
    """Print a phase's usage per message (``unit``: "text", "send", ...): what the requests and jobs
    did; the worker's queue polls and cron jobs in the meantime are shown apart, not counted. CPU is
    net of what the processes spend idle (``idle``: an idle phase's usage), mostly the queue polls."""
    n = max(n, 1)
    ops = usage.operations() / n
    print(f"  MongoDB operations   {num(ops)} per {unit}: {listing(usage.by_kind(), n) or 'none'}")
    print(f"    by collection      {_by_collection(usage.mongo['work'], n)}")
    background = usage.operations("cron") + usage.operations("poll")
    if background:
        print(f"    not counted        {background} operations of cron jobs in these {usage.seconds:.1f} s: "
              f"{listing(usage.mongo['cron'], 1, 6)}")
    own = usage.own_redis()
    commands = sum(own.values()) / n
    trips = usage.round_trips() / n
    print(f"  Redis commands       {num(commands)} per {unit} (as Redis counts them: a script's own commands "
          f"included): {listing(own, n)}")
    print(f"    sent by ours       {listing(usage.sent['work'], n)} (commands our processes sent, a pipeline's each)")
    polls, cron = usage.round_trips("poll"), usage.round_trips("cron")
    print(f"  Redis round trips    {num(trips)} per {unit} ("
          + ", ".join(f"{k} {num(v['work'] / n)}" for k, v in usage.trips.items())
          + f"); not counted: {polls} queue polls ({polls / usage.seconds:.0f}/s)"
          + (f", {cron} of cron jobs" if cron else "") + f" in {usage.seconds:.1f} s")
    baseline = idle_cpu(usage, idle)
    net = {k: max(0.0, v - baseline.get(k, 0.0)) * 1000 / n for k, v in usage.cpu.items()}
    cpu_ours = sum(net.get(name, 0.0) for name in ours)
    others = [k for k in usage.cpu if k not in ours]
    gross = sum(usage.cpu.get(name, 0.0) for name in ours) * 1000 / n
    print(f"  CPU per {unit:<12} ours {cpu_ours:.2f} ms (" + ", ".join(f"{k} {net[k]:.2f} ms" for k in ours) + ")"
          + (f"; not ours: {', '.join(f'{k} {net[k]:.2f} ms' for k in others)}" if others else "")
          + (f" (net of what each spends idle in as long: queue polls; ours measured {gross:.2f} ms)"
             if baseline else ""))
    return PerMessage(ops, {k: v / n for k, v in usage.by_kind().items()}, commands, trips, cpu_ours)


def brief(usage: Usage, n: int, ours: list[str], idle: Usage | None = None) -> str:
    """One line: MongoDB operations by kind, Redis round trips and our CPU per request."""
    n = max(n, 1)
    baseline = idle_cpu(usage, idle)
    cpu = sum(max(0.0, usage.cpu.get(k, 0.0) - baseline.get(k, 0.0)) for k in ours) * 1000 / n
    return (f"{num(usage.operations() / n)} MongoDB operations ({listing(usage.by_kind(), n, 6) or 'none'}), "
            f"{num(usage.round_trips() / n)} Redis round trips, CPU {cpu:.1f} ms")


def idle_report(usage: Usage) -> None:
    s = usage.seconds or 1.0
    print(f"  Redis commands       {num(sum(usage.redis.values()) / s)}/s as Redis counts them: "
          f"{listing({k: v / s for k, v in usage.redis.items()}, 1, 8) or 'none'}")
    print("  Redis round trips    " + "; ".join(
        f"{name} {num(sum(by.values()) / s)}/s"
        + (f" ({', '.join(f'{c} {num(v / s)}' for c, v in by.items() if v)})" if any(by.values()) else "")
        for name, by in usage.trips.items()))
    ops = {f"{c}: {k}": v / s for c in CONTEXTS for k, v in usage.mongo[c].items()}
    print(f"  MongoDB operations   {num(sum(ops.values()))}/s" + (f": {listing(ops, 1, 8)}" if ops else ""))
    print("  CPU                  " + ", ".join(f"{k} {v * 100 / s:.1f} %" for k, v in usage.cpu.items()))


# ---- the database and the report's first line --------------------------------------------------------

@dataclass
class BenchDatabase:
    url: str
    label: str  # "the embedded server (SecantusDB)" or the redacted URL
    embedded: Any = None  # app.embedded_mongo.EmbeddedMongo when we started it

    @property
    def pid(self) -> int | None:
        return self.embedded.pid if self.embedded is not None else None

    @property
    def real(self) -> bool:
        """A MongoDB server given by INBOX_MONGODB_URL: speed targets are judged on it."""
        return self.embedded is None


@contextlib.contextmanager
def database(directory: Path | None = None) -> Iterator[BenchDatabase]:
    """INBOX_MONGODB_URL when set, otherwise an embedded SecantusDB server of our own (stopped after)."""
    url = os.environ.get("INBOX_MONGODB_URL")
    if url:
        yield BenchDatabase(url, re.sub(r"//[^@/]*@", "//***@", url))
        return
    from app.embedded_mongo import EmbeddedMongo

    server = EmbeddedMongo(Path(directory or tempfile.mkdtemp(prefix="bench-db-")) / "db").start(timeout=60)
    try:
        yield BenchDatabase(server.url, "the embedded server (SecantusDB)", server)
    finally:
        server.stop()


def database_name(purpose: str) -> str:
    """A database of this run's own: never another run's data (nor a deployment's, on a shared server)."""
    return f"bench_{purpose}_{os.getpid()}_{int(time.time())}"


def drop_databases(db: BenchDatabase, names: list[str]) -> None:
    from pymongo import MongoClient

    client: MongoClient = MongoClient(db.url, serverSelectionTimeoutMS=5000)
    try:
        for name in names:
            client.drop_database(name)
    finally:
        client.close()


def headline(title: str, db: BenchDatabase) -> None:
    load = os.getloadavg()
    note = ("; its throughput and latency are not speed figures (~1 ms per operation, mongod ~0.05 ms): compare "
            "the operations, Redis commands and CPU per message" if not db.real else "")
    print(f"{title} on {db.label}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs"
          + note, flush=True)


def judge(name: str, measured: str, met: bool) -> None:
    print(f"  {name:<60} {measured:<22} {'met' if met else 'NOT met'}")


def judge_speed(db: BenchDatabase, name: str, measured: str, met: bool) -> None:
    """A speed target: judged on a real MongoDB only (on the embedded server it says nothing)."""
    verdict = ("met" if met else "NOT met") if db.real else "not judged on the embedded server"
    print(f"  {name:<60} {measured:<22} {verdict}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# ---- live events (the product's Redis channels), seen from the benchmark ------------------------------

class LiveFeed:
    """Every live event published on the benchmark's Redis (``PSUBSCRIBE ws:*``), counted by
    ``event`` and ``event:status``, with a condition to wait on. Subscribing costs the product nothing."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.counts: Counter[str] = Counter()
        self.last: dict[str, float] = {}  # key -> perf_counter() when its latest event arrived
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> LiveFeed:
        from redis.asyncio import Redis

        self._client = Redis.from_url(self.redis_url)
        self._pubsub = self._client.pubsub()
        await self._pubsub.psubscribe("ws:*")
        self._task = asyncio.create_task(self._listen())
        return self

    async def _listen(self) -> None:
        async for message in self._pubsub.listen():
            if message.get("type") != "pmessage":
                continue
            try:
                data = json.loads(message["data"])
            except ValueError:
                continue
            at = time.perf_counter()
            keys = [data.get("event", "")] + ([f"{data.get('event')}:{data['status']}"] if data.get("status") else [])
            for key in keys:
                self.counts[key] += 1
                self.last[key] = at
            self._changed.set()

    async def wait(self, key: str, count: int, timeout: float = 120.0) -> bool:
        """Until ``counts[key] >= count``; False on timeout (the benchmark says how many came)."""
        deadline = time.monotonic() + timeout
        while self.counts[key] < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._pubsub.aclose()
        await self._client.aclose()


# ---- `inbox web` / `inbox worker`, counted ----------------------------------------------------------

def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.splitlines()[0] + "\n(a helper of the other benchmarks: nothing to run on its own)")
        return 0
    sys.path.insert(0, str(ROOT))
    install()
    answer_on_stdin()
    from app.cli import main as inbox

    return inbox(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
