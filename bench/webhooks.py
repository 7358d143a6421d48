"""Benchmark of the webhook path: what an inbound text and a status webhook cost, and the acknowledgement.

    .venv/bin/python bench/webhooks.py [--samples 30] [--texts 200] [--statuses 200] [--customers 20]
                                       [--connections 16] [--duration 2] [--rounds 1] [--rate 500] [--batch 5]
                                       [--no-ack]

The process tree: this process (the load generator: a small raw HTTP/1.1 keep-alive client, so the
client is not the bottleneck) starts its own Redis and database (INBOX_MONGODB_URL when set, else an
embedded SecantusDB server) and, as child processes under uvicorn on uvloop, the servers:

1. Acknowledgement (``--no-ack`` skips it): a bare Litestar app whose POST handler only returns 200,
   and our app with no worker, alternating for ``--rounds`` rounds: deliveries/s at full load
   (closed loop, ``--connections``), server CPU per delivery, p50 / p99 latency at ``--rate``
   deliveries/s (open loop, from each request's scheduled time); each delivery a body never sent
   before, signed, holding ``--batch`` customer texts.
2. End to end, our app with the worker inline (`inbox run`'s shape), on a fresh database holding
   ``--samples + --statuses`` outbound messages (status accepted) to receive statuses for:
   an idle phase (what the idle server does: the worker's queue polls, cron jobs); the first text of each of ``--customers`` new customers; then texts from them, one text per webhook:
   ``--samples`` one at a time (latency: webhook POST -> the ``message.created`` live event on
   Redis) and ``--texts`` under load; then status webhooks (``delivered``, one per webhook) one at a
   time and under load, each done at its ``message.updated`` live event.

Printed per inbound text and per status webhook: MongoDB operations by kind (and by collection),
Redis commands (INFO commandstats of our Redis) and round trips, CPU ms of our server process (the
database's and Redis's apart): these do not depend on the database's speed (bench/counting.py says
how they are counted). Then throughput and latency on the database used, and the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import counting  # noqa: E402
from bench.counting import Counted, LiveFeed, Meter, cpu_seconds, percentile, read_json  # noqa: E402

SECRET = "bench-app-secret-0001"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
DISPLAY = "15550783881"

TARGET_INBOUND_OPS = 6
TARGET_STATUS_OPS = 2


# ---- servers (run as child processes of this script) ----------------------------------------------

def serve_bare(port: int) -> None:
    import uvicorn
    from litestar import Litestar, post

    @post("/hook", status_code=200)
    async def hook() -> dict:
        return {"received": True}

    uvicorn.run(Litestar([hook]), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_ours(port: int, redis_url: str, mongodb_url: str, database: str, worker: bool, outbound: int) -> None:
    counting.install()  # before any client exists
    counting.answer_on_stdin()
    from app.logging import configure_logging

    configure_logging("INFO")  # as `inbox web` logs (stderr: a file, counting.log_file), a line per request
    import uvicorn
    from pydantic import SecretStr

    from app.config import Settings
    from app.domains.accounts.services import NewAccount
    from app.main import create_app
    from app.runtime import Runtime

    async def main() -> None:
        settings = Settings(_env_file=None, redis_url=redis_url, secret_key=SecretStr("bench-secret-key-" + "x" * 32),
                            data_dir=Path(tempfile.mkdtemp()), public_url=f"http://127.0.0.1:{port}",
                            log_level="WARNING", mongodb_url=mongodb_url, mongodb_database=database)
        runtime = Runtime(settings)
        await runtime.start()
        workspace, _ = await runtime.people.create_workspace("Bench", f"bench{port}@example.com", "bench password")
        account = await runtime.accounts.create(workspace.id, NewAccount(
            name="Bench", phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID,
            display_phone_number=DISPLAY, access_token="EAAG-bench", app_secret=SECRET))
        if outbound:
            await seed_outbound(workspace.id, account.id, outbound)
        app = create_app(settings, runtime=runtime, inline_worker=worker, freeze_startup_objects=True)  # as the CLI
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               access_log=False, lifespan="on"))
        print(json.dumps({"path": f"/webhooks/whatsapp/{account.webhook_key}"}), flush=True)
        await server.serve()

    # `inbox web` / `inbox run` serve through uvicorn.Server.run(), whose loop="auto" picks uvloop (as
    # uvicorn.run() does for the bare endpoint): run ours on the same loop, not asyncio's default.
    import uvloop

    uvloop.run(main())


async def seed_outbound(workspace_id, account_id, count: int) -> None:
    """One customer's conversation with ``count`` messages we sent (accepted by Meta, wamid ``wamid.OUT<i>``)."""
    from app.db import utcnow
    from app.domains.contacts.services import ContactService
    from app.domains.conversations.services import ConversationService
    from app.domains.messages.models import Message, MessageStatus

    contact, _ = await ContactService().upsert(workspace_id, wa_id="972599990000", profile_name="Status Customer")
    conversation, _ = await ConversationService().open_for(workspace_id, account_id, contact.id)
    now = utcnow()
    docs = [Message(workspace_id=workspace_id, conversation_id=conversation.id, account_id=account_id,
                    contact_id=contact.id, direction="outbound", type="text", content={"body": f"order {i} shipped"},
                    wamid=status_wamid(i), status=MessageStatus.ACCEPTED, status_at={"accepted": now},
                    recipient="972599990000", via="api", attempts=1) for i in range(count)]
    for start in range(0, len(docs), 1000):
        await Message.insert_many(docs[start:start + 1000])


def status_wamid(i: int) -> str:
    return f"wamid.OUT{i:09d}"


# ---- load generator ---------------------------------------------------------------------------------

def envelope(value: dict) -> bytes:
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
                                       "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID},
                                       **value}}]}]}, separators=(",", ":")).encode()


def make_bodies(count: int, batch: int, start: int, customers: int = 500) -> list[bytes]:
    """``count`` deliveries of ``batch`` texts each, every one new (its own wamid); customer ``i % customers``."""
    now = int(time.time())
    bodies = []
    for i in range(start, start + count):
        customer = f"97250{i % customers:07d}"
        messages = [{"from": customer, "id": f"wamid.BENCH{i:09d}{j:03d}", "timestamp": str(now), "type": "text",
                     "text": {"body": f"message {j} of delivery {i}"}} for j in range(batch)]
        bodies.append(envelope({"contacts": [{"profile": {"name": f"Customer {i % customers}"}, "wa_id": customer}],
                                "messages": messages}))
    return bodies


def status_bodies(start: int, count: int, status: str) -> list[bytes]:
    now = str(int(time.time()))
    return [envelope({"statuses": [{"id": status_wamid(i), "status": status, "timestamp": now,
                                    "recipient_id": "972599990000"}]}) for i in range(start, start + count)]


def raw_request(path: str, body: bytes) -> bytes:
    from app.whatsapp.signature import sign

    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {sign(SECRET, body)}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, raw: bytes) -> int:
        self.writer.write(raw)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(port: int, requests: list[bytes], connections: int, duration: float) -> tuple[int, float, int]:
    """As fast as possible: each connection sends its next request when the last answered."""
    conns = [await Connection.open(port) for _ in range(connections)]
    done, errors = 0, 0
    stop_at = time.perf_counter() + duration
    queue = iter(requests)

    async def run(conn: Connection) -> None:
        nonlocal done, errors
        for raw in queue:
            if time.perf_counter() >= stop_at:
                return
            if await conn.send(raw) == 200:
                done += 1
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(run(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return done, elapsed, errors


async def open_loop(port: int, requests: list[bytes], rate: float, duration: float,
                    connections: int = 32) -> tuple[list[float], int]:
    """A fixed rate: request i is due at i / rate; latency is counted from when it was due."""
    total = min(int(rate * duration), len(requests))
    conns = [await Connection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05

    async def run(k: int, conn: Connection) -> None:
        nonlocal errors
        for i in range(k, total, connections):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if await conn.send(requests[i]) != 200:
                errors += 1
            latencies.append(time.perf_counter() - due)

    await asyncio.gather(*(run(k, c) for k, c in enumerate(conns)))
    for c in conns:
        c.close()
    return latencies, errors


async def one_at_a_time(port: int, raws: list[bytes], feed: LiveFeed, key: str) -> list[float]:
    """Each request alone: POST, then wait for its live event; latencies in ms (POST -> event)."""
    conn = await Connection.open(port)
    latencies = []
    try:
        for raw in raws:
            seen = feed.counts[key]
            started = time.perf_counter()
            if await conn.send(raw) != 200:
                raise RuntimeError("a webhook was refused")
            if not await feed.wait(key, seen + 1, timeout=30):
                raise RuntimeError(f"no {key} event within 30 s")
            latencies.append((feed.last[key] - started) * 1000)
    finally:
        conn.close()
    return latencies


async def under_load(port: int, raws: list[bytes], connections: int, feed: LiveFeed, key: str,
                     expected: int) -> tuple[float, int]:
    """All at once over ``connections``; seconds from the first POST to the ``expected``-th event."""
    seen = feed.counts[key]
    started = time.perf_counter()
    await closed_loop(port, raws, connections, 3600)
    if not await feed.wait(key, seen + expected, timeout=300):
        print(f"  (only {feed.counts[key] - seen} of {expected} {key} events within 300 s)")
    return feed.last.get(key, started) - started, feed.counts[key] - seen


def pct_ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


def start_server(kind: str, port: int, *extra: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port), *extra],
                            stderr=counting.log_file(kind),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    info: dict = {"path": "/hook"}
    if kind != "bare":
        info = read_json(proc, "path")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            import socket

            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, info
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---- phases -----------------------------------------------------------------------------------------

async def acknowledgement(args: argparse.Namespace, redis_url: str, db: counting.BenchDatabase,
                          database: str) -> tuple[float, float]:
    """Bare endpoint vs ours (no worker): deliveries/s, CPU per delivery, latency at a fixed rate."""
    from app.embedded import free_port

    servers = {}
    gc_logs = {kind: tempfile.mktemp(prefix=f"gc-{kind}-") for kind in ("bare", "ours")}
    windows: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": []}  # latency phases (start, end)
    try:
        for kind in ("bare", "ours"):
            port = free_port()
            proc, info = start_server(kind, port, "--redis-url", redis_url, "--mongodb-url", db.url,
                                      "--database", database, "--gc-log", gc_logs[kind])
            servers[kind] = (port, proc, info["path"])
        meter = Meter(redis_url, [Counted("ours", servers["ours"][1])], {})
        needed = int(args.rounds * args.duration * (3000 + args.rate)) + 300
        bodies = make_bodies(needed, args.batch, 0)  # more than ours can take (bare reuses them)
        raws = {kind: [raw_request(path, b) for b in bodies] for kind, (_, _, path) in servers.items()}
        cursor = {"bare": 0, "ours": 0}  # ours must never see a body twice (it would be a cheap duplicate)
        rates: dict[str, list[float]] = {"bare": [], "ours": []}
        cpu_per_request: dict[str, list[float]] = {"bare": [], "ours": []}
        latencies: dict[str, list[float]] = {"bare": [], "ours": []}
        errors = {"bare": 0, "ours": 0}
        for kind, (port, _, _) in servers.items():  # warm-up: imports, caches, connections
            warm = raws[kind][-300:]
            await closed_loop(port, warm, 8, 1.0)
        usage, delivered = None, 0
        for _ in range(args.rounds):
            for kind, (port, _proc, _) in servers.items():
                cpu_before = cpu_seconds(proc.pid)
                before = meter.sample() if kind == "ours" else None
                done, elapsed, failed = await closed_loop(port, raws[kind][cursor[kind]:-300], args.connections,
                                                          args.duration)
                cpu_per_request[kind].append((cpu_seconds(proc.pid) - cpu_before) / max(done, 1))
                if kind == "ours":  # the bare endpoint does not mind a body twice: it reuses them
                    cursor[kind] += done + failed
                    usage, delivered = meter.since(before), done
                rates[kind].append(done / elapsed)
                errors[kind] += failed
            for kind, (port, _proc, _) in servers.items():
                window_start = time.time()
                sample, failed = await open_loop(port, raws[kind][cursor[kind]:-300], args.rate, args.duration)
                windows[kind].append((window_start, time.time()))
                if kind == "ours":
                    cursor[kind] += len(sample)
                latencies[kind] += sample
                errors[kind] += failed
        meter.close()
    finally:
        for _, proc, _ in servers.values():
            stop(proc)
    print(f"\nwebhook acknowledgement (no worker): {args.batch} texts per delivery, {args.connections} connections, "
          f"{args.rounds} round(s) of {args.duration:g} s per phase, medians")
    print(f"  {'':<6} {'deliveries/s':>13} {'texts/s':>8} {'CPU ms':>7} {'p50 ms':>8} {'p99 ms':>8}  "
          f"(CPU per delivery at full load; latency at {args.rate:g}/s)  errors")
    cpu = {kind: statistics.median(values) for kind, values in cpu_per_request.items()}
    for kind in ("bare", "ours"):
        rate = statistics.median(rates[kind])
        sample = latencies[kind]
        print(f"  {kind:<6} {rate:>13.0f} {rate * args.batch:>8.0f} {cpu[kind] * 1e3:>7.3f} {pct_ms(sample, .5):>8.2f} "
              f"{pct_ms(sample, .99):>8.2f}  {'':<45}  {errors[kind]}")
    if usage is not None and delivered:
        print(f"  ours per delivery at full load: MongoDB {counting.num(usage.operations() / delivered)} operations "
              f"({counting.listing(usage.mongo['work'], delivered)}: deliveries in flight together share one insert); "
              f"Redis {counting.num(sum(usage.own_redis().values()) / delivered)} commands in "
              f"{counting.num(usage.round_trips() / delivered)} round trips")
    for kind in ("bare", "ours"):
        pauses = []
        if os.path.exists(gc_logs[kind]):
            for line in Path(gc_logs[kind]).read_text().splitlines():
                at, generation, ms = line.split()
                if any(a <= float(at) <= b for a, b in windows[kind]):
                    pauses.append((float(ms), int(generation)))
        worst = max(pauses, default=(0.0, 0))
        print(f"  {kind}: garbage-collector pauses > 5 ms during the latency phases: {len(pauses)}, longest "
              f"{worst[0]:.0f} ms (generation {worst[1]})")
    ratio = statistics.median(rates["ours"]) / statistics.median(rates["bare"])
    print(f"  ours / bare: {ratio:.0%} of the deliveries/s, {cpu['bare'] / cpu['ours']:.0%} by CPU per delivery "
          f"(the CPU ratio does not depend on other load on the machine)")
    return ratio, pct_ms(latencies["ours"], .99)


async def end_to_end(args: argparse.Namespace, redis_url: str, db: counting.BenchDatabase,
                     database: str) -> dict:
    from app.embedded import free_port

    port = free_port()
    outbound = args.samples + args.statuses
    proc, info = start_server("ours", port, "--redis-url", redis_url, "--mongodb-url", db.url,
                              "--database", database, "--worker", "--outbound", str(outbound))
    server = Counted("server", proc)
    feed = await LiveFeed(redis_url).start()
    meter = Meter(redis_url, [server], {"database": db.pid, "redis": args.redis_pid})
    path = info["path"]
    figures: dict = {}
    try:
        await asyncio.sleep(1.0)  # the worker's startup sweeps
        print("\nend to end (worker inline, `inbox run`'s shape; one text per webhook, customers with an open "
              "conversation unless said):")
        print(f"idle for {args.idle:g} s:")
        idle = await meter.idle(args.idle)
        counting.idle_report(idle)

        first = [raw_request(path, b) for b in make_bodies(args.customers, 1, 0, args.customers)]
        with meter.phase() as got:
            await one_at_a_time(port, first, feed, "message.created")
            await meter.settle()
        print(f"first text of a new customer ({args.customers} customers, one at a time): "
              f"{counting.num(got[0].operations() / args.customers)} MongoDB operations "
              f"({counting.listing(got[0].by_kind(), args.customers)})")

        texts = [raw_request(path, b) for b in make_bodies(args.samples, 1, args.customers, args.customers)]
        with meter.phase() as got:
            latencies = await one_at_a_time(port, texts, feed, "message.created")
            await meter.settle()
        print(f"per inbound text, one at a time ({args.samples} texts; webhook -> stored -> ingested -> live event):")
        figures["inbound"] = counting.report(got[0], args.samples, "text", ["server"], idle)
        figures["inbound_latency"] = latencies
        print(f"  latency              webhook POST -> message.created event: p50 {percentile(latencies, .5):.1f} ms, "
              f"p95 {percentile(latencies, .95):.1f} ms, max {max(latencies):.1f} ms")

        texts = [raw_request(path, b) for b in make_bodies(args.texts, 1, 10**6, args.customers)]
        with meter.phase() as got:
            seconds, seen = await under_load(port, texts, args.connections, feed, "message.created", args.texts)
            await meter.settle()
        print(f"per inbound text under load ({args.texts} texts over {args.connections} connections):")
        figures["inbound_load"] = counting.report(got[0], seen, "text", ["server"], idle)
        print(f"  throughput           {seen / seconds:.0f} texts/s end to end ({seen} live events in {seconds:.2f} s)")

        statuses = [raw_request(path, b) for b in status_bodies(0, args.samples, "delivered")]
        with meter.phase() as got:
            latencies = await one_at_a_time(port, statuses, feed, "message.updated:delivered")
            await meter.settle()
        print(f"per status webhook, one at a time ({args.samples} 'delivered' statuses; webhook -> message updated -> "
              f"live event):")
        figures["status"] = counting.report(got[0], args.samples, "status", ["server"], idle)
        print(f"  latency              webhook POST -> message.updated event: p50 {percentile(latencies, .5):.1f} ms, "
              f"p95 {percentile(latencies, .95):.1f} ms, max {max(latencies):.1f} ms")

        statuses = [raw_request(path, b) for b in status_bodies(args.samples, args.statuses, "delivered")]
        with meter.phase() as got:
            seconds, seen = await under_load(port, statuses, args.connections, feed, "message.updated:delivered",
                                             args.statuses)
            await meter.settle()
        print(f"per status webhook under load ({args.statuses} 'delivered' statuses over {args.connections} "
              f"connections):")
        figures["status_load"] = counting.report(got[0], seen, "status", ["server"], idle)
        print(f"  throughput           {seen / seconds:.0f} statuses/s end to end")
    finally:
        await feed.stop()
        meter.close()
        stop(proc)
    return figures


async def bench(args: argparse.Namespace, redis_url: str, db: counting.BenchDatabase) -> None:
    import redis as sync_redis

    ack = counting.database_name("ack")
    e2e = counting.database_name("e2e")
    try:
        ratio = p99 = None
        if not args.no_ack:
            ratio, p99 = await acknowledgement(args, redis_url, db, ack)
            # The jobs the acknowledgement phase queued (no worker ran) belong to that database: drop them.
            sync_redis.Redis.from_url(redis_url).flushall()
        figures = await end_to_end(args, redis_url, db, e2e)
    finally:
        counting.drop_databases(db, [ack, e2e])
    print("targets:")
    inbound, status = figures["inbound"], figures["status"]
    counting.judge(f"MongoDB operations per inbound text <= {TARGET_INBOUND_OPS}", counting.num(inbound.operations),
                   inbound.operations <= TARGET_INBOUND_OPS)
    counting.judge(f"MongoDB operations per status webhook <= {TARGET_STATUS_OPS}", counting.num(status.operations),
                   status.operations <= TARGET_STATUS_OPS)
    if ratio is not None:
        counting.judge_speed(db, "acknowledgement: ours >= 50 % of the bare endpoint's rate", f"{ratio:.0%}",
                             ratio >= 0.5)
        counting.judge_speed(db, f"acknowledgement p99 < 20 ms at {args.rate:g}/s", f"{p99:.2f} ms", p99 < 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="texts, then statuses, one at a time")
    parser.add_argument("--texts", type=int, default=200, help="texts under load")
    parser.add_argument("--statuses", type=int, default=200, help="status webhooks under load")
    parser.add_argument("--customers", type=int, default=20, help="customers the texts come from")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of the idle phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per acknowledgement phase")
    parser.add_argument("--rounds", type=int, default=1, help="acknowledgement rounds (bare / ours alternate)")
    parser.add_argument("--rate", type=float, default=500.0, help="deliveries/s of the acknowledgement latency phase")
    parser.add_argument("--batch", type=int, default=5, help="texts per delivery in the acknowledgement phase")
    parser.add_argument("--no-ack", action="store_true", help="skip the acknowledgement phase")
    parser.add_argument("--serve", choices=["bare", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--mongodb-url", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--outbound", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--gc-log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "bare":
        serve_bare(args.port)
        return
    if args.gc_log:
        from bench.sandbox import log_gc_pauses  # every pause over 5 ms, to explain latency outliers

        log_gc_pauses(args.gc_log)
    if args.serve == "ours":
        serve_ours(args.port, args.redis_url, args.mongodb_url, args.database, args.worker, args.outbound)
        return
    from app.embedded_redis import EmbeddedRedis

    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    redis = EmbeddedRedis(tmp / "redis", persist=False).start()
    try:
        with counting.database(tmp) as db:
            counting.headline("webhooks benchmark", db)
            args.redis_pid = redis.pid
            asyncio.run(bench(args, redis.url, db))
    finally:
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
