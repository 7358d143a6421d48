"""The production shape: separate processes sharing one database server and one Redis.

One database server (SecantusDB, the embedded MongoDB-wire-protocol server, as a child process),
one Redis, the Cloud API sandbox alone (`inbox sandbox`), two `inbox web` and two `inbox worker`:
each its own process, with the environment docker-compose.yml gives it. Only Meta is simulated.
The tests share that cluster and run in this order:

1. live: a customer writes (sandbox -> signed webhook -> web A) and a reply sent through web B's API
   show on WebSocket clients of both web processes;
2. the draining worker is killed with SIGKILL in the middle of 1,000 sends and started again: none
   lost, duplicates only among the sends in flight at the kill, never more than the number's mps in
   any 1-second window (and never a 130429);
3. the database server is killed with SIGKILL and started again: fast 503s while it is down, nothing
   acknowledged is lost, every process recovers by itself.

Every wait is a bounded poll that says what it waited for. The figures are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pymongo
import pytest
from bson import ObjectId
from websockets.sync.client import connect

from app.embedded_mongo import EmbeddedMongo
from app.embedded_redis import EmbeddedRedis
from app.whatsapp.signature import HEADER, sign
from tests.support.process import InboxProcess
from tests.support.servers import free_port

DATABASE = "wa_inbox_scale_out"
SECRET_KEY = "scale-out-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
ADMIN_EMAIL = "ops@example.com"
ADMIN_PASSWORD = "scale-out deploy password"
API_KEY = "wai_scale-out-bootstrap-key-00000001"
AUTH = {"Authorization": f"Bearer {API_KEY}"}

PHONE_NUMBER_ID = "106540352249001"
WABA_ID = "102290129340001"
DISPLAY = "+1 555 010 0001"
ACCESS_TOKEN = "EAAG-scale-out-access-token-0001"
APP_SECRET = "scale-out-app-secret-00000000001"

MPS = 80
CUSTOMERS = 40
PER_CUSTOMER = 25  # under the 40-message burst per customer, so no per-recipient pacing
SENDS = CUSTOMERS * PER_CUSTOMER  # 1,000
DONE = {"accepted", "sent", "delivered", "read"}
FAST = 5.0  # seconds: what "answers fast" means while the database is down


def customer(i: int) -> str:
    return f"+44770090{i:04d}"


def note(line: str) -> None:
    print(f"[scale-out] {line}", flush=True)


# --- bounded waits ---------------------------------------------------------------------------------

class Pending(str):
    """A probe's "not yet", saying how far it got (shown when the wait fails)."""

    def __bool__(self) -> bool:
        return False


def wait_until(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """``probe()`` until it returns something truthy; fails naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except (httpx.HTTPError, pymongo.errors.PyMongoError) as error:
            last = error
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {str(last)[:500]})")
        time.sleep(every)


async def until(what: str, probe: Callable[[], Awaitable[Any]], timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
        except (httpx.HTTPError, pymongo.errors.PyMongoError) as error:
            last = error
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {str(last)[:500]})")
        await asyncio.sleep(every)


# --- the cluster -----------------------------------------------------------------------------------

@dataclass
class Cluster:
    root: Path
    mongo: EmbeddedMongo
    redis: EmbeddedRedis
    sandbox: InboxProcess | None = None
    webs: list[InboxProcess] = field(default_factory=list)
    workers: list[InboxProcess] = field(default_factory=list)
    retired: list[InboxProcess] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)  # what a test leaves for the next one

    def _env(self, name: str, public_url: str) -> dict[str, str]:
        (self.root / name).mkdir(exist_ok=True)
        return {
            "INBOX_MONGODB_URL": self.mongo.url,
            "INBOX_MONGODB_DATABASE": DATABASE,
            "INBOX_REDIS_URL": self.redis.url,
            "INBOX_SECRET_KEY": SECRET_KEY,
            "INBOX_PUBLIC_URL": public_url,
            "INBOX_GRAPH_API_URL": f"{self.sandbox_url}/sandbox/graph",
            "INBOX_ADMIN_EMAIL": ADMIN_EMAIL,
            "INBOX_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "INBOX_ADMIN_API_KEY": API_KEY,
            "INBOX_LOG_JSON": "true",  # as in production (docker-compose.yml); one line per record
            # 1,000 sends and the polls of one API key in a minute: above the default 600 per key.
            "INBOX_API_RATE_LIMIT_PER_MINUTE": "100000",
        }

    @property
    def sandbox_url(self) -> str:
        assert self.sandbox is not None
        return self.sandbox.base

    def web(self, name: str) -> InboxProcess:
        port = free_port()
        return InboxProcess("web", port=port, env=self._env(name, f"http://127.0.0.1:{port}"),
                            data_dir=self.root / name, log_path=self.root / f"{name}.log")

    def worker(self, name: str) -> InboxProcess:
        # `inbox worker` has no HTTP API: its metrics port says it started (and what it sent).
        port = free_port()
        env = {**self._env(name, self.webs[0].base), "INBOX_WORKER_METRICS_PORT": str(port)}
        return InboxProcess("worker", port=port, port_flag=False, ready_path="/metrics", env=env,
                            data_dir=self.root / name, log_path=self.root / f"{name}.log")

    def processes(self) -> list[InboxProcess]:
        return [p for p in (self.sandbox, *self.webs, *self.workers, *self.retired) if p is not None]

    def messages(self) -> pymongo.collection.Collection:
        """The messages collection, read by the test directly (only to observe, never to write)."""
        if "client" not in self.shared:
            self.shared["client"] = pymongo.MongoClient(self.mongo.url, serverSelectionTimeoutMS=3000)
        return self.shared["client"][DATABASE]["messages"]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (port {p.port}, alive={p.alive()}):\n{p.output()}" for p in self.processes())


@contextlib.contextmanager
def reporting(cluster: Cluster) -> Iterator[None]:
    """On a failure, the last lines each process logged (captured with the test's output)."""
    try:
        yield
    except BaseException:
        note("process output:\n" + cluster.logs())
        raise


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale-out")
    mongo = EmbeddedMongo(root / "db").start(timeout=60)
    redis_server = EmbeddedRedis(root / "redis", persist=False).start()
    c = Cluster(root, mongo, redis_server)
    try:
        (root / "sandbox").mkdir()
        c.sandbox = InboxProcess("sandbox", data_dir=root / "sandbox", ready_path="/sandbox/control/numbers",
                                 log_path=root / "sandbox.log")
        SANDBOX[:] = [c.sandbox_url]
        c.webs = [c.web("web-a"), c.web("web-b")]
        c.workers = [c.worker("worker-1"), c.worker("worker-2")]
        started = time.monotonic()
        for process in c.processes():  # all at once, as `docker compose up` starts them
            process.start()
        with reporting(c):
            for process in c.processes():
                process.wait_ready(90)
        note(f"sandbox, 2 web and 2 worker processes ready in {time.monotonic() - started:.1f} s")
        yield c
    finally:
        for process in reversed(c.processes()):
            process.stop()
        if "client" in c.shared:
            c.shared["client"].close()
        redis_server.stop()
        mongo.stop()


@pytest.fixture(scope="module")
def number(cluster):
    """A number created through web B's API, registered in the sandbox; Meta posts to web A."""
    web_a, web_b = cluster.webs
    with httpx.Client(base_url=web_b.base, headers=AUTH, timeout=10) as api:
        made = api.post("/api/v1/accounts", json={
            "name": "Main", "phone_number_id": PHONE_NUMBER_ID, "waba_id": WABA_ID,
            "display_phone_number": DISPLAY, "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "mps": MPS})
        assert made.status_code == 201, made.text
    account = made.json()
    assert account["webhook_url"].startswith(web_b.base + "/webhooks/whatsapp/"), account["webhook_url"]
    path = urlsplit(account["webhook_url"]).path
    # Behind a load balancer any web process may get any delivery: here web A gets them all.
    subscribe(cluster.sandbox_url, web_a.base + path)
    return {"id": account["id"], "webhook_path": path, "webhook_url": web_a.base + path}


def subscribe(sandbox_url: str, webhook_url: str | None) -> None:
    """Registers the number in the sandbox (again: it is updated in place), posting to ``webhook_url``
    (None: Meta posts nothing, as for an app not subscribed to the number's webhooks)."""
    registered = httpx.post(f"{sandbox_url}/sandbox/control/numbers", timeout=10, json={
        "phone_number_id": PHONE_NUMBER_ID, "waba_id": WABA_ID, "display_phone_number": DISPLAY,
        "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "webhook_url": webhook_url,
        "mps": MPS, "read_after_ms": None})
    assert registered.status_code == 201, registered.text


# --- helpers ---------------------------------------------------------------------------------------

def sign_in(base: str) -> httpx.Client:
    """A browser session (the /login form with its CSRF token)."""
    browser = httpx.Client(base_url=base, timeout=10)
    page = browser.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    answer = browser.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                          "_csrf_token": token.group(1)})
    assert answer.status_code in (302, 303), answer.text[:500]
    return browser


def cookie_header(browser: httpx.Client) -> str:
    return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


def open_live(base: str, cookie: str):
    ws = connect(base.replace("http://", "ws://") + "/live", additional_headers={"Cookie": cookie}, open_timeout=10,
                 legacy=True)  # closed by the caller
    ws.send(json.dumps({"type": "hello", "since": datetime.now(UTC).isoformat(),
                        "view": {"conversation": None, "filters": {"status": "all"}}}))
    return ws


def frame_with(ws, text: str, timeout: float = 20.0) -> float:
    """Reads frames until one contains ``text``; returns when (monotonic). Fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        try:
            frame = ws.recv(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        seen += 1
        if text in frame:
            return time.monotonic()
    raise AssertionError(f"no live frame with {text!r} within {timeout} s ({seen} frames seen)")


SANDBOX: list[str] = []  # the sandbox's URL, set by the cluster fixture


def inbound(phone: str, text: str, name: str = "Customer") -> httpx.Response:
    """A customer writes: the sandbox posts Meta's signed webhook to the number's URL."""
    return httpx.post(f"{SANDBOX[0]}/sandbox/control/inbound", timeout=10, json={
        "phone_number_id": PHONE_NUMBER_ID, "from": phone, "name": name,
        "message": {"type": "text", "text": {"body": text}}})


def sent_records(sandbox_url: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{sandbox_url}/sandbox/control/sent", params={"phone_number_id": PHONE_NUMBER_ID},
                       timeout=30)
    answer.raise_for_status()
    return answer.json()["data"]


def sent_texts(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["body"]["text"]["body"] for r in records if r["type"] == "text")


def accepted_by(metrics: str) -> float:
    """``inbox_sends_total{result="accepted"}`` summed over types, from a Prometheus text page."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("inbox_sends_total{") and 'result="accepted"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def max_per_second(stamps: list[float]) -> int:
    """The most stamps in any 1-second window (t - 1, t], as the sandbox (Meta) counts them."""
    stamps = sorted(stamps)
    most = start = 0
    for end, at in enumerate(stamps):
        while stamps[start] <= at - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def signed_inbound(wamid: str, phone: str, text: str) -> tuple[bytes, dict[str, str]]:
    """Meta's webhook for one customer message, signed with the number's app secret."""
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": re.sub(r"\D", "", DISPLAY), "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Walk-in"}, "wa_id": phone.lstrip("+")}],
            "messages": [{"from": phone.lstrip("+"), "id": wamid, "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": text}}]}}]}]}).encode()
    return body, {HEADER: sign(APP_SECRET, body), "Content-Type": "application/json"}


async def conversation_ids(api: httpx.AsyncClient) -> dict[str, str]:
    """wa_id -> conversation id, through the API."""
    answer = await api.get("/api/v1/conversations", params={"limit": 200})
    answer.raise_for_status()
    return {c["contact"]["wa_id"]: c["id"] for c in answer.json()["data"]}


async def thread(api: httpx.AsyncClient, conversation_id: str) -> list[dict[str, Any]]:
    """Every message of a conversation, through the API (all pages)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        answer = await api.get(f"/api/v1/conversations/{conversation_id}/messages", params=params)
        answer.raise_for_status()
        page = answer.json()
        found += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


# --- 1. live updates across web processes ----------------------------------------------------------

def test_live_updates_reach_sockets_on_both_web_processes(cluster, number):
    with reporting(cluster):
        web_a, web_b = cluster.webs
        browser = sign_in(web_a.base)  # the session, made on web A, is good on web B too (shared database)
        cookie = cookie_header(browser)
        sockets = {"A": open_live(web_a.base, cookie), "B": open_live(web_b.base, cookie)}
        try:
            time.sleep(0.3)  # both subscribed to the workspace's Redis channel (the hello is answered first)
            words = f"Is my order ready? {time.time_ns()}"
            written = time.monotonic()
            answer = inbound("+972 98 765 4321", words, "Dana")
            assert answer.status_code == 200, answer.text
            for name, ws in sockets.items():
                seen = frame_with(ws, words)
                note(f"customer message live on web {name} after {seen - written:.2f} s")

            with httpx.Client(base_url=web_b.base, headers=AUTH, timeout=10) as api:
                reply = f"On its way! {time.time_ns()}"
                sent = api.post("/api/v1/messages", json={"to": "+972987654321", "type": "text",
                                                          "content": {"body": reply}})
                assert sent.status_code == 202, sent.text
                message = sent.json()
                assert message["status"] == "queued"
                for ws in sockets.values():
                    frame_with(ws, reply)
                status = wait_until("the reply accepted by the sandbox and sent",
                                    lambda: (m := api.get(f"/api/v1/messages/{message['id']}").json())["status"]
                                    in ("sent", "delivered") and m, timeout=20)
            assert status["wamid"] in {r["wamid"] for r in sent_records(cluster.sandbox_url)}
            # The page works on the other web process with the same cookie.
            page = httpx.get(f"{web_b.base}/inbox", headers={"Cookie": cookie}, timeout=10)
            assert page.status_code == 200 and "Dana" in page.text
        finally:
            for ws in sockets.values():
                ws.close()
            browser.close()


# --- 2. a worker killed while it drains 1,000 sends ------------------------------------------------

async def test_a_killed_worker_loses_no_send_and_keeps_the_rate(cluster, number):
    """1,000 sends; the worker draining them is killed with SIGKILL a third of the way and started again.

    The sandbox posts no status webhooks for this bulk (``subscribe(None)``): the embedded database
    serves a few hundred operations a second, and ingesting 1,000 statuses besides would make the
    run minutes long without telling more about the outbox. Tests 1 and 3 run with them.
    """
    with reporting(cluster):
        web_a, web_b = cluster.webs
        apis = [httpx.AsyncClient(base_url=w.base, headers=AUTH, timeout=30) for w in (web_a, web_b)]
        metrics = httpx.AsyncClient(timeout=5)
        queueing: asyncio.Future | None = None
        try:
            # The customers write first (a reply needs the 24-hour window open).
            written = time.monotonic()
            for i in range(CUSTOMERS):
                assert inbound(customer(i), f"hello from customer {i}").status_code == 200
            wanted = {customer(i).lstrip("+") for i in range(CUSTOMERS)}

            async def all_conversations():
                ids = await conversation_ids(apis[1])
                return ids if wanted <= set(ids) else Pending(f"{len(wanted - set(ids))} missing")

            ids = await until(f"{CUSTOMERS} customers' conversations in the API", all_conversations, timeout=60,
                              every=0.5)
            note(f"{CUSTOMERS} customers' messages ingested in {time.monotonic() - written:.1f} s")
            conversations = [ids[customer(i).lstrip("+")] for i in range(CUSTOMERS)]
            cluster.shared["conversations"] = conversations
            subscribe(cluster.sandbox_url, None)

            async def accepted_now(worker: InboxProcess) -> float:
                return accepted_by((await metrics.get(worker.base + "/metrics")).text)

            baseline = {w.port: await accepted_now(w) for w in cluster.workers}

            # Queue 1,000 sends through both web processes (8 at a time) while the workers send them.
            texts: dict[str, str] = {}  # our message id -> its text
            refused: list[str] = []
            slots = asyncio.Semaphore(8)

            async def queue_one(n: int) -> None:
                text = f"bulk {n:04d}"
                async with slots:
                    answer = await apis[n % 2].post(f"/api/v1/conversations/{conversations[n % CUSTOMERS]}/messages",
                                                    json={"type": "text", "content": {"body": text}})
                if answer.status_code != 202:
                    refused.append(f"{n}: {answer.status_code} {answer.text[:200]}")
                    return
                texts[answer.json()["id"]] = text

            queued_from = time.monotonic()
            queueing = asyncio.gather(*(queue_one(n) for n in range(SENDS)))

            # Kill -9 the worker that drains the number (the one whose count of accepted sends is going up:
            # a drainer that empties the lanes lets go, and the next one may start on either worker), a
            # third of the way through.
            async def drainer_mid_way():
                before = {w.port: await accepted_now(w) for w in cluster.workers}
                await asyncio.sleep(0.2)
                after = {w.port: await accepted_now(w) for w in cluster.workers}
                done = sum(after[p] - baseline[p] for p in after)
                sending = [w for w in cluster.workers if after[w.port] > before[w.port]]
                if done >= SENDS // 3 and len(sending) == 1:
                    return sending[0]
                return Pending(f"{done:.0f} accepted, {len(texts)} queued, sending now: {[w.port for w in sending]}")

            victim = await until("a third of the sends accepted, by one worker now", drainer_mid_way, timeout=90,
                                 every=0.0)
            victim.kill()
            killed_at = time.time()
            note(f"killed {victim.name} (metrics port {victim.port}) "
                 f"{time.monotonic() - queued_from:.1f} s after the first send was queued")
            cluster.workers.remove(victim)
            cluster.retired.append(victim)

            # What it had in flight: sends the sandbox accepted whose acceptance was not stored yet.
            await asyncio.sleep(1.0)  # requests already on the wire reach the sandbox
            accepted_at_kill = set(sent_texts(sent_records(cluster.sandbox_url)))
            in_flight = {d["content"]["body"] for d in cluster.messages().find(
                {"content.body": {"$in": sorted(accepted_at_kill)}, "direction": "outbound", "status": "queued"},
                {"content": 1})}
            note(f"at the kill: {len(accepted_at_kill)} sends accepted by the sandbox, {len(in_flight)} of them "
                 "not yet recorded as accepted (in flight)")

            replacement = cluster.worker("worker-1b").start()
            cluster.workers.append(replacement)
            await asyncio.to_thread(replacement.wait_ready, 60)

            await queueing
            assert not refused, refused[:5]
            assert len(texts) == SENDS
            cluster.shared["bulk"] = list(texts)
            note(f"1,000 sends queued in {time.monotonic() - queued_from:.1f} s")

            async def all_sent():
                records = await asyncio.to_thread(sent_records, cluster.sandbox_url)
                seen = sent_texts(records)
                missing = sum(1 for t in texts.values() if t not in seen)
                return records if not missing else Pending(f"{missing} not accepted yet")

            # A dead drainer's lease expires (30 s), then the sweeper (every 10 s) starts a new drainer.
            records = await until("every queued message accepted by the sandbox", all_sent, timeout=90, every=1.0)
            note(f"all 1,000 accepted by the sandbox {time.monotonic() - queued_from:.1f} s after queueing began")

            def recorded():
                count = cluster.messages().count_documents(
                    {"_id": {"$in": [ObjectId(i) for i in texts]}, "status": {"$in": sorted(DONE)}})
                return count == SENDS or Pending(f"{SENDS - count} not recorded as accepted")

            await until("every message's acceptance stored", lambda: asyncio.to_thread(recorded), timeout=20)

            # 0 lost, seen through the API of both web processes.
            stored: dict[str, dict[str, Any]] = {}
            for n, conversation_id in enumerate(conversations):
                for message in await thread(apis[n % 2], conversation_id):
                    if message["id"] in texts:
                        stored[message["id"]] = message
            lost = [i for i in texts if i not in stored or stored[i]["status"] not in DONE]
            assert not lost, [(i, stored.get(i, {}).get("status")) for i in lost[:10]]
            assert not any(m["error"] for m in stored.values())
            # No send was ever refused: a 130429 (or any error) costs an attempt, kept on the message.
            retried = list(cluster.messages().find(
                {"_id": {"$in": [ObjectId(i) for i in texts]}, "attempts": {"$ne": 1}}, {"attempts": 1, "content": 1}))
            assert not retried, retried[:3]

            # Duplicates: only sends the killed worker had in flight, each at most once more.
            counts = sent_texts(records)
            ours = set(texts.values())
            duplicates = {t: c - 1 for t, c in counts.items() if t in ours and c > 1}
            note(f"duplicates: {sum(duplicates.values())} (in flight at the kill: {len(in_flight)})")
            assert set(duplicates) <= in_flight, sorted(set(duplicates) - in_flight)[:5]
            assert all(extra == 1 for extra in duplicates.values()), duplicates

            # The number's rate, as Meta counts it: never above its mps in any 1-second window.
            stamps = [r["accepted_at"] for r in records if r["type"] == "text" and r["body"]["text"]["body"] in ours]
            busiest = max_per_second(stamps)
            resumed = min((s for s in stamps if s > killed_at + 1.0), default=float("nan")) - killed_at
            note(f"max sends in any 1-s window: {busiest} (mps {MPS}); sending resumed {resumed:.1f} s after the kill")
            assert busiest <= MPS
            for worker in cluster.workers:  # the live workers' own count of Meta's 130429 answers
                page = (await metrics.get(worker.base + "/metrics")).text
                assert 'reason="130429"' not in page, worker.name
            assert all(p.alive() for p in (*cluster.webs, *cluster.workers, cluster.sandbox))
        finally:
            if queueing is not None and not queueing.done():
                queueing.cancel()
                await asyncio.gather(queueing, return_exceptions=True)
            subscribe(cluster.sandbox_url, number["webhook_url"])
            for client in (*apis, metrics):
                await client.aclose()


# --- 3. the database server killed and started again -----------------------------------------------

async def test_database_outage_answers_503_fast_loses_nothing_and_recovers(cluster, number):
    with reporting(cluster):
        web_a, web_b = cluster.webs
        conversations = cluster.shared.get("conversations")
        assert conversations, "runs after the send test, which opens the customers' conversations"
        browser = sign_in(web_a.base)
        cookie = cookie_header(browser)
        browser.close()
        apis = [httpx.AsyncClient(base_url=w.base, headers=AUTH, timeout=30) for w in (web_a, web_b)]
        plain = httpx.AsyncClient(timeout=30)
        try:
            # A webhook answered 200 just before the kill must not be lost.
            acked_wamid = f"wamid.scale-out-before-kill-{time.time_ns()}"
            body, headers = signed_inbound(acked_wamid, customer(0), "written just before the outage")
            answer = await plain.post(web_a.base + number["webhook_path"], content=body, headers=headers)
            assert answer.status_code == 200, answer.text

            # Sends keep arriving on both web processes; the database dies under them.
            acked: dict[str, str] = {}   # message id -> web process that answered 202
            after_kill: list[tuple[str, int | str, float]] = []
            killed = asyncio.Event()

            async def keep_sending(api: httpx.AsyncClient, name: str) -> None:
                n = 0
                while True:
                    n += 1
                    url = f"/api/v1/conversations/{conversations[n % CUSTOMERS]}/messages"
                    started = time.monotonic()
                    try:
                        answer = await api.post(url, json={"type": "text", "content": {"body": f"outage {name} {n}"}})
                        outcome: int | str = answer.status_code
                    except httpx.HTTPError as error:
                        outcome = type(error).__name__
                    if outcome == 202:
                        acked[answer.json()["id"]] = name
                    elif not killed.is_set():
                        raise AssertionError(f"send refused before the outage: {outcome}")
                    if killed.is_set():
                        after_kill.append((name, outcome, time.monotonic() - started))
                        if outcome != 202:
                            return
                    await asyncio.sleep(0.02)

            senders = [asyncio.create_task(keep_sending(api, name)) for api, name in zip(apis, "AB", strict=True)]
            await asyncio.sleep(1.5)
            assert acked, "no send acknowledged before the outage"
            cluster.mongo.kill()
            killed.set()
            down_at = time.monotonic()
            note(f"database killed with {len(acked)} sends of this test acknowledged")

            # While it is down: fast, honest answers.
            async def timed(label: str, call: Awaitable[httpx.Response]) -> tuple[str, httpx.Response, float]:
                started = time.monotonic()
                response = await call
                return label, response, time.monotonic() - started

            outage_wamid = f"wamid.scale-out-during-outage-{time.time_ns()}"
            body, headers = signed_inbound(outage_wamid, customer(1), "written while the database is down")
            answers = await asyncio.gather(
                timed("ready A", plain.get(web_a.base + "/health/ready")),
                timed("ready B", plain.get(web_b.base + "/health/ready")),
                timed("webhook", plain.post(web_a.base + number["webhook_path"], content=body, headers=headers)),
                timed("API", apis[1].get("/api/v1/conversations")),
                timed("page", plain.get(web_a.base + "/inbox", headers={"Cookie": cookie})),
                timed("send", apis[0].post(f"/api/v1/conversations/{conversations[2]}/messages",
                                           json={"type": "text", "content": {"body": "refused while down"}})),
            )
            for label, response, took in answers:
                note(f"database down: {label} answered {response.status_code} in {took:.2f} s")
            for label, response, took in answers:
                assert response.status_code == 503, (label, response.status_code, response.text[:300])
                assert took < FAST, (label, took)
                if label not in ("ready A", "ready B", "page"):
                    assert response.json()["error_code"] == "DATABASE_UNAVAILABLE", (label, response.text[:300])
            page = next(r for label, r, _ in answers if label == "page")
            assert page.headers["content-type"].startswith("text/html")
            # A customer writes meanwhile: the sandbox (Meta) gets a 5xx and retries with backoff.
            assert inbound(customer(3), "patient customer").status_code == 200

            await asyncio.wait_for(asyncio.gather(*senders), timeout=30)
            for name, outcome, took in after_kill:
                if outcome != 202:
                    assert outcome == 503 and took < FAST, (name, outcome, took)

            # Start it again on the same port and data.
            await asyncio.to_thread(cluster.mongo.start, 60)
            note(f"database back after {time.monotonic() - down_at:.1f} s down")
            restarted_at = time.monotonic()

            # Every process recovers by itself: the API of both, readiness, a new send goes out.
            for api, name in zip(apis, "AB", strict=True):
                await until(f"web {name}'s API answers again", lambda api=api: _ok(api.get("/api/v1/conversations")),
                            timeout=15)
                note(f"web {name} API answers 200 again {time.monotonic() - restarted_at:.1f} s after the restart")
            fresh = await apis[1].post(f"/api/v1/conversations/{conversations[4]}/messages",
                                       json={"type": "text", "content": {"body": "after the outage"}})
            assert fresh.status_code == 202, fresh.text
            fresh_at, fresh_id = time.monotonic(), fresh.json()["id"]

            async def out(ids: list[str]):
                for message_id in ids:
                    answer = await apis[1].get(f"/api/v1/messages/{message_id}")
                    if answer.status_code != 200 or answer.json()["status"] not in DONE:
                        return Pending(f"{message_id}: {answer.status_code} {answer.text[:200]}")
                return True

            await until("a send made after the restart goes out", lambda: out([fresh_id]), timeout=30)
            note(f"a new send went out {time.monotonic() - fresh_at:.1f} s after it was made")
            for web in cluster.webs:
                await until(f"{web.base}/health/ready says ok",
                            lambda web=web: _ok(plain.get(web.base + "/health/ready")), timeout=20)

            # Nothing acknowledged was lost: every 202 is there (those of the send test too), and goes out.
            for message_id in acked:
                answer = await apis[0].get(f"/api/v1/messages/{message_id}")
                assert answer.status_code == 200, (message_id, answer.status_code, answer.text[:200])
            bulk = cluster.shared["bulk"]
            kept = cluster.messages().count_documents({"_id": {"$in": [ObjectId(i) for i in bulk]},
                                                       "status": {"$in": sorted(DONE)}})
            assert kept == len(bulk), f"{len(bulk) - kept} of the send test's messages lost or changed"

            await until(f"the {len(acked)} sends acknowledged around the outage sent", lambda: out(list(acked)),
                        timeout=40, every=0.5)
            note(f"all {len(acked)} acknowledged sends out {time.monotonic() - restarted_at:.1f} s after the restart")

            async def inbound_stored(wamid: str | None, text: str, conversation_id: str):
                messages = await thread(apis[0], conversation_id)
                return any(m["wamid"] == wamid if wamid else (m["content"] or {}).get("body") == text
                           for m in messages)

            await until("the webhook acknowledged before the kill ingested",
                        lambda: inbound_stored(acked_wamid, "", conversations[0]), timeout=20)
            await until("the customer message Meta retried after the outage ingested",
                        lambda: inbound_stored(None, "patient customer", conversations[3]), timeout=40, every=0.5)
            note(f"the customer message Meta retried is in {time.monotonic() - restarted_at:.1f} s after the restart")
            # No process was restarted: every one of them lived through it.
            assert all(p.alive() for p in (*cluster.webs, *cluster.workers, cluster.sandbox)), cluster.logs()
        finally:
            for client in (*apis, plain):
                await client.aclose()


async def _ok(call: Awaitable[httpx.Response]) -> bool:
    return (await call).status_code == 200
