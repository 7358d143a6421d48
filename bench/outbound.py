"""Benchmark of the send path: what an agent's send and its statuses cost, and what an idle worker asks of Redis.

    .venv/bin/python bench/outbound.py [--samples 20] [--n 200] [--numbers 4] [--mps 80] [--recipients 20]
                                       [--concurrency 8] [--idle 5] [--profile DIR]

The process tree: this process (the client) starts its own Redis, the database (INBOX_MONGODB_URL
when set, else an embedded SecantusDB server) and the Cloud API sandbox in its own process (as Meta
is), and seeds, through the product's services: one workspace with an API key, ``--numbers`` numbers
(registered in the sandbox at ``--mps`` messages per second, without a webhook URL: the statuses
come from this script, phase 4) and ``--recipients`` conversations per number whose customer wrote
(the 24-hour window is open). Then `inbox web` and `inbox worker` run as child processes, exactly
as deployed, counted by bench/counting.py (``python bench/counting.py web|worker``).

0. Warm-up, not counted: one send to each number and one status webhook for it, then a wait until
   every number's drainer has let its number go. What a process pays once in its life (loading
   the Lua scripts into Redis, opening connections, its first copy of each number) is not a
   message's cost; a number's activation (the dispatcher's wait, the drainer's claim) still is,
   in phase 2, since each number starts there without a drainer.
1. Idle (``--idle`` s): what the idle worker and web process ask of Redis per second.
2. Sends one at a time (``--samples``): ``POST /api/v1/conversations/{id}/messages`` (a text, agent
   priority), then wait until the worker has stored it as accepted (its ``message.updated`` live
   event); latency API call -> Graph accepted (the sandbox's stamp) and -> stored.
3. Sends under load (``--n`` over ``--concurrency`` API clients, round robin over the conversations):
   throughput API -> accepted and stored, latency, and the most sends any number got in any 1-s
   window against its mps (the sandbox's log; Meta's check).
4. Statuses: a ``sent``, then ``delivered``, then ``read`` webhook for every message sent (one status
   per webhook, signed with the number's app secret, over ``--concurrency`` connections), each kind
   done when every message's live event says so.

Printed per send and per status: MongoDB operations by kind (and by collection), Redis commands
(INFO commandstats) and round trips, CPU ms of our processes (web + worker; the sandbox's, the
database's and Redis's apart): these do not depend on the database's speed. Then throughput and
latency on the database used, and the targets. ``--profile DIR`` records py-spy profiles of the web
and worker processes during phase 3 (bench/pyspy.py; ``.venv/bin/pip install py-spy``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import counting  # noqa: E402
from bench.counting import Counted, LiveFeed, Meter, percentile  # noqa: E402
from bench.pyspy import recording, summarize  # noqa: E402
from bench.sandbox import _SANDBOX, _free_port, _process, wait_live  # noqa: E402
from bench.webhooks import closed_loop  # noqa: E402

API_KEY = "bench-api-key-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = "b" * 48
APP_SECRET = "bench-outbound-app-secret"

TARGET_SEND_OPS = 5
TARGET_STATUS_OPS = 2
TARGET_SEND_ROUND_TRIPS = 5
TARGET_IDLE_CALLS = 20


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def windows_over(times: list[float], mps: int) -> int:
    """Sends at which the 1-s window ending there held more than ``mps`` sends (Meta's check)."""
    times = sorted(times)
    over, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        over += end - start + 1 > mps
    return over


# ---- setup, in this process, through the product's services --------------------------------------------

async def seed(args: argparse.Namespace, env: dict[str, str], sandbox_url: str) -> dict[str, Any]:
    from app.config import Settings
    from app.db import utcnow
    from app.domains.accounts.services import NewAccount
    from app.domains.contacts.services import ContactService
    from app.domains.conversations.models import MessagePreview
    from app.domains.conversations.services import ConversationService
    from app.domains.workspaces.models import Workspace
    from app.logging import configure_logging
    from app.runtime import Runtime

    configure_logging("WARNING")
    settings = Settings(_env_file=None, mongodb_url=env["INBOX_MONGODB_URL"],
                        mongodb_database=env["INBOX_MONGODB_DATABASE"], redis_url=env["INBOX_REDIS_URL"],
                        secret_key=SecretStr(SECRET_KEY), data_dir=Path(env["INBOX_DATA_DIR"]),
                        graph_api_url=env["INBOX_GRAPH_API_URL"], admin_email="bench@example.com",
                        admin_password=SecretStr("bench password 123"), admin_api_key=SecretStr(API_KEY),
                        log_level="WARNING")
    runtime = Runtime(settings)
    await runtime.start()
    accounts, conversations = [], []
    try:
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=60) as control:
            workspace = await Workspace.find_one({})
            for k in range(args.numbers):
                pnid = f"77{k:04d}"
                answer = await control.post("/sandbox/control/numbers", json={
                    "phone_number_id": pnid, "waba_id": f"66{k:04d}", "display_phone_number": f"+1555300{k:04d}",
                    "access_token": f"bench-token-{k}", "app_secret": APP_SECRET, "mps": args.mps})
                answer.raise_for_status()
                account = await runtime.accounts.create(workspace.id, NewAccount(
                    name=f"Bench {k}", phone_number_id=pnid, waba_id=f"66{k:04d}",
                    display_phone_number=f"+1555300{k:04d}", access_token=f"bench-token-{k}",
                    app_secret=APP_SECRET, mps=args.mps))
                accounts.append({"phone_number_id": pnid, "waba_id": f"66{k:04d}",
                                 "display": f"1555300{k:04d}", "path": f"/webhooks/whatsapp/{account.webhook_key}"})
                for r in range(args.recipients):
                    contact, _ = await ContactService().upsert(workspace.id, wa_id=f"1556{k:03d}{r:05d}")
                    conversation, _ = await ConversationService().open_for(workspace.id, account.id, contact.id)
                    await ConversationService().record_inbound(conversation, utcnow(), MessagePreview(text="hi"))
                    conversations.append(str(conversation.id))
    finally:
        await runtime.stop()
    # Round robin over the numbers first, then over each number's customers.
    ordered = [conversations[k * args.recipients + r] for r in range(args.recipients) for k in range(args.numbers)]
    return {"accounts": accounts, "conversations": ordered}


def start_inbox(kind: str, env: dict[str, str], *extra: str) -> Counted:
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "counting.py"), kind, *extra], env=env, cwd=ROOT,
                            stderr=counting.log_file(kind),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return Counted(kind, proc)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---- the client ------------------------------------------------------------------------------------------

class Sender:
    """API sends; each message's send time (epoch and perf_counter) by its body text."""

    def __init__(self, api: httpx.AsyncClient, conversations: list[str]) -> None:
        self.api, self.conversations = api, conversations
        self.started: dict[str, tuple[float, float]] = {}
        self.refused = 0
        self.count = 0

    async def send(self) -> None:
        i = self.count
        self.count += 1
        body = f"bench send {i}"
        conversation = self.conversations[i % len(self.conversations)]
        self.started[body] = (time.time(), time.perf_counter())
        answer = await self.api.post(f"/api/v1/conversations/{conversation}/messages",
                                     json={"type": "text", "content": {"body": body}})
        if answer.status_code != 202:
            self.refused += 1
            if self.refused == 1:
                print(f"  (a send was refused: {answer.status_code} {answer.text[:200]})")


def status_request(account: dict[str, str], row: dict[str, Any], status: str) -> bytes:
    from app.whatsapp.signature import sign

    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": account["waba_id"], "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": account["display"], "phone_number_id": account["phone_number_id"]},
            "statuses": [{"id": row["wamid"], "status": status, "timestamp": str(int(time.time())),
                          "recipient_id": row["to"]}]}}]}]}, separators=(",", ":")).encode()
    head = (f"POST {account['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {sign(APP_SECRET, body)}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def warm_up(api: httpx.AsyncClient, redis_url: str, web_port: int, sandbox_url: str, feed: LiveFeed,
                  seeded: dict[str, Any]) -> None:
    """Phase 0 (see the module docstring)."""
    from redis.asyncio import Redis

    accounts = seeded["accounts"]
    seen = feed.counts["message.updated:accepted"]
    for k, conversation in enumerate(seeded["conversations"][:len(accounts)]):  # one per number
        answer = await api.post(f"/api/v1/conversations/{conversation}/messages",
                                json={"type": "text", "content": {"body": f"bench warm-up {k}"}})
        answer.raise_for_status()
    if not await feed.wait("message.updated:accepted", seen + len(accounts), timeout=60):
        raise RuntimeError("the warm-up sends were not accepted within 60 s")
    log = await sent_log(sandbox_url, [a["phone_number_id"] for a in accounts])
    by_number = {a["phone_number_id"]: a for a in accounts}
    seen = feed.counts["message.updated:sent"]
    raws = [status_request(by_number[pnid], row, "sent") for pnid, rows in log.items() for row in rows]
    await closed_loop(web_port, raws, 1, 60)
    if not await feed.wait("message.updated:sent", seen + len(raws), timeout=60):
        raise RuntimeError("the warm-up statuses were not applied within 60 s")
    redis = Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 60
        while await redis.keys("inbox:ob:*:lease") and time.monotonic() < deadline:  # the drainers' linger
            await asyncio.sleep(0.2)
    finally:
        await redis.aclose()


def bench_rows(log: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The sandbox's log without the warm-up's sends."""
    return {pnid: [r for r in rows if r["body"]["text"]["body"].startswith("bench send")] for pnid, rows in log.items()}


async def sent_log(sandbox_url: str, numbers: list[str]) -> dict[str, list[dict[str, Any]]]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=60) as control:
        return {pnid: (await control.get("/sandbox/control/sent", params={"phone_number_id": pnid})).json()["data"]
                for pnid in numbers}


async def run(args: argparse.Namespace, env: dict[str, str], sandbox_url: str, web_port: int,
              web: Counted, worker: Counted, others: dict[str, int | None], seeded: dict[str, Any]) -> dict[str, Any]:
    feed = await LiveFeed(env["INBOX_REDIS_URL"]).start()
    meter = Meter(env["INBOX_REDIS_URL"], [web, worker], others)
    ours = ["web", "worker"]
    figures: dict[str, Any] = {}
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=60,
                            headers={"Authorization": f"Bearer {API_KEY}"},
                            limits=httpx.Limits(max_connections=args.concurrency))
    sender = Sender(api, seeded["conversations"])
    try:
        await asyncio.sleep(2.0)  # the worker's startup sweeps
        await warm_up(api, env["INBOX_REDIS_URL"], web_port, sandbox_url, feed, seeded)
        print(f"idle `inbox worker` and `inbox web` for {args.idle:g} s:")
        idle = await meter.idle(args.idle)
        counting.idle_report(idle)
        figures["idle_worker_calls"] = sum(idle.trips["worker"].values()) / idle.seconds

        # 2. one at a time
        stored_at: dict[int, float] = {}
        with meter.phase() as got:
            for k in range(args.samples):
                seen = feed.counts["message.updated:accepted"]
                await sender.send()
                if not await feed.wait("message.updated:accepted", seen + 1, timeout=60):
                    raise RuntimeError("a send was not accepted within 60 s")
                stored_at[k] = feed.last["message.updated:accepted"]
            await meter.settle()
        print(f"per agent send, one at a time ({args.samples} sends; API -> outbox -> worker -> Graph accepted -> "
              f"stored as accepted):")
        figures["send"] = counting.report(got[0], args.samples, "send", ours, idle)
        log = await sent_log(sandbox_url, [a["phone_number_id"] for a in seeded["accounts"]])
        accepted_at = {row["body"]["text"]["body"]: row["accepted_at"] for rows in log.values() for row in rows}
        to_graph = [(accepted_at[f"bench send {k}"] - sender.started[f"bench send {k}"][0]) * 1000
                    for k in range(args.samples) if f"bench send {k}" in accepted_at]
        to_stored = [(stored_at[k] - sender.started[f"bench send {k}"][1]) * 1000 for k in stored_at]
        print(f"  latency              API call -> Graph accepted: p50 {percentile(to_graph, .5):.0f} ms, "
              f"p95 {percentile(to_graph, .95):.0f} ms; -> stored as accepted: p50 {percentile(to_stored, .5):.0f} ms, "
              f"p95 {percentile(to_stored, .95):.0f} ms")

        # 3. under load
        first = sender.count
        with contextlib.ExitStack() as profiling:
            if args.profile is not None:
                profiling.enter_context(recording(web.pid, args.profile / "web.raw"))
                profiling.enter_context(recording(worker.pid, args.profile / "worker.raw"))
            with meter.phase() as got:
                seen = feed.counts["message.updated:accepted"]
                started = time.perf_counter()
                remaining = iter(range(args.n))

                async def client() -> None:
                    for _ in remaining:
                        await sender.send()

                await asyncio.gather(*(client() for _ in range(args.concurrency)))
                api_s = time.perf_counter() - started
                expected = args.n - sender.refused
                if not await feed.wait("message.updated:accepted", seen + expected, timeout=600):
                    print(f"  (only {feed.counts['message.updated:accepted'] - seen} of {expected} sends "
                          f"stored as accepted within 600 s)")
                done = feed.counts["message.updated:accepted"] - seen
                elapsed = feed.last["message.updated:accepted"] - started
                await meter.settle()
        print(f"per agent send under load ({args.n} sends over {args.concurrency} API clients, "
              f"{args.numbers} numbers x {args.recipients} conversations):")
        figures["send_load"] = counting.report(got[0], done, "send", ours, idle)
        log = bench_rows(await sent_log(sandbox_url, [a["phone_number_id"] for a in seeded["accounts"]]))
        rows = [row for rows in log.values() for row in rows]
        accepted_at = {row["body"]["text"]["body"]: row["accepted_at"] for row in rows}
        latencies = [(accepted_at[b] - sender.started[b][0]) * 1000 for b in (f"bench send {i}" for i in
                     range(first, sender.count)) if b in accepted_at]
        print(f"  throughput           {done / elapsed:.0f} sends/s API -> stored as accepted ({done} in {elapsed:.2f} s; "
              f"the API took them at {args.n / api_s:.0f}/s; {sender.refused} refused)")
        print(f"  latency              API call -> Graph accepted: p50 {percentile(latencies, .5):.0f} ms, "
              f"p95 {percentile(latencies, .95):.0f} ms, max {max(latencies, default=0):.0f} ms")
        times = {pnid: [r["accepted_at"] for r in rows] for pnid, rows in log.items()}
        figures["over_mps"] = sum(windows_over(t, args.mps) for t in times.values())
        print(f"  most sends in any 1-s window of one number: {max(max_in_window(t) for t in times.values())} "
              f"(mps {args.mps}); sends over a number's mps in their window: {figures['over_mps']}")

        # 4. statuses
        by_number = {a["phone_number_id"]: a for a in seeded["accounts"]}
        figures["status"] = {}
        for status in ("sent", "delivered", "read"):
            raws = [status_request(by_number[pnid], row, status) for pnid, rows in log.items() for row in rows]
            key = f"message.updated:{status}"
            with meter.phase() as got:
                seen = feed.counts[key]
                started = time.perf_counter()
                await closed_loop(web_port, raws, args.concurrency, 3600)
                if not await feed.wait(key, seen + len(raws), timeout=600):
                    print(f"  (only {feed.counts[key] - seen} of {len(raws)} {status!r} statuses applied within 600 s)")
                done = feed.counts[key] - seen
                elapsed = feed.last.get(key, started) - started
                await meter.settle()
            print(f"per status webhook '{status}' ({len(raws)}, one status per webhook, over {args.concurrency} "
                  f"connections; webhook -> message updated -> live event):")
            figures["status"][status] = counting.report(got[0], done, "status", ours, idle)
            print(f"  throughput           {done / elapsed:.0f} statuses/s")
    finally:
        await api.aclose()
        await feed.stop()
        meter.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20, help="sends one at a time")
    parser.add_argument("--n", type=int, default=200, help="sends under load")
    parser.add_argument("--numbers", type=int, default=4)
    parser.add_argument("--mps", type=int, default=80, help="each number's messages per second (Meta's default)")
    parser.add_argument("--recipients", type=int, default=20, help="conversations per number")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent API clients / webhook connections")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of the idle phase")
    parser.add_argument("--profile", type=Path, default=None, help="directory for py-spy profiles of phase 3")
    args = parser.parse_args()
    from app.embedded_redis import EmbeddedRedis

    tmp = Path(tempfile.mkdtemp(prefix="bench-outbound-"))
    sandbox_port, web_port = _free_port(), _free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, True)  # last, once every server has stopped
        redis = stack.enter_context(EmbeddedRedis(tmp / "redis", persist=False))
        db = stack.enter_context(counting.database(tmp))
        counting.headline("outbound benchmark", db)
        sandbox = stack.enter_context(_process(_SANDBOX.format(port=sandbox_port),
                                               f"{sandbox_url}/sandbox/control/numbers"))
        database = counting.database_name("outbound")
        stack.callback(counting.drop_databases, db, [database])
        env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")}
        env.update({"INBOX_MONGODB_URL": db.url, "INBOX_MONGODB_DATABASE": database, "INBOX_REDIS_URL": redis.url,
                    "INBOX_SECRET_KEY": SECRET_KEY, "INBOX_DATA_DIR": str(tmp / "data"),
                    "INBOX_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
                    "INBOX_GRAPH_API_URL": f"{sandbox_url}/sandbox/graph", "INBOX_LOG_LEVEL": "WARNING",
                    "INBOX_API_RATE_LIMIT_PER_MINUTE": "10000000", "PYTHONPATH": str(ROOT)})
        seeded = asyncio.run(seed(args, env, sandbox_url))
        web = start_inbox("web", env, "--port", str(web_port))
        stack.callback(stop, web.proc)
        worker = start_inbox("worker", env)
        stack.callback(stop, worker.proc)
        wait_live(f"http://127.0.0.1:{web_port}/health/live", [web.proc, worker.proc], "inbox web / worker")
        others = {"sandbox": sandbox.pid, "database": db.pid, "redis": redis.pid}
        import uvloop

        figures = uvloop.run(run(args, env, sandbox_url, web_port, web, worker, others, seeded))
    send, statuses = figures["send"], figures["status"]
    worst = max(statuses, key=lambda s: statuses[s].operations)
    print("targets:")
    counting.judge(f"MongoDB operations per agent send <= {TARGET_SEND_OPS}", counting.num(send.operations),
                   send.operations <= TARGET_SEND_OPS)
    counting.judge(f"Redis round trips per agent send <= {TARGET_SEND_ROUND_TRIPS}", counting.num(send.round_trips),
                   send.round_trips <= TARGET_SEND_ROUND_TRIPS)
    counting.judge(f"MongoDB operations per status <= {TARGET_STATUS_OPS} (the costliest kind)",
                   f"{counting.num(statuses[worst].operations)} ({worst})", statuses[worst].operations <= TARGET_STATUS_OPS)
    counting.judge(f"idle `inbox worker`: Redis calls per second <= {TARGET_IDLE_CALLS}",
                   f"{figures['idle_worker_calls']:.0f}/s", figures["idle_worker_calls"] <= TARGET_IDLE_CALLS)
    counting.judge("no send over a number's mps in any 1-s window", str(figures["over_mps"]), figures["over_mps"] == 0)
    if args.profile is not None:
        for name in ("web.raw", "worker.raw"):
            print(summarize(args.profile / name))


if __name__ == "__main__":
    main()
