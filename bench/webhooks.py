"""Benchmark of the webhook endpoint: acknowledgement rate and latency, next to a bare Litestar endpoint.

    .venv/bin/python bench/webhooks.py [--duration 4] [--rounds 3] [--rate 500] [--batch 5] [--ingest 2000]

The process tree: this process (the load generator: a small raw HTTP/1.1 keep-alive client,
so the client is not the bottleneck) starts its own Redis and, as child processes under uvicorn,
a bare Litestar app whose POST handler only returns 200 and our app (in-memory Mongo unless
INBOX_MONGODB_URL is set, no worker: only the acknowledgement path is measured); phases alternate
between the two for ``--rounds`` rounds so that other load on the machine hits both alike. Then
our app with the worker inline (`inbox run`'s shape) measures end-to-end ingestion. Every request
to ours is a body never sent before, signed with the number's app secret, holding ``--batch``
customer messages.

Printed: deliveries/s and messages/s at full load (closed loop) for bare and ours with the ratio
(target ≥ 50 %); p50 / p99 acknowledgement latency at a fixed ``--rate`` (open loop, latency
measured from each request's scheduled time; target p99 < 20 ms at 500/s); stored messages/s
end to end (POST → worker → messages collection).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-app-secret-0001"
PHONE_NUMBER_ID = "106540352242922"


# ---- servers (run as child processes of this script) ----------------------------------------------

def serve_bare(port: int) -> None:
    import uvicorn
    from litestar import Litestar, post

    @post("/hook", status_code=200)
    async def hook() -> dict:
        return {"received": True}

    uvicorn.run(Litestar([hook]), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_ours(port: int, redis_url: str, worker: bool, expect: int) -> None:
    import uvicorn
    from pydantic import SecretStr

    from app.config import Settings
    from app.domains.accounts.services import NewAccount
    from app.domains.messages.models import Message
    from app.main import create_app
    from app.runtime import Runtime

    async def main() -> None:
        settings = Settings(_env_file=None, redis_url=redis_url, secret_key=SecretStr("bench-secret-key-" + "x" * 32),
                            data_dir=Path(tempfile.mkdtemp()), public_url=f"http://127.0.0.1:{port}",
                            log_level="WARNING", mongodb_url=os.environ.get("INBOX_MONGODB_URL"))
        runtime = Runtime(settings)
        await runtime.start()
        workspace, _ = await runtime.people.create_workspace("Bench", f"bench{port}@example.com", "bench password")
        account = await runtime.accounts.create(workspace.id, NewAccount(
            name="Bench", phone_number_id=PHONE_NUMBER_ID, waba_id="102290129340398",
            display_phone_number="15550783881", access_token="EAAG-bench", app_secret=SECRET))
        app = create_app(settings, runtime=runtime, inline_worker=worker, freeze_startup_objects=True)  # as the CLI
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               access_log=False, lifespan="on"))
        print(json.dumps({"path": f"/webhooks/whatsapp/{account.webhook_key}"}), flush=True)

        async def watch() -> None:  # report when every expected message is stored
            while expect:
                stored = await Message.find_all().count()
                if stored >= expect:
                    print(json.dumps({"stored": stored, "at": time.time()}), flush=True)
                    return
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        await server.serve()
        watcher.cancel()

    # `inbox web` / `inbox run` serve through uvicorn.Server.run(), whose loop="auto" picks uvloop (as
    # uvicorn.run() does for the bare endpoint): run ours on the same loop, not asyncio's default.
    import uvloop

    uvloop.run(main())


# ---- load generator ---------------------------------------------------------------------------------

def make_bodies(count: int, batch: int, start: int) -> list[bytes]:
    from app.whatsapp.signature import sign

    now = int(time.time())
    requests = []
    for i in range(start, start + count):
        customer = f"97250{i % 500:07d}"
        messages = [{"from": customer, "id": f"wamid.BENCH{i:09d}{j:03d}", "timestamp": str(now), "type": "text",
                     "text": {"body": f"message {j} of delivery {i}"}} for j in range(batch)]
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                "contacts": [{"profile": {"name": f"Customer {i % 500}"}, "wa_id": customer}],
                "messages": messages}}]}]}, separators=(",", ":")).encode()
        requests.append(body)
    return requests


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
    total = int(rate * duration)
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc), to compare cost per request under noise."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def read_json(proc: subprocess.Popen, key: str) -> dict:
    """The child's next JSON line holding ``key`` (its log lines share stdout)."""
    while line := proc.stdout.readline():
        if line.startswith("{") and key in (data := json.loads(line)):
            return data
    raise RuntimeError("server exited")


def start_server(kind: str, port: int, *extra: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port), *extra],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    info: dict = {"path": "/hook"}
    if kind != "bare":
        info = read_json(proc, "path")
    deadline = time.monotonic() + 30
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


async def bench(args: argparse.Namespace, redis_url: str) -> None:
    from app.embedded import free_port as _free_port

    # Both servers stay up; phases alternate bare / ours for --rounds rounds, so load from other
    # processes on the machine hits both alike, and medians are reported.
    servers = {}
    gc_logs = {kind: tempfile.mktemp(prefix=f"gc-{kind}-") for kind in ("bare", "ours")}
    windows: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": []}  # latency phases (start, end)
    try:
        for kind in ("bare", "ours"):
            port = _free_port()
            proc, info = start_server(kind, port, "--redis-url", redis_url, "--gc-log", gc_logs[kind])
            servers[kind] = (port, proc, info["path"])
        needed = int(args.rounds * args.duration * (20000 + args.rate))
        bodies = make_bodies(needed, args.batch, 0)  # more than ours can take (bare reuses them)
        raws = {kind: [raw_request(path, b) for b in bodies] for kind, (_, _, path) in servers.items()}
        cursor = {"bare": 0, "ours": 0}  # ours must never see a body twice (it would be a cheap duplicate)
        rates: dict[str, list[float]] = {"bare": [], "ours": []}
        cpu_per_request: dict[str, list[float]] = {"bare": [], "ours": []}
        cpu_at_rate: dict[str, list[float]] = {"bare": [], "ours": []}
        latencies: dict[str, list[float]] = {"bare": [], "ours": []}
        errors = {"bare": 0, "ours": 0}
        for kind, (port, _, _) in servers.items():  # warm-up: imports, caches, connections
            await closed_loop(port, raws[kind][-300:], 8, 1.0)
        for _ in range(args.rounds):
            for kind, (port, proc, _) in servers.items():
                cpu_before = cpu_seconds(proc.pid)
                done, elapsed, failed = await closed_loop(port, raws[kind][cursor[kind]:], args.connections,
                                                          args.duration)
                cpu_per_request[kind].append((cpu_seconds(proc.pid) - cpu_before) / max(done, 1))
                if kind == "ours":  # the bare endpoint does not mind a body twice: it reuses them
                    cursor[kind] += done + failed
                rates[kind].append(done / elapsed)
                errors[kind] += failed
            for kind, (port, proc, _) in servers.items():
                cpu_before = cpu_seconds(proc.pid)
                window_start = time.time()
                sample, failed = await open_loop(port, raws[kind][cursor[kind]:], args.rate, args.duration)
                windows[kind].append((window_start, time.time()))
                cpu_at_rate[kind].append((cpu_seconds(proc.pid) - cpu_before) / max(len(sample), 1))
                if kind == "ours":
                    cursor[kind] += len(sample)
                latencies[kind] += sample
                errors[kind] += failed
    finally:
        for _, proc, _ in servers.values():
            stop(proc)
    print(f"\nwebhook acknowledgement: {args.batch} messages per delivery, {args.connections} connections, "
          f"{args.rounds} rounds of {args.duration:g} s per phase, medians")
    print(f"  {'':<6} {'deliveries/s':>13} {'messages/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  "
          f"(latency at {args.rate:g}/s)  errors")
    for kind in ("bare", "ours"):
        rate = statistics.median(rates[kind])
        sample = latencies[kind]
        print(f"  {kind:<6} {rate:>13.0f} {rate * args.batch:>11.0f} {pct(sample, .5):>8.2f} "
              f"{pct(sample, .99):>8.2f} {max(sample) * 1000:>8.2f}  {'':<20}  {errors[kind]}")
    ratio = statistics.median(rates["ours"]) / statistics.median(rates["bare"])
    p99 = pct(latencies["ours"], .99)
    cpu = {kind: statistics.median(values) for kind, values in cpu_per_request.items()}
    print(f"  server CPU per delivery: bare {cpu['bare'] * 1e3:.3f} ms, ours {cpu['ours'] * 1e3:.3f} ms "
          f"-> one dedicated core: bare {1 / cpu['bare']:.0f}/s, ours {1 / cpu['ours']:.0f}/s, "
          f"ours / bare = {cpu['bare'] / cpu['ours']:.0%} (independent of other load on the machine)")
    at_rate = {kind: statistics.median(values) for kind, values in cpu_at_rate.items()}
    print(f"  server CPU per delivery at {args.rate:g}/s: bare {at_rate['bare'] * 1e3:.3f} ms, "
          f"ours {at_rate['ours'] * 1e3:.3f} ms = {args.rate * at_rate['ours']:.0%} of one core busy for ours")
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
    print(f"  per-round rates: bare {', '.join(f'{r:.0f}' for r in rates['bare'])}; "
          f"ours {', '.join(f'{r:.0f}' for r in rates['ours'])}")
    print(f"  ours / bare = {ratio:.0%} (target >= 50 %: {'ok' if ratio >= .5 else 'MISSED'}); "
          f"p99 at {args.rate:g}/s = {p99:.2f} ms (target < 20 ms: {'ok' if p99 < 20 else 'MISSED'})")

    # End to end: POST -> stored event -> arq job -> ingestion -> messages collection. The jobs the
    # acknowledgement phase queued (no worker ran) belong to that server's database: drop them.
    import redis as sync_redis

    sync_redis.Redis.from_url(redis_url).flushall()
    port = _free_port()
    count = args.ingest // args.batch
    proc, info = start_server("ours", port, "--redis-url", redis_url, "--worker",
                              "--expect", str(count * args.batch))
    try:
        raws = [raw_request(info["path"], b) for b in make_bodies(count, args.batch, 10**7)]
        started = time.time()
        await closed_loop(port, raws, args.connections, 600)
        posted = time.time()
        stored = await asyncio.to_thread(read_json, proc, "stored")
        elapsed = stored["at"] - started
        print(f"\nend to end (worker inline, {'MongoDB' if os.environ.get('INBOX_MONGODB_URL') else 'in-memory Mongo'}): "
              f"{stored['stored']} messages in {count} deliveries stored in {elapsed:.2f} s = "
              f"{stored['stored'] / elapsed:.0f} stored messages/s (all acknowledged after {posted - started:.2f} s)")
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--batch", type=int, default=5, help="messages per webhook delivery")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--ingest", type=int, default=2000, help="messages for the end-to-end phase")
    parser.add_argument("--serve", choices=["bare", "ours"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--redis-url")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--gc-log")
    args = parser.parse_args()
    if args.serve == "bare":
        serve_bare(args.port)
        return
    if args.gc_log:
        from bench.sandbox import log_gc_pauses  # every pause over 5 ms, to explain latency outliers

        log_gc_pauses(args.gc_log)
    if args.serve == "ours":
        serve_ours(args.port, args.redis_url, args.worker, args.expect)
        return
    from app.embedded_redis import EmbeddedRedis

    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    try:
        asyncio.run(bench(args, redis.url))
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
