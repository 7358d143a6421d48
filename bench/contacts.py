"""Benchmark of contacts at scale: a CSV import through the real worker, and the contacts list at 100,000.

    .venv/bin/python bench/contacts.py [--rows 20000,100000] [--samples 20] [--skip-list]

Starts its own Redis, the database (INBOX_MONGODB_URL when set, else an embedded SecantusDB server)
and `inbox worker` as a child process, counted (bench/counting.py: every MongoDB command the worker
sends, its CPU, its peak resident memory from /proc). For each size in ``--rows`` it generates a CSV
file of that many contacts (phone, name, email, tags, consent, and three typed attributes: a list, a
number, a date), uploads it in a workspace of its own through the product's service (read through,
stored in GridFS), starts it, and waits for the worker to finish it. Printed per import: rows/s,
MongoDB operations per row (by kind), the worker's CPU per 1,000 rows, and its peak resident memory
over what it held before; two sizes show whether memory is flat in the file's size (target: it is,
and ≤ 2 operations per row).

Then, on the largest workspace: the contacts list as the page asks for it (first page of 50 through
ContactDirectory.page, and the total it shows through ContactDirectory.count) for each filter and
sort the page offers, p50 / p95 over ``--samples``; for each, whether an index serves the page's
query, by MongoDB's own rule on the command the driver sent (tests/support/index_rule.py: the
embedded server's planner is not mongod's, so its plans say little), and the plan the server reports
(``explain``) when it answers one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import counting  # noqa: E402
from bench.counting import Counted, Meter, percentile  # noqa: E402

SECRET_KEY = "c" * 48
TARGET_OPS_PER_ROW = 2.0
PLANS = ["Basic", "Pro", "Enterprise"]
TAGS = ["vip", "newsletter", "fair 2025", "wholesale", "beta"]


# ---- the file ---------------------------------------------------------------------------------------------

def write_csv(path: Path, rows: int, seed: int) -> int:
    """A file of ``rows`` (≤ 100,000) contacts, UK mobile numbers +44 7911 <seed><5 digits> (valid for seeds
    0, 1, 2, 7 and 8), unique per file; returns its size in bytes."""
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Phone", "Full name", "Email", "Tags", "Marketing consent", "Plan", "Orders", "Signup date"])
        for i in range(rows):
            writer.writerow([f"+44 7911 {seed}{i:05d}", f"Person {seed}-{i}", f"p{seed}.{i}@example.com",
                             "; ".join(rng.sample(TAGS, rng.randint(0, 2))), rng.choice(["yes", "no", ""]),
                             rng.choice(PLANS), str(rng.randint(0, 40)),
                             (start + timedelta(days=rng.randint(0, 700))).date().isoformat()])
    return path.stat().st_size


# ---- this process's view of the database (seeding, uploads, the list) -------------------------------------

def settings_of(env: dict[str, str]) -> Any:
    from app.config import Settings

    return Settings(_env_file=None, mongodb_url=env["INBOX_MONGODB_URL"], mongodb_database=env["INBOX_MONGODB_DATABASE"],
                    redis_url=env["INBOX_REDIS_URL"], secret_key=SecretStr(SECRET_KEY),
                    data_dir=Path(env["INBOX_DATA_DIR"]), log_level="WARNING")


async def new_workspace(runtime: Any, n: int) -> Any:
    from app.domains.catalog.models import ContactAttribute

    workspace, _ = await runtime.people.create_workspace(f"Bench {n}", f"bench{n}@example.com", "bench password 123")
    for key, name, type_, options in (("plan", "Plan", "list", PLANS), ("orders", "Orders", "number", []),
                                      ("signup", "Signup date", "date", [])):
        await ContactAttribute(workspace_id=workspace.id, key=key, name=name, type=type_, options=options).insert()
    return workspace


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


async def import_file(runtime: Any, workspace: Any, path: Path, rows: int, worker: Counted, meter: Meter) -> dict:
    """Upload (this process), start, and wait for the worker to finish; what it cost the worker."""
    from app.domains.contact_files.imports import ContactImports, ImportOptions
    from app.domains.contact_files.models import ContactImport
    from app.domains.outbox.media import Upload
    from app.queue import enqueue_contact_import

    imports = ContactImports()
    with path.open("rb") as source:
        import hashlib

        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        job = await imports.receive(workspace.id, Upload(source, path.stat().st_size, digest, b""), path.name, None)
    await asyncio.sleep(1.0)  # let the worker's memory settle before its peak is reset
    rss_before = _status_kb(worker.pid, "VmRSS")
    Path(f"/proc/{worker.pid}/clear_refs").write_text("5")  # VmHWM starts again from VmRSS
    with meter.phase() as got:
        started = time.perf_counter()
        await imports.start(workspace.id, str(job.id), ImportOptions(tags=["imported"]),
                            lambda i, g: enqueue_contact_import(runtime.arq, i, g))
        while True:
            current = await ContactImport.get(job.id)
            if current.status != "running":
                break
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - started
    peak = _status_kb(worker.pid, "VmHWM")
    usage = got[0]
    return {"job": current, "seconds": seconds, "usage": usage, "rss_before_mb": rss_before / 1024,
            "peak_growth_mb": (peak - rss_before) / 1024}


# ---- the contacts list --------------------------------------------------------------------------------------

def list_cases(ids: dict[str, str]) -> list[tuple[str, dict | None, str | None, str]]:
    """(what the page asks, its filter, its search words, its sort): every filter field and sort it offers."""
    def one(field: str, op: str, value: Any = None) -> dict:
        return {"conditions": [{"field": field, "op": op, "value": value}]}

    return [
        ("all contacts, newest first", None, None, "created"),
        ("sort: recently changed", None, None, "updated"),
        ("sort: last message from them", None, None, "last_inbound"),
        ("sort: name A→Z", None, None, "name"),
        ("search: a name", None, "person 2-5000", "created"),
        ("search: digits of a number", None, "7911 2050", "created"),
        ("name is", one("name", "is", "Person 2-500"), None, "created"),
        ("name contains", one("name", "contains", "2-500"), None, "created"),
        ("phone starts with", one("phone", "starts_with", "+4479112050"), None, "created"),
        ("phone is", one("phone", "is", "+447911200500"), None, "created"),
        ("email is", one("email", "is", "p2.500@example.com"), None, "created"),
        ("username is", one("username", "is", "someone"), None, "created"),
        ("user id is", one("user_id", "is", "GB.12345"), None, "created"),
        ("tag has", one("tag", "has", "vip"), None, "created"),
        ("tag has not", one("tag", "has_not", "vip"), None, "created"),
        ("conversation label has", one("label", "has", ids["label"]), None, "created"),
        ("opted out is yes", one("opted_out", "is", True), None, "created"),
        ("last message after", one("last_inbound_at", "after", "2025-01-01"), None, "created"),
        ("created before", one("created_at", "before", "2020-01-01"), None, "created"),
        ("attribute (list) is", one("attributes.plan", "is", "Pro"), None, "created"),
        ("attribute (number) more than", one("attributes.orders", "gt", 30), None, "created"),
        ("attribute (date) before", one("attributes.signup", "before", "2023-03-01"), None, "created"),
        ("attribute is set", one("attributes.plan", "is_set"), None, "created"),
    ]


class Captured:
    """The find commands this process sends to the contacts collection (a pymongo listener)."""

    def __init__(self) -> None:
        from pymongo import monitoring

        self.commands: list[dict] = []
        self.on = False
        outer = self

        class Listener(monitoring.CommandListener):
            def started(self, event: monitoring.CommandStartedEvent) -> None:
                if outer.on and event.command_name in ("find", "aggregate", "count") and \
                        event.command.get(event.command_name) == "contacts":
                    outer.commands.append((event.command_name, dict(event.command)))

            def succeeded(self, event: Any) -> None:
                pass

            def failed(self, event: Any) -> None:
                pass

        monitoring.register(Listener())


TIMED_ON_EMBEDDED = ("all contacts, newest first", "search: a name", "tag has")
"""On the embedded server every list query reads the whole collection (COLLSCAN, then SORT: its planner
uses no index for them), so they all cost about the same: a few are timed there, every one on a MongoDB."""


async def bench_list(runtime: Any, workspace: Any, samples: int, captured: Captured, case_seconds: float,
                     real: bool) -> None:
    from app.domains.catalog.models import Label
    from app.domains.contacts.directory import ContactDirectory
    from app.domains.contacts.filters import parse_filter, sort_of
    from app.domains.contacts.models import Contact
    from tests.support.index_rule import Query, check, declared_indexes, queries_of

    directory = ContactDirectory(runtime.live, runtime.integrations)
    label = await Label(workspace_id=workspace.id, name="bench").insert()
    indexes = declared_indexes(Contact)
    database = Contact.get_motor_collection().database
    total = await Contact.find(Contact.workspace_id == workspace.id).count()
    print(f"\ncontacts list at {total:,} contacts: the first page of 50 and the total the page shows, p50 / p95 "
          f"over up to {samples} ({'every query' if real else ', '.join(TIMED_ON_EMBEDDED) + ' only'}); whether "
          "an index serves the page's query by MongoDB's rule, and the server's own plan:")
    print(f"  {'what the page asks':<32} {'page p50':>9} {'page p95':>9} {'count':>8} {'n':>3}  index")
    for name, raw, q, sort in list_cases({"label": str(label.id)}):
        spec = parse_filter(raw) if raw else None
        # The query page() sends (app/pagination.py: (field, _id) order, limit + 1), checked without running it.
        field, descending = sort_of(sort)
        direction = -1 if descending else 1
        order = [(field, direction), ("_id", direction)]
        selected = await directory.selection(workspace.id, spec=spec, q=q)
        query = Query("contacts", "find", selected, tuple(order), 51)
        pages: list[float] = []
        counts: list[float] = []
        if real or name in TIMED_ON_EMBEDDED:
            captured.commands = []
            budget = time.monotonic() + case_seconds
            for k in range(samples):
                captured.on = k == 0
                started = time.perf_counter()
                await directory.page(workspace.id, search=q, filter=spec, sort=sort, limit=50)
                pages.append((time.perf_counter() - started) * 1000)
                captured.on = False
                if k == 0:
                    started = time.perf_counter()
                    await directory.count(workspace.id, spec=spec, q=q)
                    counts.append((time.perf_counter() - started) * 1000)
                if time.monotonic() > budget and k >= 1:  # slow on the embedded server: enough samples
                    break
            sent = [queries_of(n, c)[0] for n, c in captured.commands if n == "find"]
            if sent and (sent[-1].sort, sent[-1].limit) != (query.sort, query.limit):
                raise RuntimeError(f"page() sent {sent[-1]}, not {query}: the bench's copy of its query is stale")
        result = check(query, indexes)
        if result.served:
            verdict = f"served by {result.index.name}" if result.index else "served (each $or branch by an index)"
        else:
            bounding = result.bounding
            verdict = "NOT served" + (f" (read through {bounding.index.name}, then sorted)" if bounding else "")
        plan = await server_plan(database, {"find": "contacts", "filter": selected, "sort": dict(order), "limit": 51})
        timing = (f"{percentile(pages, .5):>7.0f}ms {percentile(pages, .95):>7.0f}ms {counts[0]:>6.0f}ms "
                  f"{len(pages):>3}" if pages else f"{'-':>9} {'-':>9} {'-':>8} {'':>3}")
        print(f"  {name:<32} {timing}  {verdict}{f'; server: {plan}' if plan else ''}", flush=True)


async def server_plan(database: Any, command: dict) -> str:
    """The winning plan's stages as the server explains them ("" when it does not)."""
    body = {k: v for k, v in command.items() if k in ("find", "filter", "sort", "limit", "projection")}
    try:
        answer = await database.command("explain", body, verbosity="queryPlanner")
    except Exception:  # noqa: BLE001 - a server without explain: the rule above stands alone
        return ""
    stages: list[str] = []
    node = (answer.get("queryPlanner") or {}).get("winningPlan") or {}
    while isinstance(node, dict) and node:
        stage = node.get("stage") or ""
        if stage:
            stages.append(stage + (f"({node['indexName']})" if node.get("indexName") else ""))
        node = node.get("inputStage") or (node.get("inputStages") or [None])[0]
    return " → ".join(reversed([s for s in stages if not s.startswith("PROJECTION")]))


# ---- the run ---------------------------------------------------------------------------------------------------

async def bench(args: argparse.Namespace, env: dict[str, str], worker: Counted, meter: Meter) -> None:
    from app.db import Database
    from app.runtime import Runtime

    captured = Captured()
    runtime = Runtime(settings_of(env))
    # The list's queries read the whole collection on the embedded server: more than the 10 s a request may wait.
    runtime.db = Database(env["INBOX_MONGODB_URL"], env["INBOX_MONGODB_DATABASE"], timeout_ms=600_000)
    await runtime.start()
    results = []
    try:
        tmp = Path(env["INBOX_DATA_DIR"])
        # Warm-up, not counted: the worker's first import pays for imports, caches and its first allocations.
        warm = tmp / "warm-up.csv"
        write_csv(warm, 500, seed=7)
        await import_file(runtime, await new_workspace(runtime, 0), warm, 500, worker, meter)
        for n, rows in enumerate(args.rows, start=1):
            path = tmp / f"contacts-{rows}.csv"
            size = write_csv(path, rows, seed=n)
            workspace = await new_workspace(runtime, n)
            got = await import_file(runtime, workspace, path, rows, worker, meter)
            job, usage = got["job"], got["usage"]
            ops = usage.operations()
            cpu = usage.cpu.get("worker", 0.0)
            results.append((rows, got))
            print(f"import of {rows:,} rows ({size / 1024 / 1024:.1f} MB): {job.status}, created {job.counts.created:,}, "
                  f"skipped {job.counts.skipped:,} in {got['seconds']:.1f} s = {rows / got['seconds']:,.0f} rows/s", flush=True)
            print(f"  MongoDB operations   {ops / rows:.4f} per row ({ops} in all: "
                  f"{counting.listing(usage.mongo['work'], 1, 8)})")
            print(f"  CPU                  worker {cpu / rows * 1000:.2f} s per 1,000 rows, database "
                  f"{usage.cpu.get('database', 0.0) / rows * 1000:.2f} s")
            print(f"  worker memory        peak RSS +{got['peak_growth_mb']:.1f} MB over {got['rss_before_mb']:.0f} MB "
                  "(VmHWM, reset before the import)", flush=True)
            if n == len(args.rows) and not args.skip_list:
                await bench_list(runtime, workspace, args.samples, captured, args.case_seconds, args.real)
    finally:
        await runtime.stop()
    print("targets:")
    worst_ops = max(r[1]["usage"].operations() / r[0] for r in results)
    counting.judge(f"MongoDB operations per imported row <= {TARGET_OPS_PER_ROW:g}", f"{worst_ops:.4f}",
                   worst_ops <= TARGET_OPS_PER_ROW)
    if len(results) > 1:
        small, large = results[0], results[-1]
        growth = large[1]["peak_growth_mb"] - small[1]["peak_growth_mb"]
        ratio = large[0] / small[0]
        counting.judge(f"worker memory flat in the file's size ({ratio:.0f}x the rows)",
                       f"{small[1]['peak_growth_mb']:.1f} → {large[1]['peak_growth_mb']:.1f} MB",
                       growth < max(8.0, small[1]["peak_growth_mb"]))


def wait_for_worker(redis_url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Until the worker's heartbeat is in Redis (it took its first jobs), then its startup sweeps' time."""
    import redis

    from app.queue import HEARTBEAT_KEY

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while not client.exists(HEARTBEAT_KEY):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("inbox worker did not start")
            time.sleep(0.2)
    finally:
        client.close()
    time.sleep(1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="20000,100000", help="sizes of the imported files, comma-separated")
    parser.add_argument("--samples", type=int, default=20, help="timings per list query")
    parser.add_argument("--case-seconds", type=float, default=8.0,
                        help="stop sampling a list query after this long (at least 2 samples)")
    parser.add_argument("--skip-list", action="store_true", help="only the imports")
    args = parser.parse_args()
    args.rows = [int(r) for r in args.rows.split(",")]
    if not Path("/proc/self/clear_refs").exists():
        raise SystemExit("this benchmark reads the worker's peak memory from /proc (Linux)")
    from app.embedded_redis import EmbeddedRedis
    from app.logging import configure_logging

    configure_logging("WARNING")
    tmp = Path(tempfile.mkdtemp(prefix="bench-contacts-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, True)
        redis = stack.enter_context(EmbeddedRedis(tmp / "redis", persist=False))
        db = stack.enter_context(counting.database(tmp))
        counting.headline("contacts benchmark", db)
        database = counting.database_name("contacts")
        stack.callback(counting.drop_databases, db, [database])
        (tmp / "data").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")}
        env.update({"INBOX_MONGODB_URL": db.url, "INBOX_MONGODB_DATABASE": database, "INBOX_REDIS_URL": redis.url,
                    "INBOX_SECRET_KEY": SECRET_KEY, "INBOX_DATA_DIR": str(tmp / "data"), "INBOX_LOG_LEVEL": "WARNING",
                    "PYTHONPATH": str(ROOT)})
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "counting.py"), "worker"], env=env, cwd=ROOT,
                                stderr=counting.log_file("worker"),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def stop() -> None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

        stack.callback(stop)
        worker = Counted("worker", proc)
        wait_for_worker(redis.url, proc)
        meter = Meter(redis.url, [worker], {"database": db.pid, "redis": redis.pid})
        stack.callback(meter.close)
        args.real = db.real
        asyncio.run(bench(args, env, worker, meter))
    return 0


if __name__ == "__main__":
    sys.exit(main())
