"""The public webhook endpoint: verification, signatures, size, shape, durability, dedupe, Redis outages."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta

import pytest

from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message, MessageStatus
from app.domains.webhooks.models import WebhookEvent
from app.domains.webhooks.services import INLINE_MAX_ITEMS, MAX_BODY_BYTES, sweep_stale_events
from app.embedded_redis import EmbeddedRedis
from app.whatsapp.signature import HEADER, sign
from tests.support.inbound import (
    APP_SECRET,
    envelope,
    ingest_pending,
    make_setup,
    on_test_loop,
    signed,
    status,
    text_message,
    wait_for,
)


@pytest.fixture
async def env(client_factory):
    client = await client_factory()
    setup = await make_setup(client.app.state.runtime)
    return client, setup


async def test_get_verification_echoes_challenge_as_text(env):
    client, setup = env
    ok = await client.get(setup.webhook_path, params={"hub.mode": "subscribe", "hub.verify_token":
                                                      setup.account.verify_token, "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": "<token>", "hub.challenge": "1"},
    {"hub.mode": "subscribe", "hub.challenge": "1"},
    {},
])
async def test_get_verification_refuses_anything_else(env, params):
    client, setup = env
    params = {k: (setup.account.verify_token if v == "<token>" else v) for k, v in params.items()}
    response = await client.get(setup.webhook_path, params=params)
    assert response.status_code == 403 and response.json()["error_code"] == "VERIFY_FAILED"


async def test_unknown_key_is_404_for_get_and_post(env):
    client, _ = env
    body, headers = signed(envelope(messages=[text_message()]))
    assert (await client.get("/webhooks/whatsapp/nope", params={"hub.mode": "subscribe"})).status_code == 404
    response = await client.post("/webhooks/whatsapp/nope", content=body, headers=headers)
    assert response.status_code == 404 and response.json()["error_code"] == "UNKNOWN_WEBHOOK"
    assert await WebhookEvent.find_all().count() == 0


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha256=" + "0" * 64, "md5=abc", "garbage",
                                    "<other-secret>", "<other-body>"])
async def test_bad_signature_is_401_and_stores_nothing(env, header):
    client, setup = env
    body = json.dumps(envelope(messages=[text_message()])).encode()
    if header == "<other-secret>":
        header = sign("not-the-app-secret", body)
    elif header == "<other-body>":
        header = sign(APP_SECRET, body + b" ")
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[HEADER] = header
    response = await client.post(setup.webhook_path, content=body, headers=headers)
    assert response.status_code == 401 and response.json()["error_code"] == "INVALID_SIGNATURE"
    assert await WebhookEvent.find_all().count() == 0


async def test_signature_is_checked_over_the_raw_bytes(env):
    """Re-serialising the JSON (other spacing) must not verify: the signature covers the bytes."""
    client, setup = env
    payload = envelope(messages=[text_message()])
    pretty = json.dumps(payload, indent=2).encode()
    compact = json.dumps(payload, separators=(",", ":")).encode()
    response = await client.post(setup.webhook_path, content=pretty, headers={HEADER: sign(APP_SECRET, compact)})
    assert response.status_code == 401
    response = await client.post(setup.webhook_path, content=pretty, headers={HEADER: sign(APP_SECRET, pretty)})
    assert response.status_code == 200


async def test_over_3_mib_is_413_by_header_and_by_streamed_size(env):
    client, setup = env
    big = b'{"object":"whatsapp_business_account","entry":[],"pad":"' + b"x" * MAX_BODY_BYTES + b'"}'
    _, headers = signed(big)
    response = await client.post(setup.webhook_path, content=big, headers=headers)
    assert response.status_code == 413 and response.json()["error_code"] == "PAYLOAD_TOO_LARGE"

    # No Content-Length, body sent in chunks: the size actually streamed is what counts.
    status = await _raw_asgi_post(client.app, setup.webhook_path, big, {HEADER: headers[HEADER]})
    assert status == 413
    assert await WebhookEvent.find_all().count() == 0


async def _raw_asgi_post(app, path: str, body: bytes, headers: dict[str, str], chunk: int = 256 * 1024) -> int:
    """Call the ASGI app directly with a chunked body and no Content-Length (test clients always set one)."""
    parts = [body[i:i + chunk] for i in range(0, len(body), chunk)]
    sent: list[dict] = []

    async def receive():
        if parts:
            part = parts.pop(0)
            return {"type": "http.request", "body": part, "more_body": bool(parts)}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 5000), "server": ("testserver.local", 80)}
    await app(scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


async def test_just_under_the_limit_is_accepted(env):
    client, setup = env
    payload = envelope(messages=[text_message("x" * 1000)])
    raw = json.dumps(payload).encode()
    pad = MAX_BODY_BYTES - len(raw) - len(b',"pad":""')
    body = raw[:-1] + b',"pad":"' + b"y" * pad + b'"}'
    assert len(body) == MAX_BODY_BYTES
    response = await client.post(setup.webhook_path, content=body, headers=signed(body)[1])
    assert response.status_code == 200


@pytest.mark.parametrize("body", [b"not json", b"", b"[1, 2]", b'"text"', b'{"hello": "world"}',
                                  b'{"object": 5, "entry": []}', b'{"object": "x", "entry": {}}', b"\xff\xfe"])
async def test_signed_but_not_an_envelope_is_400_with_code(env, body):
    client, setup = env
    response = await client.post(setup.webhook_path, content=body, headers=signed(body)[1])
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PAYLOAD"
    assert await WebhookEvent.find_all().count() == 0


@pytest.mark.parametrize("depth", [1_000, 100_000])
async def test_a_signed_body_nested_thousands_deep_is_a_400_not_a_500(env, depth):
    client, setup = env
    body = ('{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":'
            + "[" * depth + "]" * depth + "}]}]}").encode()
    _, headers = signed(body)
    response = await client.post(setup.webhook_path, content=body, headers=headers)
    assert response.status_code == 400 and response.json()["error_code"] == "PAYLOAD_TOO_DEEP"
    assert "Traceback" not in response.text and await WebhookEvent.find_all().count() == 0


async def test_envelope_of_the_wrong_inner_shape_is_kept_and_marked(env):
    """Valid JSON, envelope-like, but entries/changes are not Meta's: kept (200) with the reason, not retried."""
    client, setup = env
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
                                                                                        "value": "not-an-object"}]}]}
    body, headers = signed(payload)
    response = await client.post(setup.webhook_path, content=body, headers=headers)
    assert response.status_code == 200
    event = await WebhookEvent.get(hashlib.sha256(body).hexdigest())
    assert event.ingested_at is not None and "not a WhatsApp webhook envelope" in event.error
    assert await ingest_pending(client.app.state.runtime) == []  # nothing left for a worker to retry
    assert await Message.find_all().count() == 0


async def test_a_message_is_applied_before_200_kept_raw_and_deduped_by_body_hash(env):
    client, setup = env
    body, headers = signed(envelope(messages=[text_message("once")]))
    first = await client.post(setup.webhook_path, content=body, headers=headers)
    # No worker runs here: the message is in the inbox when Meta gets its 200.
    assert first.status_code == 200 and not first.json()["duplicate"]
    assert [m.content for m in await Message.find_all().to_list()] == [{"body": "once"}]
    answers = [await client.post(setup.webhook_path, content=body, headers=headers) for _ in range(2)]
    assert [(a.status_code, a.json()["duplicate"]) for a in answers] == [(200, True), (200, True)]
    events = await WebhookEvent.find_all().to_list()
    assert len(events) == 1
    event = events[0]
    assert event.id == hashlib.sha256(body).hexdigest() and event.body == body
    assert event.workspace_id == setup.workspace_id and event.account_id == setup.account.id
    assert event.fields == ["messages"] and event.ingested_at is not None and event.error is None
    assert await Message.find_all().count() == 1
    assert (await Conversation.find_one({})).unread_count == 1  # a redelivery is not a second message


async def test_statuses_are_applied_before_200_and_their_bodies_are_not_kept(env):
    """A status webhook moves the tick at once; its raw body (three per message sent) is not stored."""
    client, setup = env
    body, headers = signed(envelope(messages=[text_message("hello")]))
    await client.post(setup.webhook_path, content=body, headers=headers)
    sent = await _outbound_message(setup, "wamid.OUT-1")
    for state, at in (("delivered", 2), ("read", 3), ("delivered", 4)):  # the late "delivered" does not go back
        body, headers = signed(envelope(statuses=[status("wamid.OUT-1", state, 1_800_000_000 + at)]))
        assert (await client.post(setup.webhook_path, content=body, headers=headers)).status_code == 200
    assert (await Message.get(sent.id)).status == MessageStatus.READ
    assert await WebhookEvent.find_all().count() == 1  # the customer's message only


async def test_a_big_body_is_kept_and_applied_by_a_worker(env):
    """More items than a request should apply while Meta waits: kept un-ingested, a worker applies it."""
    client, setup = env
    messages = [text_message(f"burst {i}") for i in range(INLINE_MAX_ITEMS + 1)]
    body, headers = signed(envelope(messages=messages))
    assert (await client.post(setup.webhook_path, content=body, headers=headers)).status_code == 200
    assert (await WebhookEvent.find_one({})).ingested_at is None and await Message.find_all().count() == 0
    assert await ingest_pending(client.app.state.runtime) == ["ingested"]
    assert await Message.find_all().count() == INLINE_MAX_ITEMS + 1


async def _outbound_message(setup, wamid: str) -> Message:
    conversation = await Conversation.find_one({})
    message = Message(workspace_id=setup.workspace_id, conversation_id=conversation.id, account_id=setup.account.id,
                      contact_id=conversation.contact_id, direction="outbound", type="text",
                      content={"body": "reply"}, wamid=wamid, status=MessageStatus.SENT)
    await message.insert()
    return message


async def test_concurrent_deliveries_share_a_write_and_each_gets_its_own_answer(env):
    """Deliveries in flight together are stored by one insert_many: a redelivery among them is still
    answered as a duplicate, every other one as new, and each is stored once."""
    import asyncio

    client, setup = env
    repeated = signed(envelope(messages=[text_message("sent three times at once")]))
    others = [signed(envelope(messages=[text_message(f"message {i}")])) for i in range(20)]
    answers = await asyncio.gather(*(client.post(setup.webhook_path, content=body, headers=headers)
                                     for body, headers in [repeated] * 3 + others))
    assert {a.status_code for a in answers} == {200}
    assert sorted(a.json()["duplicate"] for a in answers[:3]) == [False, True, True]
    assert not any(a.json()["duplicate"] for a in answers[3:])
    assert await WebhookEvent.find_all().count() == 21
    await ingest_pending(client.app.state.runtime)
    assert await Message.find_all().count() == 21


async def test_unknown_phone_number_id_is_kept_logged_and_200(env):
    client, setup = env
    body, headers = signed(envelope(messages=[text_message()], phone_number_id="999000999"))
    response = await client.post(setup.webhook_path, content=body, headers=headers)
    assert response.status_code == 200
    event = await WebhookEvent.find_one({})
    assert event.error is None and event.ingested_at is not None and any("999000999" in note for note in event.notes)
    assert await Message.find_all().count() == 0


async def test_rotated_app_secret_is_used_at_once(env):
    client, setup = env
    runtime = client.app.state.runtime
    body, headers = signed(envelope(messages=[text_message()]))
    assert (await client.post(setup.webhook_path, content=body, headers=headers)).status_code == 200  # cached
    account = await runtime.accounts.by_webhook_key(setup.account.webhook_key)
    account.app_secret_encrypted = runtime.secrets.encrypt("the-new-app-secret-0002")
    await account.save()
    await asyncio.sleep(1.05)  # bad signatures re-read the account at most once a second per URL
    body2, headers2 = signed(envelope(messages=[text_message()]), secret="the-new-app-secret-0002")
    assert (await client.post(setup.webhook_path, content=body2, headers=headers2)).status_code == 200
    body3, headers3 = signed(envelope(messages=[text_message()]))
    assert (await client.post(setup.webhook_path, content=body3, headers=headers3)).status_code == 401


async def test_inline_worker_ingests_what_the_endpoint_stored(client_factory):
    client = await client_factory(inline_worker=True)
    setup = await make_setup(client.app.state.runtime)
    messages = [text_message(f"via the worker {i}") for i in range(INLINE_MAX_ITEMS + 1)]  # too big to apply inline
    body, headers = signed(envelope(messages=messages))
    assert (await client.post(setup.webhook_path, content=body, headers=headers)).status_code == 200

    async def ingested():
        event = await WebhookEvent.find_one({})
        return event is not None and event.ingested_at is not None

    await wait_for(ingested)
    assert await Message.find_all().count() == INLINE_MAX_ITEMS + 1
    assert (await Message.find_one(Message.wamid == messages[0]["id"])).content == {"body": "via the worker 0"}


async def test_redis_down_still_200_applied_or_kept_then_swept_after_redis_returns(client_factory, settings, tmp_path):
    """Redis unavailable during the POST: a text is applied all the same (live updates are best
    effort); an image, whose download must be queued, is kept for a worker; once Redis is back the
    sweeper enqueues it and the worker queues the download."""
    from arq.jobs import Job
    from arq.worker import Worker

    from app.queue import DEFAULT_QUEUE
    from workers import tasks

    redis = EmbeddedRedis(tmp_path / "own-redis", persist=False).start()
    try:
        client = await client_factory(settings={"redis_url": redis.url})
        runtime = client.app.state.runtime
        setup = await make_setup(runtime)
        redis.stop()
        text, headers = signed(envelope(messages=[text_message("while redis was down")]))
        assert (await client.post(setup.webhook_path, content=text, headers=headers)).status_code == 200
        assert (await Message.find_one({})).content == {"body": "while redis was down"}
        image = text_message(type="image")
        image.pop("text")
        image["image"] = {"id": "media-while-redis-was-down", "mime_type": "image/jpeg", "sha256": "x"}
        body, headers = signed(envelope(messages=[image]))
        assert (await client.post(setup.webhook_path, content=body, headers=headers)).status_code == 200
        event = await WebhookEvent.get(hashlib.sha256(body).hexdigest())
        assert event is not None and event.ingested_at is None and "Error" in event.error

        # Let the app's background enqueue give up first (connection refused), as it would in an outage.
        enqueuer = runtime.webhooks.enqueuer

        async def gave_up():
            return enqueuer._task is not None and enqueuer._task.done()

        await wait_for(gave_up)
        redis = EmbeddedRedis(tmp_path / "own-redis", port=redis.port, persist=False).start()
        async with on_test_loop(runtime) as local:
            assert await sweep_stale_events(local.arq, grace=timedelta(0)) == 1
            # An arq worker with only the ingest function (the product's other crons hold clients
            # of the app's own event loop), in burst mode: it runs what the sweeper enqueued.
            worker = Worker(functions=[tasks.ingest_webhook_event], redis_pool=local.arq, queue_name=DEFAULT_QUEUE,
                            burst=True, handle_signals=False, poll_delay=0.01, ctx={"runtime": local},
                            max_burst_jobs=1)
            await worker.async_run()
            await worker.close()
            event = await WebhookEvent.get(event.id)
            assert event.ingested_at is not None and event.error is None
            stored = await Message.find_one(Message.wamid == image["id"])
            download = await Job(f"media:{stored.id}:0", local.arq, _queue_name=DEFAULT_QUEUE).info()
            assert download is not None and download.function == "fetch_media"
    finally:
        redis.stop()


async def test_a_kept_body_is_enqueued_once_however_often_meta_delivers_it(env):
    """The job id is the event id: a redelivery of a body waiting for a worker adds no second job."""
    from arq.jobs import Job

    from app.queue import INGEST_JOB, enqueue_ingest

    client, _ = env
    async with on_test_loop(client.app.state.runtime) as local:
        assert await enqueue_ingest(local.arq, "a" * 64) is True
        assert await enqueue_ingest(local.arq, "a" * 64) is False
        info = await Job("a" * 64, local.arq, _queue_name="inbox:queue").info()
        assert (info.function, info.args) == (INGEST_JOB, ("a" * 64,))
        assert await local.arq.zcard("inbox:queue") == 1


async def test_old_ingested_events_are_pruned_recent_and_pending_kept(env):
    from app.db import utcnow
    from app.domains.webhooks.services import prune_ingested_events

    client, setup = env
    runtime = client.app.state.runtime
    for text in ("old", "recent", "pending"):
        body, headers = signed(envelope(messages=[text_message(text)]))
        await client.post(setup.webhook_path, content=body, headers=headers)
    await ingest_pending(runtime)
    events = await WebhookEvent.find_all().sort("received_at").to_list()
    collection = WebhookEvent.get_motor_collection()
    await collection.update_one({"_id": events[0].id}, {"$set": {"ingested_at": utcnow() - timedelta(days=31)}})
    await collection.update_one({"_id": events[2].id}, {"$set": {"ingested_at": None,
                                                                 "received_at": utcnow() - timedelta(days=40)}})
    assert await prune_ingested_events() == 1
    assert {e.id for e in await WebhookEvent.find_all().to_list()} == {events[1].id, events[2].id}


async def test_controller_post_serves_apps_composed_without_the_fast_path(client_factory, monkeypatch):
    """The Litestar POST route does the same as the fast-path middleware when that one lets it through."""
    from app.domains.webhooks import fastpath

    monkeypatch.setattr(fastpath, "PREFIX", "/not-this-path/")
    client = await client_factory()
    setup = await make_setup(client.app.state.runtime)
    body, headers = signed(envelope(messages=[text_message("through the controller")]))
    first = await client.post(setup.webhook_path, content=body, headers=headers)
    again = await client.post(setup.webhook_path, content=body, headers=headers)
    assert (first.status_code, first.json(), again.json()["duplicate"]) == (200, {"received": True, "duplicate": False}, True)
    assert (await client.post(setup.webhook_path, content=body, headers={HEADER: "sha256=00"})).status_code == 401
    assert (await client.post("/webhooks/whatsapp/unknown", content=body, headers=headers)).status_code == 404
    big = b"x" * (MAX_BODY_BYTES + 1)
    assert (await client.post(setup.webhook_path, content=big, headers=signed(big)[1])).status_code == 413
    assert await WebhookEvent.find_all().count() == 1


async def test_fast_path_answers_meta_with_plain_json(env):
    client, setup = env
    body, headers = signed(envelope(messages=[text_message()]))
    response = await client.post(setup.webhook_path, content=body, headers=headers)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (await client.post(setup.webhook_path + "/extra", content=body, headers=headers)).status_code == 404
