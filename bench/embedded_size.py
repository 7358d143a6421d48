"""Up to what size the embedded database (SecantusDB, `inbox run` without INBOX_MONGODB_URL) serves the inbox.

    .venv/bin/python bench/embedded_size.py [--sizes 500,1000,2000,5000,10000] [--samples 30]

Starts its own embedded server (a child process, as `inbox run` does), seeds growing numbers of
conversations (each with its contact and last message, as bench/live.py does) and times the inbox
list as an agent opens it (first page of "open", a page further down by cursor, a search), through
the product's own queries (app.domains.inbox.queries.InboxQueries, rows built as the page does).
Prints p50 / p95 per size and the first size at which the list's p95 passes 200 ms: the number the
README and the embedded-size warning (app/domains/system/embedded_size.py) use.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 200.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(url: str, sizes: list[int], samples: int) -> list[tuple[int, dict[str, tuple[float, float]]]]:
    from beanie import PydanticObjectId

    from app.db import Database
    from app.domains.conversations.services import CONVERSATION_LISTING
    from app.domains.inbox.queries import InboxQueries, ListFilters
    from app.pagination import encode_cursor
    from bench.live import seed

    database = Database(url, "embedded_size")
    await database.connect()
    await database.client.drop_database("embedded_size")
    await database.connect()
    workspace, account, agent = PydanticObjectId(), PydanticObjectId(), PydanticObjectId()
    queries = InboxQueries()
    results = []
    seeded = 0
    for size in sizes:
        await seed(workspace, account, size - seeded, 0, offset=seeded)
        seeded = size
        first = await queries.list_page(workspace, ListFilters.parse({"status": "open"}), agent)
        deep = first
        for _ in range(3):
            if deep.next_cursor:
                deep = await queries.list_page(workspace, ListFilters.parse({"status": "open"}), agent,
                                               cursor=deep.next_cursor)
        cursor = deep.next_cursor or encode_cursor(CONVERSATION_LISTING, first.rows[-1].c.last_message_at,
                                                   first.rows[-1].c.id)
        timings: dict[str, list[float]] = {"list": [], "list, page 5": [], "search": []}
        for _ in range(samples):
            for name, call in (
                ("list", lambda: queries.list_page(workspace, ListFilters.parse({"status": "open"}), agent)),
                ("list, page 5", lambda cursor=cursor: queries.list_page(
                    workspace, ListFilters.parse({"status": "open"}), agent, cursor=cursor)),
                ("search", lambda: queries.list_page(workspace, ListFilters.parse({"status": "all", "q": "refund"}),
                                                     agent)),
            ):
                started = time.perf_counter()
                await call()
                timings[name].append((time.perf_counter() - started) * 1000)
        figures = {name: (pct(values, 0.5), pct(values, 0.95)) for name, values in timings.items()}
        results.append((size, figures))
        print(f"{size:>7} conversations: " + "; ".join(
            f"{name} p50 {p50:.0f} ms, p95 {p95:.0f} ms" for name, (p50, p95) in figures.items()), flush=True)
    database.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,2000,5000,10000")
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    from app.embedded_mongo import EmbeddedMongo

    url = os.environ.get("INBOX_MONGODB_URL")
    server = None
    if not url:
        server = EmbeddedMongo(Path(tempfile.mkdtemp()) / "db").start(timeout=60)
        url = server.url
    print(f"embedded-size benchmark on {'the embedded server' if server else url}; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    try:
        results = asyncio.run(measure(url, sizes, args.samples))
    finally:
        if server:
            server.stop()
    over = next((size for size, figures in results if figures["list"][1] > TARGET_MS), None)
    if over is None:
        print(f"the inbox list's p95 stayed under {TARGET_MS:.0f} ms up to {sizes[-1]} conversations")
    else:
        print(f"the inbox list's p95 passes {TARGET_MS:.0f} ms at {over} conversations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
