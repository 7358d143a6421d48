"""Issue 20, correlation: one message sent through the API can be followed by its request id through the web
log (the request, each status webhook), the worker log (the send), and the jobs it causes.

Only Meta is simulated (the sandbox, and a status webhook signed as Meta signs it); the worker is the real one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any

import httpx
import pytest
from arq.jobs import Job
from structlog.testing import capture_logs

from app.domains.messages.models import Message
from app.metrics import REGISTRY, generate_latest
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401
from tests.integration.test_send_reconciliation import CUSTOMER, status_webhook
from tests.support.logs import product_logging, quiet_logging
from workers.settings import outage_tolerant


class LogLines(logging.Handler):
    """What the processes log, as structlog's event dicts (with the bound request id merged in)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            self.events.append(record.msg)

    def mentioning(self, value: str) -> list[dict[str, Any]]:
        return [e for e in self.events if value in (e.get("request_id"), e.get("caused_by"))]


@pytest.fixture
def log_lines():
    """Logging set up as `inbox run` and `inbox worker` set it up, and what goes through it."""
    product_logging("INFO")
    lines = LogLines()
    logging.getLogger().addHandler(lines)
    yield lines
    quiet_logging()


async def test_a_send_is_followed_by_its_request_id_from_the_api_to_its_status(outbound, log_lines):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    conversation = await env.conversation(account, CUSTOMER)
    # Not from a trusted proxy: an id the caller chose is not believed.
    answer = await env.client.post(
        f"/api/v1/conversations/{conversation.id}/messages", headers={**env.headers, "X-Request-ID": "chosen-by-me"},
        json={"type": "text", "content": {"body": "hello"}})
    assert answer.status_code == 202, answer.text
    request_id = answer.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    message_id = answer.json()["id"]

    async def accepted() -> Message | None:
        found = await Message.get(message_id)
        return found if found and found.wamid else None

    sent = await wait_for(accepted)
    assert sent.cause == request_id
    receipt = await status_webhook(env, account, sent.wamid, f"wa-inbox:{message_id}", "delivered")
    assert receipt.status_code == 200 and receipt.headers["x-request-id"] != request_id

    async def seen() -> bool | None:
        return {e["event"] for e in log_lines.mentioning(request_id)} >= {"request", "sent", "status"} or None

    await wait_for(seen)
    path = log_lines.mentioning(request_id)
    web = next(e for e in path if e["event"] == "request")
    assert web["route"] == "/api/v1/conversations/{conversation_id}/messages" and web["status"] == 202
    assert "chosen-by-me" not in str(log_lines.events)
    worker = next(e for e in path if e["event"] == "sent")
    assert worker["message_id"] == message_id and worker["wamid"] == sent.wamid
    status = next(e for e in path if e["event"] == "status")
    assert status["message_id"] == message_id and status["status"] == "delivered"
    assert status["request_id"] == receipt.headers["x-request-id"]  # the webhook's own request, naming the send's


async def test_jobs_carry_the_request_that_caused_them(outbound):  # noqa: F811
    """A customer's photo arrives: the webhook's request enqueues its download, and the job carries its id."""
    env = await outbound()
    account = await env.add_number()
    photo = {"from": CUSTOMER, "id": "wamid.PHOTO-1", "timestamp": str(int(time.time())), "type": "image",
             "image": {"id": "1234567890", "mime_type": "image/jpeg", "sha256": "abc"}}
    payload = {"object": "whatsapp_business_account", "entry": [{"id": account.waba_id, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": account.display_phone_number,
                         "phone_number_id": account.phone_number_id},
            "contacts": [{"profile": {"name": "Customer"}, "wa_id": CUSTOMER}], "messages": [photo]}}]}]}
    body = json.dumps(payload).encode()
    signature = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    stored_before = REGISTRY.get_sample_value("inbox_webhook_to_stored_seconds_count") or 0
    answer = await env.client.post(f"/webhooks/whatsapp/{account.webhook_key}", content=body,
                                   headers={"X-Hub-Signature-256": f"sha256={signature}",
                                            "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    stored = await wait_for(lambda: Message.find_one(Message.wamid == "wamid.PHOTO-1"))
    assert stored.cause == answer.headers["x-request-id"]
    assert REGISTRY.get_sample_value("inbox_webhook_to_stored_seconds_count") == stored_before + 1
    job = await Job(f"media:{stored.id}:0", env.runtime.arq).info()
    assert job is not None and job.kwargs == {"cause": answer.headers["x-request-id"]}


async def test_the_worker_runs_a_job_under_the_request_id_that_caused_it():
    async def fetch_media(ctx, message_id):
        from app.logging import get_logger

        get_logger("test").info("downloading", message_id=message_id)
        return message_id

    import structlog

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logged:
        assert await outage_tolerant(fetch_media)({"job_try": 1}, "m1", cause="0123abcd") == "m1"
        assert await outage_tolerant(fetch_media)({"job_try": 1}, "m2") == "m2"
    assert [(e["message_id"], e.get("request_id")) for e in logged] == [("m1", "0123abcd"), ("m2", None)]


@pytest.mark.parametrize("trusted,sent,kept", [
    ("127.0.0.1", "edge-7f3a.42", True),          # a trusted proxy's id is kept
    ("127.0.0.1", "not a token; DROP", False),  # unless it is no plain token
    ("", "edge-7f3a.42", False),                # anyone else's is replaced
])
async def test_a_trusted_proxys_request_id_is_kept_and_anyone_elses_replaced(settings, trusted, sent, kept):
    from app.main import create_app
    from tests.support.servers import serve_here

    async with serve_here(create_app(settings.model_copy(update={"trusted_proxies": trusted})),
                          trusted_proxies=trusted) as base, httpx.AsyncClient(base_url=base) as http:
        answer = await http.get("/login", headers={"X-Request-ID": sent})
    assert answer.status_code == 200
    assert (answer.headers["x-request-id"] == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])


async def test_the_metrics_name_what_the_spec_names(outbound):  # noqa: F811
    """After one send: whatsapp_messages_sent_total{type}, whatsapp_api_latency_seconds{endpoint}, the number's
    whatsapp_rate_limit_remaining, and the HTTP requests by route template (never by path)."""
    env = await outbound()
    account = await env.add_number(mps=20)
    conversation = await env.conversation(account, CUSTOMER)
    answer = await env.send(conversation, "hello")
    assert answer.status_code == 202, answer.text

    async def accepted() -> bool | None:
        found = await Message.get(answer.json()["id"])
        return bool(found and found.wamid) or None

    await wait_for(accepted)
    scraped = generate_latest(REGISTRY).decode()  # what /metrics serves (to a local scraper or with its token)
    assert re.search(r'^whatsapp_messages_sent_total\{type="text"\} [1-9]', scraped, re.M)
    assert re.search(r'^whatsapp_api_latency_seconds_count\{endpoint="messages"\} [1-9]', scraped, re.M)
    remaining = re.search(rf'^whatsapp_rate_limit_remaining\{{number="{account.phone_number_id}"\}} (\d+)', scraped,
                          re.M)
    assert remaining and 0 <= float(remaining.group(1)) <= 20
    route = 'route="/api/v1/conversations/{conversation_id}/messages"'
    assert re.search(rf'^inbox_http_requests_total\{{method="POST",{route},status="202"\}} [1-9]', scraped, re.M)
    assert str(conversation.id) not in "".join(line for line in scraped.splitlines() if line.startswith("inbox_http"))


async def test_the_scrape_reads_queues_lag_health_and_the_workers_heartbeat(outbound):  # noqa: F811
    """What /metrics reads when scraped: the job queue, each number's outbox lag and health, the worker's heartbeat;
    and how long a customer's message took to be stored."""
    from app.metrics import refresh_health, refresh_queues

    env = await outbound()
    account = await env.add_number(mps=20)
    held = await env.add_number(mps=20)
    await env.faults(phone_number_id=held.phone_number_id, error_rate=1.0, http_status=401, error_code=190)
    conversation = await env.conversation(held, CUSTOMER)
    assert (await env.send(conversation, "held back")).status_code == 202

    async def token_refused() -> bool | None:
        found = await held.__class__.get(held.id)
        return found.health.token_state == "invalid" or None

    await wait_for(token_refused)
    await refresh_health(env.runtime)
    await refresh_queues(env.runtime)
    scraped = generate_latest(REGISTRY).decode()

    def value(series: str) -> float:
        found = re.search(rf"^{re.escape(series)} (\S+)$", scraped, re.M)
        assert found, series
        return float(found.group(1))

    assert value(f'inbox_number_token_valid{{number="{held.phone_number_id}"}}') == 0
    assert value(f'inbox_number_token_valid{{number="{account.phone_number_id}"}}') == -1  # not used yet
    assert value(f'inbox_outbox_lag_seconds{{number="{held.phone_number_id}"}}') > 0  # its message waits
    assert value(f'inbox_outbox_lag_seconds{{number="{account.phone_number_id}"}}') == 0
    assert value('inbox_queue_depth{queue="inbox:queue"}') >= 0
    assert 0 <= value("inbox_worker_heartbeat_age_seconds") < 30  # the test's worker beats every 10 s
