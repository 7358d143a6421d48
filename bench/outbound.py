"""Benchmark: N messages across K numbers through the real send path (API -> outbox -> arq -> sandbox).

The sandbox runs in its own process, like Meta. The web app and one arq worker share this
process (the in-memory database is per process, so they must), in two phases:

1. enqueue: N ``POST /api/v1/conversations/{id}/messages`` through the app (ASGI, in process),
   the worker stopped, so every number gets a backlog;
2. drain: the worker starts and sends everything; messages/s is measured from the sandbox's
   own ``accepted_at`` stamps (first to last), while the web side is idle.

Printed: enqueue rate, drain messages/s for the one worker process, the most messages any number
got in any 1-s window against its mps (from /sandbox/control/sent), utilisation of each number's
mps under backlog (middle of the run), the ratio to bench/sandbox.py's raw baseline measured
in the same run, CPU per message of both processes, GC pauses during the drain, the load
average, and whether each of issue 5's targets is met.

Before the drain, the objects that exist (the in-memory database's documents among them) are
frozen out of the garbage collector, as ``inbox run`` does once started; ``--no-freeze`` leaves
them in (a deployment keeps those documents in MongoDB, not in the worker's heap).

    .venv/bin/python bench/outbound.py [--n 12000] [--numbers 20] [--mps 60] [--recipients 50] [--profile DIR]

``--profile DIR`` samples this process (the worker) and the sandbox with py-spy during the drain
and prints their top costs (bench/pyspy.py). ``--mps 80`` (the account default; capacity 1,600
msg/s with 20 numbers) shows what one worker process does when capacity is not the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pyspy import recording, summarize
from bench.sandbox import (
    _SANDBOX,
    _cpu_seconds,
    _free_port,
    _process,
    log_gc_pauses,
    measure_baseline,
)

API_KEY = "bench-api-key-0123456789abcdefghijklmnopqrstuvwxyz"


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def utilisation(times: list[float], mps: int) -> float:
    """Sends per second over the middle of a number's run (its backlog), as a share of its mps."""
    times = sorted(times)
    if len(times) < 3 * mps:
        return (len(times) - 1) / max(times[-1] - times[0], 1e-9) / mps
    lo, hi = times[0] + 1.0, times[-1] - 1.0
    inside = [t for t in times if lo <= t <= hi]
    return len(inside) / (hi - lo) / mps


async def run(n: int, numbers: int, mps: int, recipients: int, concurrency: int, sandbox_url: str,
              sandbox_pid: int | None = None, profile: Path | None = None, gc_log: str | None = None,
              freeze: bool = True, dump: Path | None = None) -> dict[str, Any]:
    from app.config import Settings
    from app.db import utcnow
    from app.domains.accounts.services import NewAccount
    from app.domains.contacts.services import ContactService
    from app.domains.conversations.models import MessagePreview
    from app.domains.conversations.services import ConversationService
    from app.domains.workspaces.models import Workspace
    from app.embedded_redis import EmbeddedRedis
    from app.main import create_app
    from workers.settings import build_worker

    control = httpx.AsyncClient(base_url=sandbox_url, timeout=60)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis", persist=False) as redis_server:
        settings = Settings(_env_file=None, redis_url=redis_server.url, secret_key=SecretStr("b" * 48),
                            data_dir=Path(tmp), graph_api_url=f"{sandbox_url}/sandbox/graph",
                            admin_email="bench@example.com", admin_password=SecretStr("bench password 123"),
                            admin_api_key=SecretStr(API_KEY), log_level="WARNING", api_rate_limit_per_minute=10_000_000)
        app = create_app(settings)
        runtime = app.state.runtime
        await runtime.start()
        # A deployed worker's sweeper has marked this Redis as holding the outbox long before any
        # send; without it, the worker started after the enqueue phase would rebuild every lane.
        await runtime.outbox.queue.mark_epoch()
        try:
            workspace = await Workspace.find_one({})
            accounts, conversations = [], []
            for k in range(numbers):
                pnid = f"77{k:04d}"
                answer = await control.post("/sandbox/control/numbers", json={
                    "phone_number_id": pnid, "waba_id": f"66{k:04d}", "display_phone_number": f"+1555300{k:04d}",
                    "access_token": f"bench-token-{k}", "app_secret": "s", "mps": mps})
                answer.raise_for_status()
                account = await runtime.accounts.create(workspace.id, NewAccount(
                    name=f"Bench {k}", phone_number_id=pnid, waba_id=f"66{k:04d}",
                    display_phone_number=f"+1555300{k:04d}", access_token=f"bench-token-{k}", app_secret="s", mps=mps))
                accounts.append(account)
                for r in range(recipients):
                    contact, _ = await ContactService().upsert(workspace.id, wa_id=f"1556{k:03d}{r:05d}")
                    conversation, _ = await ConversationService().open_for(workspace.id, account.id, contact.id)
                    await ConversationService().record_inbound(conversation, utcnow(), MessagePreview(text="hi"))
                    conversations.append(conversation)
            transport = httpx.ASGITransport(app=app)
            api = httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60,
                                    headers={"Authorization": f"Bearer {API_KEY}"})
            counter = iter(range(n))
            failures = 0

            async def post_messages() -> None:
                nonlocal failures
                for i in counter:
                    conversation = conversations[(i % numbers) * recipients + (i // numbers) % recipients]
                    answer = await api.post(f"/api/v1/conversations/{conversation.id}/messages",
                                            json={"type": "text", "content": {"body": f"bench {i}"}, "priority": "bulk"})
                    failures += answer.status_code != 202

            started = time.perf_counter()
            await asyncio.gather(*(post_messages() for _ in range(concurrency)))
            enqueue_s = time.perf_counter() - started
            if freeze:
                # As `inbox run` does once started (app/main.py): what exists now leaves the
                # collector's sight. Here that includes the in-memory database's documents (the
                # queued messages, contacts, conversations), which a deployment keeps in MongoDB,
                # outside the worker's heap; unfrozen, every full collection walks them
                # (pauses of 100-300 ms in the drain, seen as gaps in every number's sends).
                gc.collect()
                gc.freeze()
            worker = build_worker(runtime, handle_signals=False, owns_runtime=False)
            with contextlib.ExitStack() as profiling:
                if profile is not None:
                    profiling.enter_context(recording(os.getpid(), profile / "worker.raw"))
                    if sandbox_pid:
                        profiling.enter_context(recording(sandbox_pid, profile / "sandbox.raw"))
                cpu_before = (_cpu_seconds(os.getpid()), _cpu_seconds(sandbox_pid) if sandbox_pid else None)
                log_gc_pauses(gc_log)
                drain_span = [time.time()]
                drain_started = time.perf_counter()
                task = asyncio.create_task(worker.async_run())
                total = 0
                while total < n - failures and time.perf_counter() - drain_started < 600:
                    await asyncio.sleep(0.2)
                    total = _accepted_so_far()
                drain_wall = time.perf_counter() - drain_started
                drain_span.append(time.time())
                cpu_after = (_cpu_seconds(os.getpid()), _cpu_seconds(sandbox_pid) if sandbox_pid else None)
            # arq's close() cancels running jobs and re-raises their CancelledError (see app/main.py).
            await asyncio.gather(worker.close(), return_exceptions=True)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            sent = (await control.get("/sandbox/control/sent")).json()["data"]
            per_number: dict[str, list[float]] = {}
            for account in accounts:
                rows = (await control.get("/sandbox/control/sent",
                                          params={"phone_number_id": account.phone_number_id})).json()["data"]
                per_number[account.phone_number_id] = [r["accepted_at"] for r in rows]
            await api.aclose()
        finally:
            await runtime.stop()
    await control.aclose()
    from prometheus_client import REGISTRY

    counters = {}
    for metric in REGISTRY.collect():
        if metric.name in ("inbox_send_window_waits", "inbox_send_retries", "inbox_circuit_opened"):
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    label = ",".join(f"{k}={v}" for k, v in sample.labels.items())
                    counters[f"{metric.name}{'{' + label + '}' if label else ''}"] = int(sample.value)
    times = sorted(s["accepted_at"] for s in sent)
    drain_s = times[-1] - times[0] if len(times) > 1 else 0.0
    windows = {pnid: max_in_window(t) for pnid, t in per_number.items() if t}
    utils = [utilisation(t, mps) for t in per_number.values() if len(t) > 1]
    if dump is not None:
        dump.write_text(json.dumps(per_number))
    return {
        "drain_span": drain_span, "n": n, "numbers": numbers, "mps_per_number": mps, "api_failures": failures,
        "enqueue_msgs_per_s": round(n / enqueue_s, 1),
        "accepted": len(sent), "drain_wall_s": round(drain_wall, 2),
        "drain_msgs_per_s": round((len(times) - 1) / drain_s, 1) if drain_s else 0.0,
        "max_in_any_1s_window": max(windows.values()) if windows else 0,
        "windows_over_mps": sum(1 for pnid, t in per_number.items() for c in _window_counts(t) if c > mps),
        "utilisation_min": round(min(utils), 3) if utils else 0.0,
        "utilisation_median": round(statistics.median(utils), 3) if utils else 0.0,
        "counters": counters,
        # CPU time per accepted message during the drain: unlike messages/s, it barely depends on
        # what else the machine runs (the drain's wall time does).
        "worker_cpu_ms_per_msg": _per_msg(cpu_before[0], cpu_after[0], len(sent)),
        "sandbox_cpu_ms_per_msg": _per_msg(cpu_before[1], cpu_after[1], len(sent)),
    }


def _per_msg(before: float | None, after: float | None, count: int) -> float | None:
    if before is None or after is None or not count:
        return None
    return round(1000 * (after - before) / count, 3)


def _accepted_so_far() -> int:
    """Sends the worker saw accepted (its own counter): polling the sandbox's full list every
    half second would cost both processes CPU in the middle of the measurement."""
    from app.metrics import SENDS

    return int(sum(s.value for m in SENDS.collect() for s in m.samples
                   if s.name.endswith("_total") and s.labels.get("result") == "accepted"))


def _gc_summary(logs: dict[str, str], start: float, end: float) -> str:
    parts = []
    for name, path in logs.items():
        pauses = []
        with contextlib.suppress(OSError), open(path) as lines:
            pauses = [float(ms) for at, _, ms in (line.split() for line in lines) if start <= float(at) <= end]
        parts.append(f"{name} {len(pauses)} (max {max(pauses, default=0):.0f} ms, total {sum(pauses):.0f} ms)")
    return "; ".join(parts)


def _window_counts(times: list[float]) -> list[int]:
    """For each send, how many sends the 1-s window ending at it holds (Meta's check)."""
    times = sorted(times)
    counts, start = [], 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        counts.append(end - start + 1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12_000)
    parser.add_argument("--numbers", type=int, default=20)
    parser.add_argument("--mps", type=int, default=60)
    parser.add_argument("--recipients", type=int, default=50, help="conversations per number")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent API clients while enqueueing")
    parser.add_argument("--baseline-n", type=int, default=20_000)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the worker's event loop; `inbox run` serves through uvicorn, which picks uvloop")
    parser.add_argument("--profile", type=Path, default=None, help="directory for py-spy profiles of the drain")
    parser.add_argument("--no-freeze", action="store_true",
                        help="leave the objects made before the drain (the in-memory database) to the GC")
    parser.add_argument("--dump", type=Path, default=None, help="write each number's send times (JSON) here")
    args = parser.parse_args()
    baseline = measure_baseline(args.baseline_n, 64)
    print(f"sandbox baseline: {baseline['msgs_per_s']} accepted sends/s (raw httpx, concurrency 64)", flush=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    gc_dir = tempfile.mkdtemp(prefix="bench-gc-")
    gc_logs = {"worker": os.path.join(gc_dir, "worker"), "sandbox": os.path.join(gc_dir, "sandbox")}
    os.environ["BENCH_GC_LOG"] = gc_logs["sandbox"]
    with _process(_SANDBOX.format(port=port), f"{url}/sandbox/control/numbers") as sandbox:
        del os.environ["BENCH_GC_LOG"]
        main_coro = run(args.n, args.numbers, args.mps, args.recipients, args.concurrency, url, sandbox.pid,
                        args.profile, gc_logs["worker"], not args.no_freeze, args.dump)
        if args.loop == "uvloop":
            import uvloop

            result = uvloop.run(main_coro)
        else:
            result = asyncio.run(main_coro)
    ratio = result["drain_msgs_per_s"] / baseline["msgs_per_s"] if baseline["msgs_per_s"] else 0.0
    capacity = args.numbers * args.mps
    print(f"enqueue (API -> outbox):       {result['enqueue_msgs_per_s']} msg/s ({result['api_failures']} refused)")
    print(f"drain, 1 worker process:       {result['drain_msgs_per_s']} msg/s across {args.numbers} numbers "
          f"(capacity {capacity} msg/s; {result['accepted']}/{args.n} accepted in {result['drain_wall_s']} s)")
    print(f"ratio to sandbox baseline:     {ratio:.2f}")
    print(f"max in any 1-s window:         {result['max_in_any_1s_window']} (mps {args.mps}); "
          f"windows over mps: {result['windows_over_mps']}")
    print(f"worker counters:               {result['counters']}")
    print(f"utilisation under backlog:     min {result['utilisation_min']:.1%}, median {result['utilisation_median']:.1%}")
    print(f"worker event loop:             {args.loop}")
    print(f"CPU per message (drain):       worker {result['worker_cpu_ms_per_msg']} ms, "
          f"sandbox {result['sandbox_cpu_ms_per_msg']} ms")
    print(f"GC pauses > 5 ms (drain):      {_gc_summary(gc_logs, *result['drain_span'])}")
    print(f"load average (1, 5, 15 min):   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"GC before the drain:           {'left alone (--no-freeze)' if args.no_freeze else 'objects frozen (as inbox run does)'}")
    print("targets (issue 5):")
    checks = [
        (">= 1,000 msg/s per worker process across >= 20 numbers",
         f"{result['drain_msgs_per_s']} msg/s, {args.numbers} numbers",
         result["drain_msgs_per_s"] >= 1000 and args.numbers >= 20),
        (">= 50 % of the sandbox baseline", f"{ratio:.0%}", ratio >= 0.5),
        ("0 windows over any number's mps", str(result["windows_over_mps"]), result["windows_over_mps"] == 0),
        (">= 95 % utilisation under backlog (every number)", f"min {result['utilisation_min']:.1%}",
         result["utilisation_min"] >= 0.95),
    ]
    for name, measured, met in checks:
        print(f"  {name:<56} {measured:<24} {'met' if met else 'NOT MET'}")
    if args.profile is not None:
        for name in ("worker.raw", "sandbox.raw"):
            print(summarize(args.profile / name))


if __name__ == "__main__":
    main()
