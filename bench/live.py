"""Benchmark of the live inbox: what an inbound message costs up to its WebSocket frame, and render times.

    .venv/bin/python bench/live.py [--samples 20] [--conversations 1000] [--thread 300] [--renders 10] [--idle 3]

The process tree: this process (the client) starts its own Redis and database (INBOX_MONGODB_URL
when set, else an embedded SecantusDB server) and one server process running our app as `inbox run`
does (web + arq worker inline, `worker_poll_delay` from Settings, 5 ms by default; the Cloud API
sandbox mounted), counted by bench/counting.py. The server seeds one workspace with an agent and one
number, and later the big data set.

0. Idle (``--idle`` s): what the idle server does (the worker's queue polls), for the CPU figures.
1. Per inbound message: an agent's WebSocket (session cookie, thread open) receives the frame of
   each inbound message. Each sample POSTs one signed webhook (one customer message with a unique
   text) to the number's webhook URL and stops the clock when the frame holding that text arrives:
   request -> stored event -> arq job -> ingestion -> Redis channel -> render -> WebSocket frame.
   Printed: MongoDB operations by kind, Redis commands and round trips, CPU ms of our server per
   message (these do not depend on the database's speed), then the latency. On a small database,
   then again with the big one loaded.
2. Render: with --conversations conversations (each with its contact and last message) and one
   thread of --thread messages, the agent's GETs of the list fragment (first page, a deep cursor
   page, a search), the thread fragment (newest page) and an older page, the full inbox page:
   latency, and MongoDB operations, Redis round trips and CPU per GET.
Speed targets (issue 6, judged on a real MongoDB only): latency p95 < 25 ms; list and thread render
p95 < 30 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import counting  # noqa: E402
from bench.counting import Counted, Meter, read_json  # noqa: E402

SECRET = "bench-live-app-secret-01"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
AGENT, PASSWORD = "agent@bench.example", "bench password"
CUSTOMER = "14155550199"
TARGET_INBOUND_OPS = 6


# ---- the server process --------------------------------------------------------------------------------

def serve(port: int, redis_url: str, mongodb_url: str, database: str) -> None:
    counting.install()  # before any client exists
    from app.logging import configure_logging

    configure_logging("INFO")  # as `inbox web` logs (stderr: a file, counting.log_file), a line per request
    import uvicorn
    from pydantic import SecretStr

    from app.config import Settings
    from app.domains.accounts.services import NewAccount
    from app.domains.workspaces.models import Role
    from app.main import create_app
    from app.runtime import Runtime

    async def main() -> None:
        base = f"http://127.0.0.1:{port}"
        settings = Settings(_env_file=None, redis_url=redis_url, secret_key=SecretStr("bench-secret-key-" + "x" * 32),
                            data_dir=Path(tempfile.mkdtemp()), public_url=base, graph_api_url=base + "/sandbox/graph",
                            log_level="WARNING", mongodb_url=mongodb_url, mongodb_database=database)
        runtime = Runtime(settings)
        await runtime.start()
        workspace, _ = await runtime.people.create_workspace("Bench", f"admin{port}@bench.example", PASSWORD)
        await runtime.people.create_user(workspace.id, AGENT, PASSWORD, Role.AGENT, "Bench Agent")
        account = await runtime.accounts.create(workspace.id, NewAccount(
            name="Bench", phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID, display_phone_number="15550783881",
            access_token="EAAG-bench-live", app_secret=SECRET))
        app = create_app(settings, runtime=runtime, sandbox=True, inline_worker=True,
                         freeze_startup_objects=True)  # as `inbox run` does
        app.state.sandbox.register_number(PHONE_NUMBER_ID, WABA_ID, "15550783881", "EAAG-bench-live", SECRET,
                                          runtime.accounts.webhook_url(account), read_after_ms=None,
                                          delivered_after_ms=None)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               access_log=False, lifespan="on", ws="websockets-sansio"))
        print(json.dumps({"path": f"/webhooks/whatsapp/{account.webhook_key}"}), flush=True)

        pauses = gc_pauses()

        async def commands() -> None:  # stdin: "seed <conversations> <thread>" loads the big data set,
            loop = asyncio.get_running_loop()  # "gc" reports (and resets) the GC pauses seen since the last "gc",
            while True:                        # "stats" answers the counters (bench/counting.py)
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return
                if line.strip() == "stats":
                    print(counting.stats_line(), flush=True)
                    continue
                if line.strip() == "gc":
                    print(json.dumps({"gc": dict(pauses)}), flush=True)
                    pauses.clear()
                    continue
                _, conversations, thread = line.split()
                started = time.perf_counter()
                big = await seed(workspace.id, account.id, int(conversations), int(thread))
                pauses.clear()  # the seeding's own collections are not the next phase's
                print(json.dumps({"seeded": big, "seconds": round(time.perf_counter() - started, 1)}), flush=True)

        task = asyncio.create_task(commands())
        await server.serve()
        task.cancel()

    asyncio.run(main())


def gc_pauses() -> dict[str, float]:
    """GC pauses of this process by generation: count and total ms (the client prints them per phase)."""
    import gc

    pauses: dict[str, float] = {}
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            generation = f"gen{info['generation']}"
            pauses[generation + "_n"] = pauses.get(generation + "_n", 0) + 1
            pauses[generation + "_ms"] = round(pauses.get(generation + "_ms", 0.0)
                                               + (time.perf_counter() - started[0]) * 1000, 2)

    gc.callbacks.append(callback)
    return pauses


async def seed(workspace_id, account_id, conversations: int, thread: int, offset: int = 0) -> str:
    """Bulk-insert contacts, conversations (each with its last message) and one long thread.

    ``offset``: number the new conversations after that many seeded before (bench/embedded_size.py grows a set)."""
    from datetime import timedelta

    from bson import ObjectId

    from app.db import utcnow
    from app.domains.contacts.models import Contact
    from app.domains.conversations.models import Conversation
    from app.domains.conversations.search import contact_tokens, message_tokens
    from app.domains.messages.models import Message

    now = utcnow()
    contacts, convs, messages = [], [], []
    words = ["order", "delivery", "invoice", "refund", "beans", "grinder", "subscription", "address"]
    for i in range(offset, offset + conversations):
        contact_id, conv_id, msg_id = ObjectId(), ObjectId(), ObjectId()
        at = now - timedelta(seconds=60 + i * 7)
        wa_id = f"4477009{i:05d}"
        text = f"Question about my {words[i % len(words)]} #{i}"
        contacts.append({"_id": contact_id, "workspace_id": workspace_id, "key": f"wa:{wa_id}", "wa_id": wa_id,
                         "phone": f"+{wa_id}", "profile_name": f"Customer {i}", "name": "", "attributes": {},
                         "tags": [], "opted_out_marketing": False, "previous_wa_ids": [], "created_at": at,
                         "updated_at": at, "search_tokens": contact_tokens("", f"Customer {i}", None, wa_id, None)})
        convs.append({"_id": conv_id, "workspace_id": workspace_id, "account_id": account_id, "contact_id": contact_id,
                      "status": ["open", "open", "pending", "resolved"][i % 4], "assignee_id": None, "team_id": None,
                      "labels": [], "snoozed_until": None, "unread_count": i % 3, "last_message_at": at,
                      "last_inbound_at": at, "window_expires_at": at + timedelta(hours=24), "created_at": at,
                      "updated_at": at, "last_message": {"text": text, "direction": "inbound", "type": "text",
                                                          "status": "received", "message_id": msg_id}})
        messages.append({"_id": msg_id, "workspace_id": workspace_id, "conversation_id": conv_id,
                         "account_id": account_id, "contact_id": contact_id, "direction": "inbound", "type": "text",
                         "content": {"body": text}, "search_tokens": message_tokens({"body": text}),
                         "wamid": f"wamid.BIG{i:08d}", "status": "received",
                         "status_at": {}, "reactions": [], "edits": [], "attempts": 0, "priority": "agent",
                         "timestamp": at, "created_at": at, "updated_at": at})
    big = convs[0] if convs else None
    for j in range(thread if big else 0):
        at = now - timedelta(seconds=thread - j)
        outbound = j % 2 == 1
        body = f"Message {j} of the long thread https://example.com/{j}"
        messages.append({"_id": ObjectId(), "workspace_id": workspace_id, "conversation_id": big["_id"],
                         "account_id": account_id, "contact_id": big["contact_id"],
                         "direction": "outbound" if outbound else "inbound", "type": "text",
                         "content": {"body": body}, "search_tokens": message_tokens({"body": body}),
                         "wamid": f"wamid.LONG{j:08d}", "status": "read" if outbound else "received",
                         "status_at": {}, "reactions": [], "edits": [], "attempts": 0, "priority": "agent",
                         "timestamp": at, "created_at": at, "updated_at": at})
    if big:
        big["last_message_at"] = now
    for model, docs in ((Contact, contacts), (Conversation, convs), (Message, messages)):
        collection = model.get_motor_collection()
        for start in range(0, len(docs), 5000):
            await collection.insert_many(docs[start:start + 5000])
    return str(big["_id"]) if big else ""


# ---- the client -----------------------------------------------------------------------------------------

def webhook_body(text: str, wamid: str) -> bytes:
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Latency Customer"}, "wa_id": CUSTOMER}],
            "messages": [{"from": CUSTOMER, "id": wamid, "timestamp": str(int(time.time())), "type": "text",
                          "text": {"body": text}}]}}]}]}, separators=(",", ":")).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(name: str, values: list[float], target: float, db: counting.BenchDatabase, cost: str = "") -> str:
    p50, p95 = pct(values, 0.5), pct(values, 0.95)
    verdict = ("met" if p95 < target else "NOT met") if db.real else "not judged on the embedded server"
    return (f"  {name:<40} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   max {max(values):7.2f} ms   "
            f"(n={len(values)}, target p95 < {target:g} ms: {verdict})" + (f"\n  {'':<40} per GET: {cost}" if cost else ""))


async def latency(base: str, path: str, http, cookie: str, samples: int, tag: str,
                  meter: Meter, tabs: int = 1) -> tuple[list[float], counting.Usage]:
    """Per-sample latencies (ms) and the usage of the sampled messages (after 10 unmeasured ones).

    ``tabs``: that many of the agent's tabs are open on the thread (each a WebSocket, read all along);
    the first one times the frames."""
    import websockets

    from app.whatsapp.signature import sign

    async def post(text: str, wamid: str) -> None:
        body = webhook_body(text, wamid)
        answer = await http.post(path, content=body, headers={"X-Hub-Signature-256": sign(SECRET, body),
                                                              "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text

    await post("hello", f"wamid.{tag}.first")  # the conversation exists before the socket opens
    conversation = None
    for _ in range(200):
        rows = (await http.get("/inbox/conversations?status=all&q=Latency", headers={"HX-Request": "true"})).text
        found = re.search(r'id="conv-([0-9a-f]{24})"', rows)
        if found:
            conversation = found.group(1)
            break
        await asyncio.sleep(0.05)
    assert conversation, "the first message was never ingested"
    results: list[float] = []
    hello = json.dumps({"type": "hello", "since": None,
                        "view": {"conversation": conversation, "filters": {"status": "all"}}})
    others = [await websockets.connect(base.replace("http", "ws") + "/live", additional_headers={"Cookie": cookie})
              for _ in range(tabs - 1)]

    async def drain(socket) -> None:  # a browser reads every frame it is sent
        await socket.send(hello)
        async for _ in socket:
            pass

    readers = [asyncio.create_task(drain(o)) for o in others]
    async with websockets.connect(base.replace("http", "ws") + "/live", additional_headers={"Cookie": cookie}) as ws:
        await ws.send(hello)
        before = None
        for i in range(samples + 10):  # the first 10 warm up
            if i == 10:
                await meter.settle()
                before = meter.sample()
            token = f"latency-{tag}-{i}-{time.time_ns()}"
            started = time.perf_counter()
            await post(token, f"wamid.{tag}.{i}")
            while True:
                frame = await asyncio.wait_for(ws.recv(), timeout=30)
                if token in frame:
                    break
            if i >= 10:
                results.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)
        await meter.settle()
        usage = meter.since(before)
    for other in others:
        await other.close()
    await asyncio.gather(*readers, return_exceptions=True)
    return results, usage


async def render_times(http, url: str, count: int, meter: Meter, htmx: bool = True) -> tuple[list[float], counting.Usage]:
    headers = {"HX-Request": "true"} if htmx else {}
    times = []
    for i in range(count + 5):
        if i == 5:
            before = meter.sample()
        started = time.perf_counter()
        answer = await http.get(url, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
        if i >= 5:
            times.append(elapsed)
    return times, meter.since(before)


async def client(port: int, path: str, args: argparse.Namespace, proc: subprocess.Popen, meter: Meter,
                 db: counting.BenchDatabase) -> dict:
    import httpx

    base = f"http://127.0.0.1:{port}"
    figures: dict = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        page = await http.get("/login")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
        await http.post("/login", data={"email": AGENT, "password": PASSWORD, "_csrf_token": token})
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())

        print(f"idle for {args.idle:g} s:")
        idle = await meter.idle(args.idle)
        counting.idle_report(idle)

        async def render(name: str, url: str, count: int, htmx: bool = True) -> None:
            times, usage = await render_times(http, url, count, meter, htmx)
            print(line(name, times, 30, db, counting.brief(usage, count, ["server"], idle)))

        print(f"per inbound message, one agent's tab open on its thread, small database ({args.samples} messages; "
              f"webhook -> stored -> ingested -> live event -> rendered -> WebSocket frame):")
        small, usage = await latency(base, path, http, cookie, args.samples, "small", meter)
        figures["message"] = counting.report(usage, args.samples, "message", ["server"], idle)
        print(line("latency, inbound message -> frame", small, 25, db))
        print(gc_report(proc))
        reads: dict[int, float] = {}
        for tabs in args.tabs:
            print(f"per inbound message with {tabs} tabs open on the thread (one web process):")
            times, usage = await latency(base, path, http, cookie, args.samples, f"tabs{tabs}", meter, tabs=tabs)
            figures[f"message_{tabs}_tabs"] = counting.report(usage, args.samples, "message", ["server"], idle)
            reads[tabs] = usage.operations() / args.samples
            print(line(f"latency with {tabs} tabs, inbound message -> frame", times, 25, db))
        first = min(reads)
        print("MongoDB operations per inbound message by open tabs (target: flat): " + ", ".join(
            f"{tabs} tabs {value:.1f} ({value / reads[first]:.2f}x)" for tabs, value in sorted(reads.items())))

        print(f"Seeding {args.conversations} conversations and a {args.thread}-message thread ...", flush=True)
        proc.stdin.write(f"seed {args.conversations} {args.thread}\n")
        proc.stdin.flush()
        seeded = read_json(proc, "seeded")
        big = seeded["seeded"]
        print(f"  seeded in {seeded['seconds']} s")

        print(f"Render at {args.conversations} conversations (HTTP GET, HTMX fragments unless noted):")
        await render("list, first page (40 rows)", "/inbox/conversations?status=all", args.renders)
        deep_cursor = None
        url = "/inbox/conversations?status=all"
        pages = 1
        for _ in range(25):  # walk up to 25 pages down (1,000 rows) for a deep cursor
            html = (await http.get(url, headers={"HX-Request": "true"})).text
            found = re.search(r'cursor=([A-Za-z0-9_%-]+)"', html)
            if not found:
                break
            deep_cursor = found.group(1)
            url = f"/inbox/conversations?status=all&cursor={deep_cursor}"
            pages += 1
        await render(f"list, page {pages} (cursor)", url, args.renders)
        await render("list, filtered (status=pending)", "/inbox/conversations?status=pending", args.renders)
        await render("list, search 'invoice'", "/inbox/conversations?status=all&q=invoice", args.renders)
        await render(f"thread of {args.thread}, newest page (40)", f"/inbox/c/{big}", args.renders)
        html = (await http.get(f"/inbox/c/{big}", headers={"HX-Request": "true"})).text
        older = re.search(r"before=([0-9a-f]{24})", html)
        if older:  # a thread of more than one page
            await render(f"thread of {args.thread}, older page", f"/inbox/c/{big}/older?before={older.group(1)}",
                         args.renders)
        await render("full inbox page, thread open", f"/inbox/c/{big}", max(args.renders // 2, 1), htmx=False)

        print(gc_report(proc))
        print(f"per inbound message with {args.conversations} conversations loaded ({args.samples} messages):")
        loaded, usage = await latency(base, path, http, cookie, args.samples, "big", meter)
        figures["message_loaded"] = counting.report(usage, args.samples, "message", ["server"], idle)
        print(line("latency, inbound message -> frame", loaded, 25, db))
        print(gc_report(proc))
    return figures


def gc_report(proc: subprocess.Popen) -> str:
    proc.stdin.write("gc\n")
    proc.stdin.flush()
    pauses = read_json(proc, "gc")["gc"]
    parts = [f"{g}: {int(pauses.get(g + '_n', 0))} x, {pauses.get(g + '_ms', 0):.1f} ms" for g in ("gen0", "gen1", "gen2")]
    return "  server GC pauses in this phase: " + "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20, help="inbound messages per latency phase")
    parser.add_argument("--conversations", type=int, default=1_000)
    parser.add_argument("--tabs", type=int, nargs="+", default=[1, 10, 50], help="open tabs per tabs phase")
    parser.add_argument("--thread", type=int, default=300, help="messages in the long thread")
    parser.add_argument("--renders", type=int, default=10, help="GETs per render kind")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of the idle phase")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.serve[2], args.serve[3])
        return 0
    from app.embedded_redis import EmbeddedRedis
    from tests.support.servers import free_port

    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    redis_server = EmbeddedRedis(tmp / "redis", persist=False).start()
    try:
        with counting.database(tmp) as db:
            counting.headline("live benchmark", db)
            database = counting.database_name("live")
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")}
            proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), redis_server.url, db.url, database],
                                    stderr=counting.log_file("web"),
                                    env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
            try:
                path = read_json(proc, "path")["path"]
                import httpx

                for _ in range(600):
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                print("server: web + worker inline (`inbox run`'s shape), worker poll delay 5 ms")
                meter = Meter(redis_server.url, [Counted("server", proc)], {"database": db.pid, "redis": redis_server.pid})
                figures = asyncio.run(client(port, path, args, proc, meter, db))
                meter.close()
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                counting.drop_databases(db, [database])
    finally:
        redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    message = figures["message"]
    print("targets:")
    counting.judge(f"MongoDB operations per inbound message with its frame <= {TARGET_INBOUND_OPS}",
                   counting.num(message.operations), message.operations <= TARGET_INBOUND_OPS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
