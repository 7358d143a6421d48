"""Benchmark of broadcasts: a template to a large audience at a number's messages per second, and a worker
killed half-way.

    .venv/bin/python bench/broadcasts.py [--recipients 1000,1000] [--mps 80,1000]
                                         [--crash-recipients 600] [--crash-mps 80] [--idle 3] [--profile DIR]

The process tree (as bench/outbound.py): this process starts its own Redis, the database (INBOX_MONGODB_URL
when set, else an embedded SecantusDB server) and the Cloud API sandbox in its own process (Meta), then
`inbox web` and `inbox worker` as child processes, exactly as deployed, counted by bench/counting.py
(MongoDB operations per process, Redis round trips, CPU from /proc); the worker also serves its Prometheus
metrics (INBOX_WORKER_METRICS_PORT), read for its send attempts Meta refused with 130429 (too fast).

Seeded: one workspace with an API key; per broadcast one number of its own, registered in the sandbox at its
mps (TIER_UNLIMITED: the daily messaging limit is not what is measured), an approved MARKETING template
("Hi {{1}} ...", the parameter from each contact's name) stored in our database and in the sandbox; the
contacts inserted in bulk straight into the database (as an import leaves them: a phone number, a name,
tags naming the broadcasts they are in; no conversation yet). Then, through the API: a warm-up broadcast of
20 (not counted: a process's first Lua script loads, connections, copies), and for each pair of
``--recipients`` / ``--mps`` (default 1,000 at 80 mps and 1,000 at 1,000 mps, and the crash test below:
about 5 minutes on 2 CPUs with the embedded server. The issue's sizes are ``--recipients 50000,50000
--mps 80,1000``; ``--recipients 50000 --mps 80`` takes about 17 minutes on the embedded server, which is then
the limit: it spends ~16 ms of its CPU per recipient on the documents a recipient writes (its claim and mark,
its message, its conversation, the message's acceptance: about six writes, each with its indexes), so it
answers ~60 recipients a second whatever the mps; ours spend ~1.5 ms. The 1,000-mps target needs mongod
(INBOX_MONGODB_URL), which this machine cannot get)
``POST /api/v1/broadcasts`` (a draft), then ``POST /api/v1/broadcasts/{id}/start``, measured from the
Start until every recipient's message is stored as accepted (their ``message.updated`` live events) and
the processes are quiet. Printed per broadcast, from the sandbox's own log of what it accepted:

- the time from Start to the first message at the sandbox, and to the last;
- the most messages in any 1-s window against the mps, the sends over the mps in their window, and the
  send attempts Meta refused as too fast (130429, the worker's metric);
- utilisation under backlog: messages per second from the first to the last message (recipients remain
  all along) over the mps; and the slowest full second of that span;
- MongoDB operations per recipient of the worker and of the web process (by collection), Redis round
  trips per recipient, the worker's CPU per recipient (net of what it spends idle), the database's;
- the worker's resident memory before, at 10 %, 50 % and 90 % of the messages, and its peak;
- where the rate is set: recipients handed to the outbox per second by the slices, and each message's
  wait in the outbox (queued -> accepted): near zero all along, the outbox was starved.
``--profile DIR`` records py-spy profiles of the worker during each measured broadcast (bench/pyspy.py).

Then the crash: a broadcast of ``--crash-recipients`` at ``--crash-mps`` (default 600 at 80 mps) on a number
of its own (at half-way its slice should still be storing recipients: it keeps 20 s of the rate ahead of the
drainer, so at 80 mps that needs more than 3,200 recipients when the slices keep up with the rate; they do
not on the embedded server, see "recipients handed to the outbox per second"); at 50 % of its messages
accepted, ``kill -9`` the worker, start a new one, and wait until the broadcast is completed and none of its
messages waits. Its number, unlike the others, gets Meta's status webhooks (the web process ingests them), as
every real number does: a send Meta accepted whose answer the killed worker never recorded is named by its
status (``biz_opaque_callback_data``), so the next worker does not send it again. Printed: duplicates (numbers the
sandbox received more than once from that number, each with its sends' times around the kill) and lost
(audience numbers it never received), both from the sandbox's log, and the database's view (recipients
without a message, messages not accepted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import counting  # noqa: E402
from bench.counting import Counted, LiveFeed, Meter, Usage, percentile  # noqa: E402
from bench.outbound import max_in_window, start_inbox, stop, windows_over  # noqa: E402
from bench.pyspy import recording, summarize  # noqa: E402
from bench.sandbox import _SANDBOX, _free_port, _process, wait_live  # noqa: E402

API_KEY = "bench-broadcasts-key-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = "d" * 48
APP_SECRET = "bench-broadcasts-app-secret"
BODY = "Hi {{1}}, our spring sale starts today."
TEMPLATE = "spring_sale"
WARM_UP = 20
ACCEPTED = "message.updated:accepted"

STALL_SECONDS = 60
TARGET_UTILISATION = 0.95


@dataclass
class Plan:
    """One broadcast: its audience (contacts tagged ``tag``), its number and the number's mps."""

    label: str
    recipients: int
    mps: int
    tag: str
    pnid: str = ""
    waba_id: str = ""
    account_id: str = ""
    kind: str = "measured"  # "warm-up", "measured", "crash"


@dataclass
class Outcome:
    plan: Plan
    usage: Usage | None = None
    ops: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


def wa_id(i: int) -> str:
    """UK mobile numbers +44 7911 0xxxxx .. 2xxxxx (valid, unique per contact)."""
    return f"447911{i:06d}"


# ---- setup, in this process: the product's services, and the contacts straight into the database ----------

async def seed(plans: list[Plan], env: dict[str, str], sandbox_url: str) -> None:
    from app.config import Settings
    from app.domains.accounts.services import NewAccount
    from app.domains.contacts.models import Contact
    from app.domains.templates.models import MessageTemplate
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
    components = [{"type": "BODY", "text": BODY}]
    try:
        workspace = await Workspace.find_one({})
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=60) as control:
            for k, plan in enumerate(plans):
                plan.pnid, plan.waba_id, display = f"99{k:04d}", f"98{k:04d}", f"+1555400{k:04d}"
                answer = await control.post("/sandbox/control/numbers", json={
                    "phone_number_id": plan.pnid, "waba_id": plan.waba_id, "display_phone_number": display,
                    "access_token": f"bench-token-{k}", "app_secret": APP_SECRET, "mps": plan.mps,
                    "messaging_limit_tier": "TIER_UNLIMITED"})
                answer.raise_for_status()
                answer = await control.post("/sandbox/control/templates", json={
                    "waba_id": plan.waba_id, "name": TEMPLATE, "language": "en", "category": "MARKETING",
                    "components": components})
                answer.raise_for_status()
                template_id = answer.json()["id"]
                account = await runtime.accounts.create(workspace.id, NewAccount(
                    name=plan.label, phone_number_id=plan.pnid, waba_id=plan.waba_id, display_phone_number=display,
                    access_token=f"bench-token-{k}", app_secret=APP_SECRET, mps=plan.mps))
                plan.account_id = str(account.id)
                if plan.kind == "crash":  # Meta's status webhooks (sent, delivered ...), as for every real number
                    answer = await control.post("/sandbox/control/numbers", json={
                        "phone_number_id": plan.pnid, "waba_id": plan.waba_id, "display_phone_number": display,
                        "access_token": f"bench-token-{k}", "app_secret": APP_SECRET, "mps": plan.mps,
                        "messaging_limit_tier": "TIER_UNLIMITED",
                        "webhook_url": f"{env['INBOX_PUBLIC_URL']}/webhooks/whatsapp/{account.webhook_key}"})
                    answer.raise_for_status()
                await MessageTemplate(workspace_id=workspace.id, waba_id=plan.waba_id, meta_id=template_id,
                                      name=TEMPLATE, language="en", category="MARKETING", status="APPROVED",
                                      components=components).insert()
        total = max(p.recipients for p in plans)
        started = time.perf_counter()
        for first in range(0, total, 1000):
            batch = []
            for i in range(first, min(total, first + 1000)):
                number = wa_id(i)
                contact = Contact(workspace_id=workspace.id, key=f"wa:{number}", identities=[f"wa:{number}"],
                                  wa_id=number, phone=f"+{number}", name=f"Customer {i}",
                                  tags=[p.tag for p in plans if i < p.recipients])
                contact._fill_search_tokens()  # insert_many runs no event hooks
                batch.append(contact)
            await Contact.insert_many(batch)
        print(f"seeded {len(plans)} numbers and {total:,} contacts (inserted in bulk in "
              f"{time.perf_counter() - started:.1f} s)", flush=True)
    finally:
        await runtime.stop()


# ---- measuring ---------------------------------------------------------------------------------------------

def rss_kb(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def scrape(port: int) -> Counter[str]:
    """The worker's send counters (its Prometheus metrics): attempts by result, retries by Meta's code."""
    out: Counter[str] = Counter()
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return out
    for line in text.splitlines():
        found = re.match(r'inbox_send_retries_total\{reason="([^"]*)"\} ([0-9.e+]+)', line)
        if found:
            out[f"retry {found[1]}"] += int(float(found[2]))
        found = re.match(r'inbox_sends_total\{result="([^"]*)",type="template"\} ([0-9.e+]+)', line)
        if found:
            out[f"attempt {found[1]}"] += int(float(found[2]))
    return out


class Harness:
    def __init__(self, env: dict[str, str], sandbox_url: str, web: Counted, worker: Counted,
                 others: dict[str, int | None], metrics_port: int) -> None:
        self.env, self.sandbox_url, self.web, self.worker = env, sandbox_url, web, worker
        self.others, self.metrics_port = others, metrics_port
        self.idle: Usage | None = None
        self.profile: Path | None = None

    async def start(self) -> Harness:
        from pymongo import MongoClient

        self.feed = await LiveFeed(self.env["INBOX_REDIS_URL"]).start()
        self.meter = Meter(self.env["INBOX_REDIS_URL"], [self.web, self.worker], self.others)
        self.api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.env['BENCH_WEB_PORT']}", timeout=120,
                                     headers={"Authorization": f"Bearer {API_KEY}"})
        self.mongo: MongoClient = MongoClient(self.env["INBOX_MONGODB_URL"])
        self.db = self.mongo[self.env["INBOX_MONGODB_DATABASE"]]
        return self

    async def close(self) -> None:
        await self.api.aclose()
        await self.feed.stop()
        self.meter.close()
        self.mongo.close()

    async def draft(self, plan: Plan) -> str:
        answer = await self.api.post("/api/v1/broadcasts", json={
            "name": plan.label, "account_id": plan.account_id, "template_name": TEMPLATE, "language": "en",
            "params": [{"source": "name"}], "audience": {"tags": [plan.tag]}})
        if answer.status_code != 201:
            raise RuntimeError(f"the draft was refused: {answer.status_code} {answer.text[:300]}")
        return answer.json()["id"]

    async def start_broadcast(self, broadcast_id: str) -> float:
        """POST .../start; returns the epoch time just before it (the sandbox stamps sends in epoch time)."""
        at = time.time()
        answer = await self.api.post(f"/api/v1/broadcasts/{broadcast_id}/start", json={})
        if answer.status_code != 200:
            raise RuntimeError(f"the start was refused: {answer.status_code} {answer.text[:300]}")
        return at

    async def sent(self, pnid: str) -> list[dict[str, Any]]:
        """What the sandbox accepted from this number (template sends), in the order accepted."""
        async with httpx.AsyncClient(base_url=self.sandbox_url, timeout=300) as control:
            rows = (await control.get("/sandbox/control/sent", params={"phone_number_id": pnid})).json()["data"]
        return [r for r in rows if r["type"] == "template"]

    async def progress(self, base: int, n: int, pid: int, marks: dict[float, int], stop_at: float | None = None
                       ) -> None:
        """Records the worker's resident memory when the accepted messages pass each mark (10 %, 50 %, 90 %);
        returns when they pass ``stop_at`` (else runs until cancelled)."""
        pending = sorted(m for m in (0.1, 0.5, 0.9) if m not in marks)
        while True:
            done = self.feed.counts[ACCEPTED] - base
            while pending and done >= pending[0] * n:
                marks[pending.pop(0)] = rss_kb(pid)
            if stop_at is not None and done >= stop_at * n:
                return
            await asyncio.sleep(0.02)

    async def until_accepted(self, base: int, n: int, share: float) -> bool:
        """Until ``share`` of ``n`` messages are stored as accepted; False when none came for STALL_SECONDS."""
        target = base + int(n * share + 0.999)
        while True:
            seen = self.feed.counts[ACCEPTED]
            if await self.feed.wait(ACCEPTED, target, timeout=STALL_SECONDS):
                return True
            if self.feed.counts[ACCEPTED] == seen:
                return False

    async def broadcast(self, plan: Plan) -> Outcome:
        """A measured broadcast (or the warm-up): Start -> every message stored as accepted -> quiet."""
        outcome = Outcome(plan)
        broadcast_id = await self.draft(plan)
        await asyncio.sleep(0.5)
        await self.meter.settle()
        pid = self.worker.pid
        rss_before = rss_kb(pid)
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from VmRSS
        metrics_before = scrape(self.metrics_port)
        marks: dict[float, int] = {}
        base = self.feed.counts[ACCEPTED]
        completed = self.feed.counts["broadcast.completed"]
        before = self.meter.sample()
        watcher = asyncio.create_task(self.progress(base, plan.recipients, pid, marks))
        try:
            started_at = await self.start_broadcast(broadcast_id)
            began = time.perf_counter()
            with contextlib.ExitStack() as profiling:
                if self.profile is not None and plan.kind == "measured":
                    profiling.enter_context(recording(pid, self.profile / f"worker-{plan.tag}.raw"))
                if not await self.until_accepted(base, plan.recipients, 1.0):
                    print(f"  ({self.feed.counts[ACCEPTED] - base:,} of {plan.recipients:,} messages stored as "
                          f"accepted, then none for {STALL_SECONDS} s)")
            stored_s = self.feed.last.get(ACCEPTED, began) - began
            await self.feed.wait("broadcast.completed", completed + 1, timeout=60)
            await self.meter.settle()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        after = self.meter.sample()
        outcome.usage = usage = self.meter.since(before)
        peak = rss_kb(pid, "VmHWM")
        for name in after.processes:
            old = before.processes[name]["mongo"]["work"]
            new = after.processes[name]["mongo"]["work"]
            outcome.kinds[name] = {k: v - old.get(k, 0) for k, v in new.items() if v - old.get(k, 0)}
            outcome.ops[name] = sum(outcome.kinds[name].values())
        metrics = scrape(self.metrics_port)
        metrics.subtract(metrics_before)
        rows = await self.sent(plan.pnid)
        times = sorted(r["accepted_at"] for r in rows)
        shown = (await self.api.get(f"/api/v1/broadcasts/{broadcast_id}")).json()
        f = outcome.figures
        f["sent"], f["unique"] = len(rows), len({r["to"] for r in rows})
        f["status"], f["counts"] = shown.get("status"), shown.get("counts") or {}
        if times:
            f["first_s"] = times[0] - started_at
            f["last_s"] = times[-1] - started_at
            f["max_window"] = max_in_window(times)
            f["over"] = windows_over(times, plan.mps)
            span = times[-1] - times[0]
            f["rate"] = (len(times) - 1) / span if span > 0 else 0.0
            f["utilisation"] = f["rate"] / plan.mps
            seconds = Counter(int(t - times[0]) for t in times)
            full = [seconds.get(s, 0) for s in range(0, int(span))]  # whole seconds inside the span
            f["slowest_second"] = min(full) if full else len(times)
        f["stored_s"] = stored_s
        f.update(self.outbox_view(broadcast_id))
        f["refused_130429"] = metrics.get("retry 130429", 0)
        f["retries"] = sum(v for k, v in metrics.items() if k.startswith("retry "))
        f["rss_before_mb"], f["peak_mb"] = rss_before / 1024, peak / 1024
        f["rss_mb"] = {m: kb / 1024 for m, kb in marks.items()}
        f["worker_cpu_ms"] = self._cpu_ms(usage, "worker")
        f["web_cpu_ms"] = self._cpu_ms(usage, "web")
        return outcome

    def outbox_view(self, broadcast_id: str) -> dict[str, Any]:
        """Read after the measured phase: how fast the broadcast's slices handed recipients to the outbox
        (their messages' queued times) and how long each message then waited there (queued -> accepted). A
        wait near zero all along means the outbox was starved: the slices, not the pacing, set the rate."""
        rows = list(self.db.messages.find({"broadcast.id": broadcast_id},
                                          {"status_at.queued": 1, "status_at.accepted": 1}))
        queued = sorted(r["status_at"]["queued"].timestamp() for r in rows if "queued" in r.get("status_at", {}))
        waits = sorted((r["status_at"]["accepted"] - r["status_at"]["queued"]).total_seconds() for r in rows
                       if "accepted" in r.get("status_at", {}) and "queued" in r["status_at"])
        span = queued[-1] - queued[0] if len(queued) > 1 else 0.0
        return {"handed_rate": (len(queued) - 1) / span if span > 0 else 0.0,
                "wait_p50": percentile(waits, 0.5), "wait_max": waits[-1] if waits else 0.0}

    def _cpu_ms(self, usage: Usage, name: str) -> float:
        baseline = counting.idle_cpu(usage, self.idle)
        return max(0.0, usage.cpu.get(name, 0.0) - baseline.get(name, 0.0)) * 1000

    async def crash(self, plan: Plan, restart: Any) -> dict[str, Any]:
        """Start, kill -9 the worker at 50 % of the messages accepted, start another, wait for the end."""
        from bson import ObjectId

        broadcast_id = await self.draft(plan)
        await self.meter.settle()
        base = self.feed.counts[ACCEPTED]
        started_at = await self.start_broadcast(broadcast_id)
        if not await self.until_accepted(base, plan.recipients, 0.5):
            raise RuntimeError("the crash test's broadcast stalled before half-way")
        oid = ObjectId(broadcast_id)
        stored_at_kill = self.db.broadcast_recipients.count_documents({"broadcast_id": oid, "status": {"$ne": "pending"}})
        killed_at = time.time()
        os.kill(self.worker.pid, signal.SIGKILL)
        self.worker.proc.wait()
        accepted_at_kill = self.feed.counts[ACCEPTED] - base
        self.worker = restart()
        restarted_at = time.time()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            broadcast = self.db.broadcasts.find_one({"_id": oid})
            waiting = self.db.messages.count_documents({"broadcast.id": broadcast_id,
                                                        "status": {"$in": ["queued", "sending"]}})
            if broadcast["status"] == "completed" and not waiting:
                break
            await asyncio.sleep(1.0)
        else:
            print("  (the broadcast did not finish within 600 s of the restart)")
        ended_at = time.time()
        await asyncio.sleep(2.0)  # acceptances flushed every ~200 ms
        rows = await self.sent(plan.pnid)
        audience = {wa_id(i) for i in range(plan.recipients)}
        sends: dict[str, list[float]] = {}
        for row in rows:
            sends.setdefault((row["to"] or "").lstrip("+"), []).append(row["accepted_at"])
        duplicates = {to: sorted(t) for to, t in sends.items() if len(t) > 1}
        lost = audience - set(sends)
        recipients = Counter(r["status"] for r in self.db.broadcast_recipients.find({"broadcast_id": oid}, {"status": 1}))
        messages = Counter(m["status"] for m in self.db.messages.find({"broadcast.id": broadcast_id}, {"status": 1}))
        per_contact = Counter(m["contact_id"] for m in self.db.messages.find({"broadcast.id": broadcast_id},
                                                                            {"contact_id": 1}))
        times = sorted(t for ts in sends.values() for t in ts)
        before_kill = [t for t in times if t <= killed_at]
        after_kill = [t for t in times if t > killed_at]
        return {"broadcast_id": broadcast_id, "started_at": started_at, "killed_at": killed_at,
                "restarted_at": restarted_at, "ended_at": ended_at, "accepted_at_kill": accepted_at_kill,
                "stored_at_kill": stored_at_kill, "sent_before_kill": len(before_kill),
                "first_after_kill": (after_kill[0] - killed_at) if after_kill else None,
                "last": (times[-1] - started_at) if times else None, "sends": len(rows),
                "duplicates": duplicates, "lost": sorted(lost), "recipients": dict(recipients),
                "messages": dict(messages), "contacts_with_two_messages": sum(1 for v in per_contact.values() if v > 1),
                "max_window_after": max_in_window(after_kill) if after_kill else 0,
                "max_window": max_in_window(times) if times else 0}


# ---- printing ---------------------------------------------------------------------------------------------

def row(label: str, *values: str) -> None:
    print(f"  {label:<52}" + "".join(f"{v:>18}" for v in values))


def ratio(a: float, b: float) -> str:
    if b == 0:
        return "=" if a == 0 else "new"
    return f"x{a / b:.2f}"


def by_collection(kinds: dict[str, int], n: int) -> str:
    groups: Counter[str] = Counter()
    for key, count in kinds.items():
        kind, _, collection = key.partition(" ")
        groups[f"{kind} {collection or '(database)'}"] += count
    return counting.listing(dict(groups), max(n, 1), 10) or "none"


def report(outcomes: list[Outcome]) -> None:
    labels = [o.plan.label for o in outcomes]
    print("\nbroadcasts (a template to each recipient, its one parameter from the contact's name; numbers without "
          "status webhooks):")
    row("", *labels, *(["ratio"] if len(outcomes) == 2 else []))

    def line(label: str, values: list[float], fmt: Any, with_ratio: bool = True) -> None:
        extra = [ratio(values[1], values[0])] if len(values) == 2 and with_ratio else ([""] if len(values) == 2 else [])
        row(label, *(fmt(v) for v in values), *extra)

    get = [o.figures for o in outcomes]
    n = [o.plan.recipients for o in outcomes]
    line("recipients", [float(x) for x in n], lambda v: f"{v:,.0f}")
    line("messages the sandbox accepted (distinct numbers)", [float(f["sent"]) for f in get],
         lambda v: f"{v:,.0f}", False)
    row("", *(f"({f['unique']:,})" for f in get))
    line("Start -> first message at the sandbox", [f.get("first_s", 0) for f in get], lambda v: f"{v:.2f} s")
    line("Start -> last message at the sandbox", [f.get("last_s", 0) for f in get], lambda v: f"{v:.1f} s")
    line("ideal: recipients / mps", [o.plan.recipients / o.plan.mps for o in outcomes], lambda v: f"{v:.1f} s")
    row("most messages in any 1-s window / mps", *(f"{f.get('max_window', 0)} / {o.plan.mps}"
                                                   for f, o in zip(get, outcomes, strict=True)))
    row("messages over the mps in their 1-s window", *(str(f.get("over", 0)) for f in get))
    row("send attempts Meta refused as too fast (130429)", *(str(f["refused_130429"]) for f in get))
    row("retried sends (any code)", *(str(f["retries"]) for f in get))
    line("messages/s, first -> last message", [f.get("rate", 0) for f in get], lambda v: f"{v:.1f}")
    line("utilisation under backlog (messages/s / mps)", [f.get("utilisation", 0) for f in get],
         lambda v: f"{v:.1%}")
    line("recipients handed to the outbox per second (slices)", [f.get("handed_rate", 0) for f in get],
         lambda v: f"{v:.1f}")
    line("a message's wait in the outbox, p50 (queued->accepted)", [f.get("wait_p50", 0) for f in get],
         lambda v: f"{v:.2f} s")
    line("a message's wait in the outbox, max", [f.get("wait_max", 0) for f in get], lambda v: f"{v:.2f} s")
    row("slowest whole second of that span / mps", *(f"{f.get('slowest_second', 0)} / {o.plan.mps}"
                                                     for f, o in zip(get, outcomes, strict=True)))
    for name in ("worker", "web"):
        line(f"{name}: MongoDB operations per recipient", [o.ops.get(name, 0) / o.plan.recipients for o in outcomes],
             counting.num)
    for name in ("worker", "web"):
        line(f"{name}: Redis round trips per recipient",
             [o.usage.trips.get(name, {}).get("work", 0) / o.plan.recipients for o in outcomes], counting.num)
    line("Redis commands per recipient (as Redis counts them)",
         [sum(o.usage.own_redis().values()) / o.plan.recipients for o in outcomes], counting.num)
    line("worker: CPU ms per recipient (net of idle)", [f["worker_cpu_ms"] / o.plan.recipients
                                                        for f, o in zip(get, outcomes, strict=True)], lambda v: f"{v:.2f}")
    line("web: CPU ms per recipient", [f["web_cpu_ms"] / o.plan.recipients for f, o in zip(get, outcomes, strict=True)],
         lambda v: f"{v:.3f}")
    for name in ("database", "sandbox", "redis"):
        line(f"{name}: CPU ms per recipient (not ours)",
             [o.usage.cpu.get(name, 0.0) * 1000 / o.plan.recipients for o in outcomes], lambda v: f"{v:.2f}")
    line("worker: CPU busy during the broadcast", [o.usage.cpu.get("worker", 0.0) / max(o.usage.seconds, 1e-9)
                                                   for o in outcomes], lambda v: f"{v:.0%}", False)
    line("database: CPU busy during the broadcast", [o.usage.cpu.get("database", 0.0) / max(o.usage.seconds, 1e-9)
                                                     for o in outcomes], lambda v: f"{v:.0%}", False)
    line("worker RSS before Start", [f["rss_before_mb"] for f in get], lambda v: f"{v:.0f} MB")
    for mark in (0.1, 0.5, 0.9):
        line(f"worker RSS at {mark:.0%} of the messages", [f["rss_mb"].get(mark, 0.0) for f in get],
             lambda v: f"{v:.0f} MB")
    line("worker peak RSS during the broadcast", [f["peak_mb"] for f in get], lambda v: f"{v:.0f} MB")
    line("worker peak RSS growth over before Start", [f["peak_mb"] - f["rss_before_mb"] for f in get],
         lambda v: f"{v:+.0f} MB")
    for o in outcomes:
        counts = o.figures["counts"]
        print(f"  {o.plan.label}: broadcast {o.figures['status']}; recipients queued {counts.get('queued')}, skipped "
              f"{counts.get('skipped')}, pending {counts.get('pending')}; messages waiting in the outbox "
              f"{counts.get('waiting_in_outbox')}, failed {counts.get('failed')}")
        for name in ("worker", "web"):
            print(f"    {name} per recipient: {by_collection(o.kinds.get(name, {}), o.plan.recipients)}")
        print(f"    Redis commands our processes sent per recipient: "
              f"{counting.listing(o.usage.sent['work'], o.plan.recipients, 8)}")


def report_crash(plan: Plan, c: dict[str, Any]) -> None:
    k = c["killed_at"]
    print(f"\ncrash: {plan.recipients:,} recipients at {plan.mps} mps; `kill -9` of the worker at 50 % of the messages "
          f"accepted, then a new worker")
    row("killed at (after Start)", f"{k - c['started_at']:.1f} s")
    row("messages stored as accepted at the kill (live events)", f"{c['accepted_at_kill']:,}")
    row("messages the sandbox had accepted at the kill", f"{c['sent_before_kill']:,}")
    row("recipients handed to the outbox at the kill", f"{c['stored_at_kill']:,}")
    first = c["first_after_kill"]
    row("kill -> first message from the new worker", f"{first:.1f} s" if first is not None else "none")
    row("Start -> last message", f"{c['last']:.1f} s" if c["last"] is not None else "none")
    row("messages the sandbox accepted", f"{c['sends']:,}")
    row("most messages in any 1-s window / mps", f"{c['max_window']} / {plan.mps}")
    duplicates = sum(len(t) - 1 for t in c["duplicates"].values())
    row("duplicates (extra sends to a number)", f"{duplicates}")
    row("lost (audience numbers never received)", f"{len(c['lost'])}")
    row("contacts with more than one message stored", f"{c['contacts_with_two_messages']}")
    print(f"  recipients by status: {c['recipients']}; messages by status: {c['messages']}")
    for to, times in sorted(c["duplicates"].items())[:20]:
        print(f"    duplicate +{to}: sent at " + ", ".join(f"{t - k:+.2f} s" for t in times) + " from the kill")
    if c["lost"]:
        print(f"    lost, first of them: {', '.join('+' + x for x in c['lost'][:10])}")


# ---- main -----------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", default="1000,1000",
                        help="recipients of each measured broadcast, comma-separated (one per --mps)")
    parser.add_argument("--mps", default="80,1000", help="each broadcast's number's messages per second")
    parser.add_argument("--crash-recipients", type=int, default=600, help="0: no crash test")
    parser.add_argument("--crash-mps", type=int, default=80)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of the idle phase (the CPU baseline)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory for py-spy profiles of the worker during each measured broadcast")
    args = parser.parse_args()
    sizes = [int(x) for x in args.recipients.split(",") if x.strip()]
    rates = [int(x) for x in args.mps.split(",") if x.strip()]
    if len(sizes) != len(rates):
        parser.error("--recipients and --mps need as many values each")
    plans = [Plan("warm-up", WARM_UP, 1000, "warm", kind="warm-up")]
    plans += [Plan(f"{n:,} at {mps:,} mps", n, mps, f"run{k}") for k, (n, mps) in enumerate(zip(sizes, rates, strict=True))]
    if args.crash_recipients:
        plans.append(Plan(f"crash {args.crash_recipients:,} at {args.crash_mps} mps", args.crash_recipients,
                          args.crash_mps, "crash", kind="crash"))
    from app.embedded_redis import EmbeddedRedis

    began = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="bench-broadcasts-"))
    sandbox_port, web_port = _free_port(), _free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, True)  # last, once every server has stopped
        redis = stack.enter_context(EmbeddedRedis(tmp / "redis", persist=False))
        db = stack.enter_context(counting.database(tmp))
        counting.headline("broadcasts benchmark", db)
        sandbox = stack.enter_context(_process(_SANDBOX.format(port=sandbox_port),
                                               f"{sandbox_url}/sandbox/control/numbers"))
        database = counting.database_name("broadcasts")
        stack.callback(counting.drop_databases, db, [database])
        env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")}
        env.update({"INBOX_MONGODB_URL": db.url, "INBOX_MONGODB_DATABASE": database, "INBOX_REDIS_URL": redis.url,
                    "INBOX_SECRET_KEY": SECRET_KEY, "INBOX_DATA_DIR": str(tmp / "data"),
                    "INBOX_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
                    "INBOX_GRAPH_API_URL": f"{sandbox_url}/sandbox/graph", "INBOX_LOG_LEVEL": "WARNING",
                    "INBOX_API_RATE_LIMIT_PER_MINUTE": "10000000", "PYTHONPATH": str(ROOT)})
        asyncio.run(seed(plans, env, sandbox_url))
        web = start_inbox("web", env, "--port", str(web_port))
        stack.callback(stop, web.proc)
        workers: list[Counted] = []

        def new_worker() -> tuple[Counted, int]:
            port = _free_port()
            worker = start_inbox("worker", {**env, "INBOX_WORKER_METRICS_PORT": str(port)})
            stack.callback(stop, worker.proc)
            workers.append(worker)
            return worker, port

        worker, metrics_port = new_worker()
        wait_live(f"http://127.0.0.1:{web_port}/health/live", [web.proc, worker.proc], "inbox web / worker")
        others = {"sandbox": sandbox.pid, "database": db.pid, "redis": redis.pid}
        import uvloop

        async def run() -> tuple[list[Outcome], dict[str, Any] | None]:
            harness = await Harness({**env, "BENCH_WEB_PORT": str(web_port)}, sandbox_url, web, worker, others,
                                    metrics_port).start()
            try:
                await asyncio.sleep(2.0)  # the worker's startup sweeps
                print(f"idle `inbox web` and `inbox worker` for {args.idle:g} s:")
                harness.idle = await harness.meter.idle(args.idle)
                harness.profile = args.profile
                counting.idle_report(harness.idle)
                outcomes = []
                for plan in plans:
                    if plan.kind == "crash":
                        continue
                    outcome = await harness.broadcast(plan)
                    print(f"{plan.label}: done, last message {outcome.figures.get('last_s', 0):.1f} s after Start "
                          f"({time.monotonic() - began:.0f} s into the benchmark)", flush=True)
                    if plan.kind == "measured":
                        outcomes.append(outcome)
                report(outcomes)
                crash = None
                crash_plan = next((p for p in plans if p.kind == "crash"), None)
                if crash_plan is not None:
                    def restart() -> Counted:
                        worker = new_worker()[0]
                        # nobody asks it for stats: its stdout is read here, so its log never fills the pipe
                        threading.Thread(target=lambda: [None for _ in worker.proc.stdout], daemon=True).start()
                        return worker

                    crash = await harness.crash(crash_plan, restart)
                    report_crash(crash_plan, crash)
                return outcomes, crash
            finally:
                await harness.close()

        outcomes, crash = uvloop.run(run())
    print("targets:")
    for o in outcomes:
        f = o.figures
        counting.judge(f"{o.plan.label}: no 1-s window over the mps", f"max {f.get('max_window', 0)} / {o.plan.mps}",
                       f.get("over", 0) == 0)
        counting.judge(f"{o.plan.label}: utilisation under backlog >= {TARGET_UTILISATION:.0%}",
                       f"{f.get('utilisation', 0):.1%}", f.get("utilisation", 0) >= TARGET_UTILISATION)
    if len(outcomes) >= 2:
        small, large = min(outcomes, key=lambda o: o.plan.recipients), max(outcomes, key=lambda o: o.plan.recipients)
        rss = large.figures["rss_mb"]
        flat = rss.get(0.9, 0) - rss.get(0.1, 0)
        counting.judge(f"worker memory flat over the {large.plan.label} broadcast (10 % -> 90 %)", f"{flat:+.0f} MB",
                       flat <= 20)
        per = [o.ops.get("worker", 0) / o.plan.recipients for o in (small, large)]
        if small.plan.recipients != large.plan.recipients:
            counting.judge("worker operations per recipient flat in the audience size",
                           f"{counting.num(per[0])} -> {counting.num(per[1])}", per[1] <= per[0] * 1.1 + 0.1)
    if crash is not None:
        duplicates = sum(len(t) - 1 for t in crash["duplicates"].values())
        counting.judge("crash: duplicates", str(duplicates), duplicates == 0)
        counting.judge("crash: lost", str(len(crash["lost"])), not crash["lost"])
    if args.profile is not None:
        for raw in sorted(args.profile.glob("worker-*.raw")):
            print(raw.name, summarize(raw))
    print(f"total {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
