"""Benchmark: how many accepted sends per second the Cloud API sandbox alone sustains.

Starts the sandbox in its own process (uvicorn, no access log) so the load generator does
not share its CPU, registers numbers with an unlimited messages-per-second, then drives
``POST /{phone_number_id}/messages`` with a raw aiohttp session at a fixed concurrency: the
cheapest client at hand, so the figure is the sandbox's (driven by httpx at 64 connections, it
was httpx's: ~420 sends/s here, against ~2,400 with aiohttp). ``measure_baseline(n,
concurrency)`` is what the outbound benchmark imports to compare the whole product against the
sandbox's own ceiling.

    .venv/bin/python bench/sandbox.py [--n 20000] [--concurrency 64] [--webhooks]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
NUMBERS = 4
TOKEN = "bench-token"

# The sandbox's startup objects are frozen out of the GC, as `inbox run` does for its own (app/main.py):
# its full collections then walk only what it stored since (sends, webhooks), not Litestar's ~100 k objects.
_SANDBOX = (
    "import gc, os, uvicorn; from app.sandbox import create_sandbox_app; from bench.sandbox import log_gc_pauses; "
    "log_gc_pauses(os.environ.get('BENCH_GC_LOG')); app = create_sandbox_app(); gc.collect(); gc.freeze(); "
    "uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning', access_log=False)"
)
# A webhook receiver that answers 200 to everything, for --webhooks.
_SINK = (
    "import uvicorn\n"
    "async def app(scope, receive, send):\n"
    "    if scope['type'] != 'http': return\n"
    "    while (await receive()).get('more_body'): pass\n"
    "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
    "    await send({'type': 'http.response.body', 'body': b''})\n"
    "uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning', access_log=False, lifespan='off')\n"
)


def log_gc_pauses(path: str | None) -> None:
    """Append every garbage-collector pause over 5 ms to ``path`` ("time generation ms" lines): a
    pause in the sandbox delays the stamps of the sends it holds, which the outbound drainer's
    window check then has to allow for."""
    if not path:
        return
    import gc

    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif (pause := time.perf_counter() - started[0]) > 0.005:
            with open(path, "a") as out:
                out.write(f"{time.time():.3f} {info['generation']} {pause * 1000:.1f}\n")

    gc.callbacks.append(callback)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def wait_live(url: str, procs: list[subprocess.Popen[bytes]], what: str, timeout: float = 60.0) -> None:
    """Until ``url`` answers 200 (``/health/live`` of a started `inbox web`); RuntimeError if a process
    of ``procs`` ended or the time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


@contextlib.contextmanager
def _process(code: str, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(ready_url, timeout=0.5)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"benchmark server did not start: {code[:60]}...") from None
                time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _drive(base: str, n: int, concurrency: int, webhook_url: str | None, server_pid: int | None = None
                 ) -> dict[str, Any]:
    load = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                 timeout=aiohttp.ClientTimeout(total=30), cookie_jar=aiohttp.DummyCookieJar())
    async with httpx.AsyncClient(base_url=base, timeout=30) as client, load:
        for i in range(NUMBERS):
            response = await client.post("/sandbox/control/numbers", json={
                "phone_number_id": f"90000{i}", "waba_id": "80000", "display_phone_number": f"+1 555 010 000{i}",
                "access_token": TOKEN, "app_secret": "bench-secret", "webhook_url": webhook_url,
                "mps": 1_000_000, "delivered_after_ms": 50, "read_after_ms": 200})
            response.raise_for_status()
        # Enough recipients that the default 45-message burst per recipient never bites; each
        # writes first, so its 24-h window is open and sends go sent -> delivered -> read.
        recipients = [f"+1555{7000000 + i}" for i in range(max(1000, n // 20))]
        for i, recipient in enumerate(recipients):
            response = await client.post("/sandbox/control/inbound", json={
                "phone_number_id": f"90000{i % NUMBERS}", "from": recipient, "name": f"Customer {i}",
                "message": {"type": "text", "text": {"body": "hi"}}})
            response.raise_for_status()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        latencies: list[float] = []
        errors = 0
        counter = iter(range(n))

        async def worker(k: int, record: bool) -> None:
            nonlocal errors
            for i in counter:
                j = i % len(recipients)  # recipient j wrote to number j % NUMBERS
                body = {"messaging_product": "whatsapp", "to": recipients[j], "type": "text",
                        "text": {"body": f"bench message {i}"}}
                started = time.perf_counter()
                async with load.post(f"{base}/sandbox/graph/v23.0/90000{j % NUMBERS}/messages", json=body,
                                     headers=headers) as response:
                    await response.read()
                if record:
                    latencies.append(time.perf_counter() - started)
                    errors += response.status != 200

        warmup = iter(range(min(500, n)))
        counter, real = warmup, counter  # warm connections and code paths, unmeasured
        await asyncio.gather(*(worker(k, False) for k in range(concurrency)))
        counter = real
        await client.delete("/sandbox/control/sent")
        cpu_before = _cpu_seconds(server_pid) if server_pid else None
        started = time.perf_counter()
        await asyncio.gather(*(worker(k, True) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
        if webhook_url is not None:  # let the delayed statuses go out: their cost belongs to the sends
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if (await client.get("/sandbox/control/deliveries")).json()["pending"] == 0:
                    break
                await asyncio.sleep(0.05)
        cpu_after = _cpu_seconds(server_pid) if server_pid else None
    accepted = len(latencies) - errors
    return {
        "n": n, "concurrency": concurrency, "accepted": accepted, "errors": errors, "elapsed_s": round(elapsed, 3),
        "msgs_per_s": round(accepted / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else 0.0,
        "webhooks": webhook_url is not None,
        # CPU the sandbox process spent per accepted send: unlike sends/s, this barely
        # moves when other processes compete for the machine.
        "server_cpu_ms_per_send": round((cpu_after - cpu_before) * 1000 / accepted, 3)
        if cpu_before is not None and cpu_after is not None and accepted else None,
    }


def measure_baseline(n: int = 20_000, concurrency: int = 64, *, webhooks: bool = False) -> dict[str, Any]:
    """Accepted sends/s and latency of the sandbox alone (in its own process).

    With ``webhooks`` the numbers post their sent/delivered/read statuses to a sink
    process, so the figure includes the sandbox's webhook delivery work.
    """
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        webhook_url = None
        if webhooks:
            sink_port = _free_port()
            stack.enter_context(_process(_SINK.replace("{port}", str(sink_port)), f"http://127.0.0.1:{sink_port}/"))
            webhook_url = f"http://127.0.0.1:{sink_port}/hook"
        server = stack.enter_context(_process(_SANDBOX.replace("{port}", str(port)),
                                              f"{base}/sandbox/control/numbers"))
        return asyncio.run(_drive(base, n, concurrency, webhook_url, server.pid))


def _print(result: dict[str, Any]) -> None:
    label = "with status webhooks" if result["webhooks"] else "webhooks off"
    print(f"sandbox baseline ({label}): {result['accepted']} accepted sends of {result['n']}, "
          f"concurrency {result['concurrency']}, {result['errors']} errors")
    print(f"  throughput : {result['msgs_per_s']:>8.1f} accepted sends/s  ({result['elapsed_s']} s)")
    print(f"  latency    : p50 {result['p50_ms']:.2f} ms   p99 {result['p99_ms']:.2f} ms   "
          f"mean {result['mean_ms']:.2f} ms")
    if result["server_cpu_ms_per_send"] is not None:
        per_send = result["server_cpu_ms_per_send"]
        print(f"  server CPU : {per_send:.3f} ms per accepted send (ceiling ~{1000 / per_send:.0f} sends/s per core)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--webhooks", action="store_true", help="also deliver status webhooks to a sink")
    args = parser.parse_args()
    _print(measure_baseline(args.n, args.concurrency, webhooks=args.webhooks))


if __name__ == "__main__":
    main()
