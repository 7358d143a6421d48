"""Reports at size: each panel's time, and the whole page's, for 7, 30 and 90 days, with the database work.

    python bench/reports.py [--messages 1000000] [--conversations 100000] [--days 90] [--samples 3] [--keep DIR]

``--keep DIR``: the generated data stays in DIR, and a later run with the same sizes uses it instead of generating
it again (13 minutes at the default size): to compare two versions of the code on the same data. The rollups
are dropped at the start of every run, so each counts the past itself.

Generates a workspace with three numbers, its conversations and their messages (customers' and ours, in turns,
with statuses, failures and pricing, spread over ``--days`` days), straight into the database with bulk inserts.
Then, for each period, it times every panel's figures (the functions the page and the API call, in this
process), counting MongoDB operations and the documents the server examined (``explain`` where it answers),
and the CPU of the database server. Target (issue #19): the 30-day page under 1 s on the embedded server at
1,000,000 messages, every panel served from an index or a rollup.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import counting  # noqa: E402
from bson import ObjectId  # noqa: E402
from pymongo import monitoring  # noqa: E402

TYPES_IN = [("text", 80), ("image", 10), ("interactive", 5), ("audio", 3), ("document", 2)]
TYPES_OUT = [("text", 75), ("template", 15), ("image", 7), ("interactive", 3)]
OUTCOMES = [("read", 55), ("delivered", 28), ("sent", 10), ("failed", 5), ("accepted", 2)]
FAILURES = [(131026, "Message undeliverable", 40), (131047, "Re-engagement message", 25),
            (131049, "This message was not delivered to maintain healthy ecosystem engagement.", 20),
            (130472, "User's number is part of an experiment", 10), (131000, "Something went wrong", 5)]


def _pick(rng: random.Random, weighted: list[tuple]) -> tuple:
    total = sum(w[-1] for w in weighted)
    roll = rng.uniform(0, total)
    for item in weighted:
        roll -= item[-1]
        if roll <= 0:
            return item
    return weighted[-1]


class Ops(monitoring.CommandListener):
    """MongoDB commands this process sends, by name (what one panel costs)."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in counting.IGNORED_COMMANDS:
            self.count[event.command_name] = self.count.get(event.command_name, 0) + 1

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


OPS = Ops()
monitoring.register(OPS)


TEAMS = [ObjectId() for _ in range(4)]
AGENTS = [ObjectId() for _ in range(10)]
LABELS = [str(ObjectId()) for _ in range(6)]


async def generate(database: Any, workspace_id: ObjectId, accounts: list[ObjectId], n_messages: int,
                   n_conversations: int, days: int, now: datetime, seed: int = 7) -> dict[str, int]:
    """Conversations with their messages in turns, written in bulk (the shape the app stores). 70 % of the
    conversations are in one of 4 teams, 80 % assigned to one of 10 agents, with 0 to 2 of 6 labels."""
    rng = random.Random(seed)
    messages, conversations, contacts = database["messages"], database["conversations"], database["contacts"]
    per_conversation = max(1, n_messages // n_conversations)
    start = now - timedelta(days=days)
    batch: list[dict] = []
    convs: list[dict] = []
    people: list[dict] = []
    written = 0
    for c in range(n_conversations):
        contact_id, conversation_id = ObjectId(), ObjectId()
        account_id = accounts[c % len(accounts)]
        opened = start + timedelta(seconds=rng.uniform(0, days * 86400 - 3600))
        people.append({"_id": contact_id, "workspace_id": workspace_id, "wa_id": f"4479{c:08d}", "key": f"wa:4479{c:08d}",
                       "identities": [f"wa:4479{c:08d}"], "name": f"Person {c}",
                       "created_at": opened, "updated_at": opened})
        at = opened
        n = per_conversation if c < n_conversations - 1 else n_messages - written
        waiting_since = None
        for i in range(n):
            inbound = i % 2 == 0
            kind = _pick(rng, TYPES_IN if inbound else TYPES_OUT)[0]
            doc: dict[str, Any] = {"_id": ObjectId(), "workspace_id": workspace_id, "conversation_id": conversation_id,
                                   "account_id": account_id, "contact_id": contact_id,
                                   "direction": "inbound" if inbound else "outbound", "type": kind,
                                   "content": {"body": "hello"} if kind == "text" else {},
                                   "timestamp": min(at, now - timedelta(seconds=1)), "status_at": {},
                                   "reactions": [], "edits": [], "attempts": 0, "priority": "agent",
                                   "marketing": False, "conversation_applied": True, "search_tokens": []}
            if inbound:
                doc["status"] = "received"
                doc["wamid"] = f"wamid.in.{c}.{i}"
                if i == 0:
                    doc["opened"] = "new"
                waiting_since = waiting_since or doc["timestamp"]
            else:
                status = _pick(rng, OUTCOMES)[0]
                doc.update(status=status, wamid=f"wamid.out.{c}.{i}", via="inbox", attempts=1)
                if status == "failed":
                    code, title, _ = _pick(rng, FAILURES)
                    doc["error"] = {"code": code, "title": title, "message": title, "details": None,
                                    "agent_message": title}
                if waiting_since is not None:  # a person's answer: the customer's wait ends
                    doc["response"] = {"since": waiting_since, "first": i == 1}
                    waiting_since = None
                if kind == "template" and status != "failed":
                    category = "marketing" if rng.random() < 0.6 else "utility"
                    doc["pricing"] = {"billable": True, "category": category, "pricing_model": "PMP", "type": "regular"}
                    doc["pricing_category"] = category
            doc["updated_at"] = doc["timestamp"]
            batch.append(doc)
            at += timedelta(seconds=rng.expovariate(1 / 600))
        written += n
        last = batch[-1]["timestamp"] if batch else opened
        if rng.random() < 0.8:  # resolved: the line of its thread
            batch.append({"_id": ObjectId(), "workspace_id": workspace_id, "conversation_id": conversation_id,
                          "account_id": account_id, "contact_id": contact_id, "direction": "internal",
                          "type": "event", "content": {"kind": "resolved", "text": "Ann resolved the conversation"},
                          "status": "delivered", "timestamp": min(at, now - timedelta(seconds=1)),
                          "updated_at": min(at, now - timedelta(seconds=1)), "status_at": {}, "reactions": [],
                          "edits": [], "attempts": 0, "priority": "agent", "marketing": False,
                          "conversation_applied": True, "search_tokens": []})
        convs.append({"_id": conversation_id, "workspace_id": workspace_id, "account_id": account_id,
                      "contact_id": contact_id, "status": "resolved" if rng.random() < 0.8 else "open",
                      "team_id": rng.choice(TEAMS) if rng.random() < 0.7 else None,
                      "assignee_id": rng.choice(AGENTS) if rng.random() < 0.8 else None,
                      "labels": rng.sample(LABELS, rng.choice((0, 0, 1, 1, 2))), "unread_count": 0,
                      "last_message_at": last, "updated_at": last, "merged_from": []})
        if len(batch) >= 5000:
            await messages.insert_many(batch, ordered=False)
            batch.clear()
        if len(convs) >= 5000:
            await conversations.insert_many(convs, ordered=False)
            await contacts.insert_many(people, ordered=False)
            convs.clear()
            people.clear()
    if batch:
        await messages.insert_many(batch, ordered=False)
    if convs:
        await conversations.insert_many(convs, ordered=False)
        await contacts.insert_many(people, ordered=False)
    return {"messages": written, "conversations": n_conversations}


async def timed(panel: Callable[[], Awaitable[Any]], samples: int, db_pid: int | None) -> dict[str, float]:
    seconds, ops, cpu = [], [], []
    for _ in range(samples):
        before_ops, before_cpu = sum(OPS.count.values()), counting.cpu_seconds(db_pid)
        started = time.perf_counter()
        await panel()
        seconds.append(time.perf_counter() - started)
        ops.append(sum(OPS.count.values()) - before_ops)
        cpu.append(counting.cpu_seconds(db_pid) - before_cpu)
    return {"median_s": statistics.median(seconds), "max_s": max(seconds), "ops": statistics.median(ops),
            "db_cpu_s": statistics.median(cpu)}


async def bench(args: argparse.Namespace, db: counting.BenchDatabase, name: str) -> None:
    from motor.motor_asyncio import AsyncIOMotorClient

    from app.db import Database
    from app.domains.access.scope import Scope
    from app.domains.reports import backlog, panels
    from app.domains.reports.periods import period_of, zone_of

    sizes = {"_id": "sizes", "messages": args.messages, "conversations": args.conversations, "days": args.days,
             "shape": 2}  # 2: conversations in teams, assigned, labelled
    raw = AsyncIOMotorClient(db.url, tz_aware=True)
    kept = await raw[name]["bench_generated"].find_one({"_id": "sizes"}) if args.keep else None
    reuse = kept is not None and {k: kept.get(k) for k in sizes} == sizes
    if not reuse:  # before the connection below, which makes the indexes the generated data needs
        await raw.drop_database(name)
    raw.close()
    connection = Database(db.url, name, timeout_ms=60_000)
    await connection.connect()
    database = connection.client[name]
    zone = zone_of(args.zone)
    if reuse:
        assert kept is not None
        workspace_id, now = kept["workspace_id"], kept["now"].replace(tzinfo=UTC)
        for collection in ("report_hours", "report_contact_hours", "report_slice_hours", "report_states", "report_backlog"):
            await database[collection].delete_many({})  # not drop(): its indexes stay
        print(f"kept data: {args.messages:,} messages in {args.conversations:,} conversations over {args.days} days, "
              f"generated {kept['now']:%Y-%m-%d %H:%M} UTC; rollups dropped", flush=True)
    else:
        workspace_id, accounts = ObjectId(), [ObjectId() for _ in range(3)]
        now = datetime.now(UTC)
        started = time.perf_counter()
        made = await generate(database, workspace_id, accounts, args.messages, args.conversations, args.days, now)
        took = time.perf_counter() - started
        print(f"generated {made['messages']:,} messages in {made['conversations']:,} conversations over {args.days} "
              f"days in {took:.0f} s ({made['messages'] / took:,.0f} messages/s)", flush=True)
        if args.keep:
            await database["bench_generated"].insert_one({**sizes, "workspace_id": workspace_id, "now": now,
                                                          "team": TEAMS[0], "label": LABELS[0]})
        kept = {"team": TEAMS[0], "label": LABELS[0]}
    prepare_started, before = time.perf_counter(), dict(OPS.count)
    await panels.prepare(workspace_id, zone)
    print(f"prepared what the panels read in {time.perf_counter() - prepare_started:.1f} s "
          f"({sum(OPS.count.values()) - sum(before.values())} operations)", flush=True)
    # The open backlog: what the worker's quarter-hour count costs at this size, then a sample at every quarter
    # hour of the period (copies of that count), so the pages below read a full history of them.
    sampled = await timed(lambda: backlog.sample_backlog(workspace_id), args.samples, db.pid)
    counts = await backlog.count_backlog(workspace_id)
    opened = sum(n for key, n in counts.items() if key.startswith("open:") and key.count(":") == 1)
    print(f"backlog count (the worker's, every quarter hour): {sampled['median_s'] * 1000:.0f} ms, "
          f"{sampled['ops']:.0f} db ops, {sampled['db_cpu_s'] * 1000:.0f} ms db CPU, for {opened:,} open conversations "
          f"({len(counts)} counters)", flush=True)
    first = backlog.quarter_of(now - timedelta(days=args.days + 1))
    history = [{"workspace_id": workspace_id, "at": first + backlog.QUARTER * i, "taken_at": now, "counts": counts}
               for i in range(int((now - first) / backlog.QUARTER))]
    await database["report_backlog"].delete_many({"workspace_id": workspace_id})
    await database["report_backlog"].insert_many(history, ordered=False)
    scope = Scope.whole(workspace_id)
    today = datetime.now(zone).date()
    print(f"\n{'period':<8} {'panel':<16} {'median':>9} {'max':>9} {'db ops':>7} {'db CPU':>8}")
    for preset, days in (("last_7_days", 7), ("last_30_days", 30), ("last_90_days", 90)):
        period = period_of(preset, None, None, zone, today)
        whole = 0.0
        for panel_name, panel in panels.PANELS.items():
            figures = await timed(lambda panel=panel, period=period: panel(scope, period, "day"), args.samples,
                                  db.pid)
            whole += figures["median_s"]
            print(f"{days:>3} days  {panel_name:<16} {figures['median_s'] * 1000:>7.0f} ms {figures['max_s'] * 1000:>7.0f} ms "
                  f"{figures['ops']:>7.0f} {figures['db_cpu_s'] * 1000:>6.0f} ms", flush=True)
        page = await timed(lambda period=period: panels.page(scope, period, "day"), args.samples, db.pid)
        print(f"{days:>3} days  {'whole page':<16} {page['median_s'] * 1000:>7.0f} ms {page['max_s'] * 1000:>7.0f} ms "
              f"{page['ops']:>7.0f} {page['db_cpu_s'] * 1000:>6.0f} ms   (the panels alone, each reading: "
              f"{whole * 1000:.0f} ms)", flush=True)
        if days == 30:
            counting.judge("the 30-day page under 1 s (embedded server)", f"{page['median_s'] * 1000:.0f} ms",
                           page["median_s"] < 1.0)
            for only in (f"team:{kept['team']}", f"label:{kept['label']}"):
                narrowed = await timed(lambda period=period, only=only: panels.page(scope, period, "day", only=only),
                                       args.samples, db.pid)
                print(f"{days:>3} days  {'page, ' + only.split(':')[0]:<16} {narrowed['median_s'] * 1000:>7.0f} ms "
                      f"{narrowed['max_s'] * 1000:>7.0f} ms {narrowed['ops']:>7.0f} {narrowed['db_cpu_s'] * 1000:>6.0f} ms   "
                      f"(one {only.split(':')[0]}'s conversations)", flush=True)
    # What freshness costs: the page after messages changed since the last refresh (statuses coming in),
    # spread over the last 30 days (so over many hours: the worst case), then again with nothing changed.
    period = period_of("last_30_days", None, None, zone, today)
    moving = await database["conversations"].find(
        {"workspace_id": workspace_id, "last_message_at": {"$gte": now - timedelta(days=30)}},
        projection={"_id": 1}).limit(10).to_list(None)
    await database["conversations"].update_many(
        {"_id": {"$in": [c["_id"] for c in moving]}}, {"$set": {"team_id": kept["team"], "sliced_at": datetime.now(UTC)}})
    after = await timed(lambda: panels.page(scope, period, "day"), 1, db.pid)
    print(f"30-day page after {len(moving)} conversations moved to another team: {after['median_s'] * 1000:.0f} ms, "
          f"{after['ops']:.0f} db ops, {after['db_cpu_s'] * 1000:.0f} ms db CPU", flush=True)
    for changed in (100, 1000):
        outbound = await database["messages"].find(
            {"workspace_id": workspace_id, "direction": "outbound", "status": "delivered",
             "timestamp": {"$gte": now - timedelta(days=30)}}, projection={"_id": 1}).limit(changed).to_list(None)
        await database["messages"].update_many({"_id": {"$in": [m["_id"] for m in outbound]}},
                                               {"$set": {"status": "read", "updated_at": datetime.now(UTC)}})
        after = await timed(lambda: panels.page(scope, period, "day"), 1, db.pid)
        print(f"30-day page after {len(outbound):,} messages changed in as many hours as they fall in: "
              f"{after['median_s'] * 1000:.0f} ms, {after['ops']:.0f} db ops, {after['db_cpu_s'] * 1000:.0f} ms db CPU",
              flush=True)
    connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--zone", default="Europe/London")
    parser.add_argument("--keep", metavar="DIR", help="keep the generated data in DIR and use it again")
    args = parser.parse_args()
    from app.logging import configure_logging

    configure_logging("WARNING")
    with contextlib.ExitStack() as stack:
        if args.keep:
            tmp = Path(args.keep)
            tmp.mkdir(parents=True, exist_ok=True)
        else:
            tmp = Path(tempfile.mkdtemp(prefix="bench-reports-"))
            stack.callback(shutil.rmtree, tmp, True)
        db = stack.enter_context(counting.database(tmp))
        counting.headline("reports benchmark", db)
        name = "bench_reports_kept" if args.keep else counting.database_name("reports")
        if not args.keep:
            stack.callback(counting.drop_databases, db, [name])
        asyncio.run(bench(args, db, name))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(main())
