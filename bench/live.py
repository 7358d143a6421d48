"""Benchmark of the live inbox: webhook -> WebSocket frame latency, and list / thread render times.

    .venv/bin/python bench/live.py [--samples 200] [--conversations 10000] [--thread 2000] [--renders 100]

The process tree: this process (the client) starts its own Redis and one server process running
our app as `inbox run` does (web + arq worker inline, `worker_poll_delay` from Settings, 5 ms by
default; in-memory Mongo unless INBOX_MONGODB_URL is set; the Cloud API sandbox mounted). The
server seeds one workspace with an agent and one number, and later the big data set.

1. Latency: an agent's WebSocket (session cookie, thread open) receives the frame of each inbound
   message. Each sample POSTs one signed webhook (one customer message with a unique text) to the
   number's webhook URL and stops the clock when the frame holding that text arrives:
   request -> stored event -> arq job -> ingestion -> Redis channel -> render -> WebSocket frame.
   Measured on a small database, then again with the big one loaded.
2. Render: with --conversations conversations (each with its contact and last message) and one
   thread of --thread messages, the agent's GETs of the list fragment (first page, a deep cursor
   page, a search), the thread fragment (newest page) and an older page, the full inbox page.
Targets (issue 6): latency p95 < 25 ms; list and thread render p95 < 30 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-live-app-secret-01"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
AGENT, PASSWORD = "agent@bench.example", "bench password"
CUSTOMER = "14155550199"


# ---- the server process --------------------------------------------------------------------------------

def serve(port: int, redis_url: str) -> None:
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
                            log_level="WARNING", mongodb_url=os.environ.get("INBOX_MONGODB_URL"))
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

        async def commands() -> None:  # stdin: "seed <conversations> <thread> <freeze>" loads the big data set,
            loop = asyncio.get_running_loop()  # "gc" reports (and resets) the GC pauses seen since the last "gc"
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return
                if line.strip() == "gc":
                    print(json.dumps({"gc": dict(pauses)}), flush=True)
                    pauses.clear()
                    continue
                _, conversations, thread, freeze = line.split()
                started = time.perf_counter()
                big = await seed(workspace.id, account.id, int(conversations), int(thread))
                if freeze == "1":
                    # The data set stands for what a long-running in-memory server holds: there it has long
                    # been in the oldest generation, as the CLI freezes what exists at startup. Without
                    # this, each full collection walks the 22 k fresh documents (tens of ms, --no-freeze).
                    import gc

                    gc.collect()
                    gc.freeze()
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


def line(name: str, values: list[float], target: float) -> str:
    p50, p95 = pct(values, 0.5), pct(values, 0.95)
    return (f"  {name:<44} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   max {max(values):7.2f} ms   "
            f"(n={len(values)}, target p95 < {target:g} ms: {'met' if p95 < target else 'NOT met'})")


async def latency(base: str, path: str, http, cookie: str, samples: int, tag: str) -> list[float]:
    import websockets

    from app.whatsapp.signature import sign

    async def post(text: str, wamid: str) -> None:
        body = webhook_body(text, wamid)
        answer = await http.post(path, content=body, headers={"X-Hub-Signature-256": sign(SECRET, body),
                                                              "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text

    await post("hello", f"wamid.{tag}.first")  # the conversation exists before the socket opens
    conversation = None
    for _ in range(100):
        rows = (await http.get("/inbox/conversations?status=all&q=Latency", headers={"HX-Request": "true"})).text
        found = re.search(r'id="conv-([0-9a-f]{24})"', rows)
        if found:
            conversation = found.group(1)
            break
        await asyncio.sleep(0.05)
    assert conversation, "the first message was never ingested"
    results: list[float] = []
    async with websockets.connect(base.replace("http", "ws") + "/live", additional_headers={"Cookie": cookie}) as ws:
        await ws.send(json.dumps({"type": "hello", "since": None,
                                  "view": {"conversation": conversation, "filters": {"status": "all"}}}))
        for i in range(samples + 10):  # the first 10 warm up
            token = f"latency-{tag}-{i}-{time.time_ns()}"
            started = time.perf_counter()
            await post(token, f"wamid.{tag}.{i}")
            while True:
                frame = await asyncio.wait_for(ws.recv(), timeout=10)
                if token in frame:
                    break
            if i >= 10:
                results.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)
    return results


async def render_times(http, url: str, count: int, htmx: bool = True) -> list[float]:
    headers = {"HX-Request": "true"} if htmx else {}
    times = []
    for i in range(count + 5):
        started = time.perf_counter()
        answer = await http.get(url, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
        if i >= 5:
            times.append(elapsed)
    return times


async def client(port: int, path: str, args: argparse.Namespace, proc: subprocess.Popen) -> None:
    import httpx

    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        page = await http.get("/login")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
        await http.post("/login", data={"email": AGENT, "password": PASSWORD, "_csrf_token": token})
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())

        print("Webhook -> WebSocket frame (one agent's tab, thread open), small database:")
        small = await latency(base, path, http, cookie, args.samples, "small")
        print(line("inbound message -> frame", small, 25))
        print(gc_report(proc))

        print(f"Seeding {args.conversations} conversations and a {args.thread}-message thread ...", flush=True)
        proc.stdin.write(f"seed {args.conversations} {args.thread} {0 if args.no_freeze else 1}\n")
        proc.stdin.flush()
        seeded = read_json(proc, "seeded")
        big = seeded["seeded"]
        print(f"  seeded in {seeded['seconds']} s")

        print(f"Render at {args.conversations} conversations (HTTP GET, HTMX fragments unless noted):")
        first = await render_times(http, "/inbox/conversations?status=all", args.renders)
        print(line("list, first page (40 rows)", first, 30))
        deep_cursor = None
        url = "/inbox/conversations?status=all"
        for _ in range(25):  # walk 25 pages down (1,000 rows) for a deep cursor
            html = (await http.get(url, headers={"HX-Request": "true"})).text
            found = re.search(r'cursor=([A-Za-z0-9_%-]+)"', html)
            if not found:
                break
            deep_cursor = found.group(1)
            url = f"/inbox/conversations?status=all&cursor={deep_cursor}"
        print(line("list, page 26 (cursor)", await render_times(http, url, args.renders), 30))
        print(line("list, filtered (status=pending)", await render_times(http, "/inbox/conversations?status=pending",
                                                                         args.renders), 30))
        print(line("list, search 'invoice'", await render_times(http, "/inbox/conversations?status=all&q=invoice",
                                                                 args.renders), 30))
        thread = await render_times(http, f"/inbox/c/{big}", args.renders)
        print(line(f"thread of {args.thread}, newest page (40)", thread, 30))
        html = (await http.get(f"/inbox/c/{big}", headers={"HX-Request": "true"})).text
        before = re.search(r"before=([0-9a-f]{24})", html).group(1)
        print(line(f"thread of {args.thread}, older page", await render_times(http, f"/inbox/c/{big}/older?before={before}",
                                                                             args.renders), 30))
        print(line("full inbox page with the thread open", await render_times(http, f"/inbox/c/{big}", args.renders // 2,
                                                                             htmx=False), 30))

        print(gc_report(proc))
        print(f"Webhook -> WebSocket frame with {args.conversations} conversations loaded:")
        loaded = await latency(base, path, http, cookie, args.samples, "big")
        print(line("inbound message -> frame", loaded, 25))
        print(gc_report(proc))


def gc_report(proc: subprocess.Popen) -> str:
    proc.stdin.write("gc\n")
    proc.stdin.flush()
    pauses = read_json(proc, "gc")["gc"]
    parts = [f"{g}: {int(pauses.get(g + '_n', 0))} x, {pauses.get(g + '_ms', 0):.1f} ms" for g in ("gen0", "gen1", "gen2")]
    return "  server GC pauses in this phase: " + "; ".join(parts)


def read_json(proc: subprocess.Popen, key: str) -> dict:
    while text := proc.stdout.readline():
        text = text.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if key in data:
                return data
    raise RuntimeError(f"server exited before printing {key!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--thread", type=int, default=2_000)
    parser.add_argument("--renders", type=int, default=100)
    parser.add_argument("--no-freeze", action="store_true", help="leave the seeded data set to the GC")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return 0
    from app.embedded_redis import EmbeddedRedis
    from tests.support.servers import free_port

    redis_server = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_") or k == "INBOX_MONGODB_URL"}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), redis_server.url], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        path = read_json(proc, "path")["path"]
        import httpx

        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        print(f"wa-inbox live benchmark ({'MongoDB' if os.environ.get('INBOX_MONGODB_URL') else 'in-memory Mongo'}, "
              f"worker poll delay 5 ms, {os.cpu_count()} CPUs)")
        asyncio.run(client(port, path, args, proc))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        redis_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
