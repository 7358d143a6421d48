"""Faults against the sandbox: 5xx and timeouts, 130429 storms, the circuit breaker, a revoked token,
a worker killed mid-run, two workers on one number, and Redis restarted during a run."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

import pytest
from beanie import PydanticObjectId

from app.domains.accounts.models import WhatsAppAccount
from app.domains.messages.models import Message
from app.domains.outbox import drainer
from app.domains.outbox import lanes as outbox_queue
from app.metrics import WORKER_RESTARTS
from tests.integration.outbound_env import (  # noqa: F401
    ThreadWorker,
    max_per_window,
    outbound,
    sandbox_server,
    statuses,
    wait_for,
)
from tests.support.servers import scrape_metrics


async def send_many(env, account, n: int, conversations: int, prefix: str = "m") -> tuple[list[str], dict]:
    convs = [await env.conversation(account, f"1555{int(account.phone_number_id[-6:]):06d}{i:02d}")
             for i in range(conversations)]
    ids, order = [], defaultdict(list)
    for i in range(n):
        conversation = convs[i % conversations]
        answer = await env.send(conversation, f"{prefix}-{i}")
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
        order[answer.json()["to"]].append(f"{prefix}-{i}")
    return ids, order


async def all_settled(ids: list[str], wanted: str = "accepted") -> bool:
    counts = await statuses(ids)
    return counts.get(wanted, 0) == len(ids)


def assert_order(sent: list[dict], order: dict) -> None:
    """Per conversation, Meta accepted the messages in the order they were queued."""
    seen = defaultdict(list)
    for record in sorted(sent, key=lambda s: s["accepted_at"]):
        body = record["body"]["text"]["body"]
        if not seen[record["to"]] or seen[record["to"]][-1] != body:  # a duplicate after a crash repeats
            seen[record["to"]].append(body)
    for to, bodies in order.items():
        assert [b for b in seen[to] if b in bodies] == bodies, to


# The faults are random (each request fails with the given probability), so a message can meet a
# long run of them; every one of those retries waits twice as long as the last. With the default
# 12 attempts, some message of 40 meets 12 failures in a row at a 60 % rate in 1 run of 12, and
# its doubling waits outlast any time limit. These runs allow enough attempts (the chance of a
# run that long is below 1e-15) and keep each wait short (the backoff's cap, scaled down).
PATIENT = {"send_max_attempts": 80, "send_backoff_scale": 0.0001}


async def test_500s_and_timeouts_every_message_ends_sent_in_order(outbound):
    env = await outbound(**PATIENT)
    account = await env.add_number(mps=40)
    await env.faults(phone_number_id=account.phone_number_id, error_rate=0.3, http_status=500, timeout_rate=0.05)
    ids, order = await send_many(env, account, 60, 6)
    await wait_for(lambda: all_settled(ids), timeout=90)
    messages = await Message.find({"_id": {"$in": [m.id for m in await Message.find_all().to_list()]}}).to_list()
    attempts = [m.attempts for m in messages if m.direction == "outbound"]
    assert max(attempts) <= env.runtime.settings.send_max_attempts and sum(attempts) > len(ids)  # retried, bounded
    sent = await env.sent(account)
    assert {s["wamid"] for s in sent} >= {m.wamid for m in messages}
    assert_order(sent, order)


async def test_130429_storm_backs_off_and_nothing_fails(outbound):
    env = await outbound(**PATIENT)
    account = await env.add_number(mps=40)
    await env.faults(phone_number_id=account.phone_number_id, error_rate=0.6, http_status=400, error_code=130429)
    ids, order = await send_many(env, account, 40, 8)
    await wait_for(lambda: all_settled(ids), timeout=90)
    assert (await statuses(ids)).get("failed", 0) == 0
    metrics = (await scrape_metrics(env.client.app)).text
    assert 'inbox_send_retries_total{reason="130429"}' in metrics
    assert_order(await env.sent(account), order)


async def test_circuit_breaker_holds_sends_then_closes_after_a_probe(outbound):
    env = await outbound(circuit_failures=3, circuit_open_seconds=0.5)
    account = await env.add_number()
    await env.faults(phone_number_id=account.phone_number_id, error_rate=1.0, http_status=503)
    ids, _ = await send_many(env, account, 6, 6)

    async def opened():
        found = await WhatsAppAccount.get(account.id)
        return found.health.circuit_open_until is not None

    await wait_for(opened)
    assert (await statuses(ids)).get("queued") == len(ids)  # held, not failed
    await env.clear_faults()
    await wait_for(lambda: all_settled(ids), timeout=60)
    assert (await WhatsAppAccount.get(account.id)).health.circuit_open_until is None


async def test_sends_held_by_an_open_circuit_fail_after_the_retry_window(outbound):
    """Meta failing for good: the held messages do not stay queued for ever; each ends failed, with a
    sentence an agent understands, once it has waited longer than the retry window."""
    env = await outbound(circuit_failures=3, circuit_open_seconds=30, send_retry_window_seconds=3)
    account = await env.add_number()
    await env.faults(phone_number_id=account.phone_number_id, error_rate=1.0, http_status=503)
    ids, _ = await send_many(env, account, 12, 6)
    await wait_for(lambda: all_settled(ids, "failed"), timeout=60)
    failed = await Message.find({"_id": {"$in": [PydanticObjectId(i) for i in ids]}}).to_list()
    assert all(m.error and "WhatsApp kept failing" in m.error.agent_message for m in failed), [
        m.error.agent_message if m.error else None for m in failed]
    # WhatsApp works again: an admin sends them all again in one call, in their order.
    await env.clear_faults()
    answer = await env.client.post(f"/api/v1/accounts/{account.id}/retry-failed", headers=env.headers)
    assert answer.status_code == 202 and answer.json() == {"retried": len(ids), "skipped": {}, "more": False}
    await wait_for(lambda: all_settled(ids), timeout=60)


async def test_revoked_token_holds_sends_until_the_token_is_replaced(outbound):
    env = await outbound()
    account = await env.add_number(token="old-token")
    ids, _ = await send_many(env, account, 3, 3, prefix="before")
    await wait_for(lambda: all_settled(ids))
    # Meta revokes the token (the sandbox now only knows a new one).
    answer = await env.control.post("/sandbox/control/numbers", json={
        "phone_number_id": account.phone_number_id, "waba_id": account.waba_id,
        "display_phone_number": account.display_phone_number, "access_token": "new-token", "app_secret": "secret"})
    assert answer.status_code == 201
    await env.faults(phone_number_id=account.phone_number_id, latency_ms=500)  # queue all 4 before the 190
    held, _ = await send_many(env, account, 4, 2, prefix="held")

    async def token_invalid():
        return (await WhatsAppAccount.get(account.id)).health.token_state == "invalid"

    await wait_for(token_invalid)
    await env.clear_faults()
    assert (await statuses(held)).get("queued") == 4
    refused = await env.send(await env.conversation(account, "15550009999"))
    assert refused.json()["error_code"] == "ACCOUNT_TOKEN_INVALID"
    patched = await env.client.patch(f"/api/v1/accounts/{account.id}", headers=env.headers,
                                     json={"access_token": "new-token"})
    assert patched.status_code == 200, patched.text
    await wait_for(lambda: all_settled(held), timeout=30)
    assert len(await env.sent(account)) == 7


async def test_worker_killed_mid_run_nothing_stays_queued(outbound, monkeypatch):
    monkeypatch.setattr(outbox_queue, "LEASE_TTL_MS", 1500)
    env = await outbound(inline_worker=False)
    account = await env.add_number(mps=10)
    settings, database = env.runtime.settings, env.runtime.db
    victim = ThreadWorker(settings, database).start()
    ids, order = await send_many(env, account, 50, 10)
    await wait_for(lambda: _sent_at_least(env, account, 12))
    victim.kill()
    stuck = (await statuses(ids)).get("queued", 0)
    assert stuck > 0  # killed in the middle of the run
    survivor = ThreadWorker(settings, database).start()
    await wait_for(lambda: all_settled(ids), timeout=60)
    sent = await env.sent(account)
    duplicates = len(sent) - len({s["body"]["text"]["body"] for s in sent})
    assert duplicates <= 10  # at most what was in flight (the number's slots within its 0.5 s horizon)
    assert_order(sent, order)
    survivor.kill()


async def _sent_at_least(env, account, n: int) -> bool:
    return len(await env.sent(account)) >= n


async def test_two_workers_on_one_number_never_exceed_its_mps(outbound, monkeypatch):
    """Both workers send for the number (they take turns: a drainer's slice ends, the other worker
    takes the hand-over job); WhatsApp (the sandbox, enforcing the number's 20/s) never sees more
    than 20 in a second and every message ends sent, nothing failed.

    Deterministic by construction: the turns are forced below, and the sandbox refuses what would
    exceed the limit (the sender retries it). That the shared slots alone keep several processes
    under the limit, whatever the scheduling jitter, is asserted where it is exact: in
    tests/integration/test_ratelimit.py, against the limiter's own clock."""
    monkeypatch.setattr(drainer, "DRAIN_SLICE_SECONDS", 0.4)  # hand over often
    env = await outbound(inline_worker=False, send_rate_margin=0.9)
    account = await env.add_number(mps=20)
    workers = [ThreadWorker(env.runtime.settings, env.runtime.db).start() for _ in range(2)]
    workers[1].worker.allow_pick_jobs = False
    drained_by: list[int] = []
    original = drainer.Drainer._loop

    async def taking_turns(self):
        # Runs once this worker holds the number's lease. Only the other worker may pick jobs now, so
        # the job this slice enqueues when it hands over is necessarily the other worker's.
        me = threading.get_ident()
        drained_by.append(me)
        for worker in workers:
            worker.worker.allow_pick_jobs = worker.thread.ident != me
        return await original(self)

    monkeypatch.setattr(drainer.Drainer, "_loop", taking_turns)
    ids, _ = await send_many(env, account, 90, 45)
    await wait_for(lambda: all_settled(ids), timeout=60)
    sent = await env.sent(account)
    assert len(sent) == 90 and (await statuses(ids)).get("failed", 0) == 0
    assert max_per_window(sent) <= 20
    assert {w.thread.ident for w in workers} == set(drained_by)
    for worker in workers:
        worker.kill()


@pytest.mark.parametrize("where", ["inline", "process"])
async def test_redis_restarted_during_a_run(outbound, redis_server, where):
    """arq's worker ends when Redis goes away; `inbox run`'s in-process worker ("inline", app/main.py)
    and `inbox worker` ("process") are supervised and start a new one, which finishes the run."""
    env = await outbound(inline_worker=where == "inline")
    account = await env.add_number(mps=10)
    worker = ThreadWorker(env.runtime.settings, env.runtime.db, supervised=True).start() if where == "process" else None
    restarts_before = WORKER_RESTARTS._value.get()
    ids, order = await send_many(env, account, 40, 8)
    await wait_for(lambda: _sent_at_least(env, account, 10))
    await asyncio.to_thread(redis_server.restart)  # not persisted: queues, lanes and leases are gone
    late = await env.send(await env.conversation(account, "15550008888"), "after restart")
    assert late.status_code == 202  # stored as queued even if Redis refused the push
    ids.append(late.json()["id"])
    await wait_for(lambda: all_settled(ids), timeout=90)
    sent = await env.sent(account)
    assert len({s["body"]["text"]["body"] for s in sent}) == 41
    assert_order(sent, order)
    assert WORKER_RESTARTS._value.get() > restarts_before  # the worker that Redis took down was replaced
    if worker is not None:
        worker.kill()
