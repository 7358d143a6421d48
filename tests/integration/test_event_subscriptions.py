"""Event subscriptions end to end: a real inbound webhook becomes a signed POST to a real endpoint;
retries, the delivery log, redelivery, disabling after a day of failures, cross-workspace 404s."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from beanie import PydanticObjectId
from pydantic import SecretStr

from app.db import utcnow
from app.domains.accounts.services import NewAccount
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message, MessageStatus
from app.domains.subscriptions.models import Delivery, Subscription
from app.domains.subscriptions.signing import verify
from app.domains.workspaces.models import User
from tests.support.inbound import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    WABA_ID,
    envelope,
    signed,
    status,
    text_message,
    wait_for,
)
from tests.support.receiver import Receiver
from tests.support.servers import serve

KEY = "wai_event-subscriptions-test-key-0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
SETTINGS = {"admin_email": "admin@example.com", "admin_password": SecretStr("admin password"),
            "admin_api_key": SecretStr(KEY), "allow_private_webhook_targets": True,
            "event_webhook_backoff_scale": 0.001}


@pytest.fixture(scope="module")
def receiver():
    app = Receiver()
    with serve(app) as url:
        yield app, url


@pytest.fixture
async def env(client_factory, receiver):
    app, url = receiver
    app.requests.clear()
    app.answer(200)
    client = await client_factory(settings=SETTINGS, inline_worker=True)
    admin = await User.find_one(User.email == "admin@example.com")
    account = await client.app.state.runtime.accounts.create(admin.workspace_id, NewAccount(
        name="Main", phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID, display_phone_number="+15550100001",
        access_token="EAAG-token-0001", app_secret=APP_SECRET))
    return client, app, url, account


async def _subscribe(client, url: str, events: list[str]) -> dict:
    answer = await client.post("/api/v1/subscriptions", headers=AUTH,
                               json={"url": f"{url}/hook", "events": events, "description": "CRM"})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def _customer_writes(client, account, text: str = "Hello there", from_: str = "15551230001") -> None:
    body, headers = signed(envelope(messages=[text_message(text, from_=from_)]))
    answer = await client.post(f"/webhooks/whatsapp/{account.webhook_key}", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


async def test_inbound_message_is_delivered_signed_with_contact_and_conversation_created(env):
    client, receiver, url, account = env
    created = await _subscribe(client, url, ["message.received", "conversation.created", "contact.created"])
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["secret_last4"] == secret[-4:]
    shown = await client.get(f"/api/v1/subscriptions/{created['id']}", headers=AUTH)
    assert "secret" not in shown.json() and secret not in shown.text
    stored = await Subscription.get(created["id"])
    assert secret not in stored.secret_encrypted  # encrypted at rest

    await _customer_writes(client, account)
    received = await wait_for(lambda: _async(receiver.of_type("message.received")))
    hit = received[0]
    assert verify(secret, hit.headers["x-inbox-timestamp"], hit.body, hit.headers["x-inbox-signature"])
    assert not verify(secret, hit.headers["x-inbox-timestamp"], hit.body + b" ", hit.headers["x-inbox-signature"])
    event = hit.json
    assert event["type"] == "message.received" and event["id"].startswith("evt_")
    assert event["id"] == hit.headers["x-inbox-event-id"]
    assert event["data"]["message"]["content"] == {"body": "Hello there"}
    assert event["data"]["contact"]["wa_id"] == "15551230001"
    await wait_for(lambda: _async(receiver.of_type("conversation.created") and receiver.of_type("contact.created")))

    # A second message: message.received again, but no second conversation.created / contact.created.
    await _customer_writes(client, account, "Again")
    await wait_for(lambda: _async(len(receiver.of_type("message.received")) == 2))
    assert len(receiver.of_type("conversation.created")) == 1 and len(receiver.of_type("contact.created")) == 1

    log = await client.get(f"/api/v1/subscriptions/{created['id']}/deliveries", headers=AUTH)
    assert log.status_code == 200
    entries = log.json()["data"]
    assert len(entries) == 4 and all(d["state"] == "delivered" for d in entries)
    assert all(d["attempts"][0]["status_code"] == 200 for d in entries)
    by_state = {state: (await client.get(f"/api/v1/subscriptions/{created['id']}/deliveries",
                                         params={"state": state}, headers=AUTH)) for state in ("delivered", "failed", "nope")}
    assert len(by_state["delivered"].json()["data"]) == 4 and by_state["failed"].json()["data"] == []
    assert by_state["nope"].status_code == 400 and by_state["nope"].json()["error_code"] == "VALIDATION_ERROR"


async def test_failures_retry_with_backoff_then_succeed_and_redelivery_resends_same_event(env):
    client, receiver, url, account = env
    created = await _subscribe(client, url, ["message.received"])
    receiver.answer(500, 503, 200)
    await _customer_writes(client, account)
    delivery = await wait_for(lambda: Delivery.find_one({"state": "delivered"}))
    assert [a.status_code for a in delivery.attempts] == [500, 503, 200]
    assert delivery.attempts[0].error == "HTTP 500"
    ids = {r.json["id"] for r in receiver.of_type("message.received")}
    assert len(ids) == 1  # every retry carries the same event id

    one = await client.get(f"/api/v1/subscriptions/{created['id']}/deliveries/{delivery.id}", headers=AUTH)
    assert one.json()["payload"]["id"] in ids
    again = await client.post(f"/api/v1/subscriptions/{created['id']}/deliveries/{delivery.id}/redeliver",
                              headers=AUTH)
    assert again.status_code == 202, again.text
    await wait_for(lambda: _async(len(receiver.of_type("message.received")) == 4))
    assert {r.json["id"] for r in receiver.of_type("message.received")} == ids
    fresh = await wait_for(lambda: _attempts(delivery.id, 4))
    assert fresh.attempts[-1].manual is True and fresh.state.value == "delivered"
    health = (await client.get(f"/api/v1/subscriptions/{created['id']}", headers=AUTH)).json()
    assert health["last_status_code"] == 200 and health["failing_since"] is None


async def test_an_endpoint_failing_for_a_day_is_disabled_and_says_why(env):
    client, receiver, url, account = env
    created = await _subscribe(client, url, ["message.received"])
    await Subscription.get_motor_collection().update_one(
        {"_id": PydanticObjectId(created["id"])},
        {"$set": {"failing_since": utcnow() - timedelta(hours=24, minutes=1)}})
    receiver.answer(500)
    await _customer_writes(client, account)
    shown = await wait_for(lambda: _disabled(client, created["id"]))
    assert "every delivery failed for 24 hours" in shown["disabled_reason"] and "HTTP 500" in shown["disabled_reason"]
    assert (await Delivery.find_one({})).state.value == "cancelled"

    blocked = await client.post(f"/api/v1/subscriptions/{created['id']}/test", headers=AUTH)
    assert blocked.status_code == 409 and blocked.json()["error_code"] == "SUBSCRIPTION_DISABLED"
    enabled = await client.patch(f"/api/v1/subscriptions/{created['id']}", headers=AUTH, json={"active": True})
    assert enabled.json()["active"] is True and enabled.json()["disabled_reason"] is None
    receiver.answer(200)
    ping = await client.post(f"/api/v1/subscriptions/{created['id']}/test", headers=AUTH)
    assert ping.status_code == 202 and ping.json()["event_type"] == "ping"
    await wait_for(lambda: _async(receiver.of_type("ping")))


async def test_rotate_secret_signs_with_the_new_one(env):
    client, receiver, url, _ = env
    created = await _subscribe(client, url, ["message.received"])
    rotated = await client.post(f"/api/v1/subscriptions/{created['id']}/rotate-secret", headers=AUTH)
    secret = rotated.json()["secret"]
    assert secret != created["secret"]
    await client.post(f"/api/v1/subscriptions/{created['id']}/test", headers=AUTH)
    hit = (await wait_for(lambda: _async(receiver.of_type("ping"))))[0]
    assert verify(secret, hit.headers["x-inbox-timestamp"], hit.body, hit.headers["x-inbox-signature"])
    assert not verify(created["secret"], hit.headers["x-inbox-timestamp"], hit.body, hit.headers["x-inbox-signature"])


async def test_validation_and_other_workspaces_ids(env):
    client, _, url, _ = env
    created = await _subscribe(client, url, ["message.failed"])
    bad = await client.post("/api/v1/subscriptions", headers=AUTH, json={"url": f"{url}/x", "events": ["nope"]})
    assert bad.status_code in (400, 422) and bad.json()["error_code"]
    empty = await client.post("/api/v1/subscriptions", headers=AUTH, json={"url": f"{url}/x", "events": []})
    assert empty.status_code in (400, 422)
    runtime = client.app.state.runtime
    workspace, user = await runtime.people.create_workspace("Other", "other@example.com", "other password")
    _, other_key = await runtime.people.create_api_key(workspace.id, "other", "admin", user.id)
    other = {"Authorization": f"Bearer {other_key}"}
    sid = created["id"]
    delivery = (await client.post(f"/api/v1/subscriptions/{sid}/test", headers=AUTH)).json()["id"]
    for method, path in [("get", f"/api/v1/subscriptions/{sid}"), ("patch", f"/api/v1/subscriptions/{sid}"),
                         ("delete", f"/api/v1/subscriptions/{sid}"), ("get", f"/api/v1/subscriptions/{sid}/deliveries"),
                         ("post", f"/api/v1/subscriptions/{sid}/test"),
                         ("post", f"/api/v1/subscriptions/{sid}/rotate-secret"),
                         ("get", f"/api/v1/subscriptions/{sid}/deliveries/{delivery}"),
                         ("post", f"/api/v1/subscriptions/{sid}/deliveries/{delivery}/redeliver")]:
        kwargs = {"json": {"active": False}} if method == "patch" else {}
        answer = await getattr(client, method)(path, headers=other, **kwargs)
        assert answer.status_code == 404, (method, path, answer.status_code)
    listed = await client.get("/api/v1/subscriptions", headers=other)
    assert listed.json() == {"data": [], "next_cursor": None}
    assert (await client.delete(f"/api/v1/subscriptions/{sid}", headers=AUTH)).status_code == 204


async def _async(value):
    return value


async def _attempts(delivery_id, count: int):
    delivery = await Delivery.get(delivery_id)
    return delivery if delivery and len(delivery.attempts) >= count and delivery.state.value != "pending" else None


async def _disabled(client, subscription_id: str):
    shown = (await client.get(f"/api/v1/subscriptions/{subscription_id}", headers=AUTH)).json()
    return shown if not shown["active"] else None


async def test_status_changes_failures_and_conversation_updates_are_delivered(env):
    client, receiver, url, account = env
    created = await _subscribe(client, url, ["message.status_changed", "message.failed", "conversation.updated"])
    await _customer_writes(client, account, from_="15551239999")
    conversation = await wait_for(lambda: Conversation.find_one({"account_id": account.id}))
    # An outbound message Meta accepted; then its status webhooks arrive: delivered, then failed.
    sent_at = utcnow()
    message = await Message(workspace_id=account.workspace_id, conversation_id=conversation.id,
                            account_id=account.id, contact_id=conversation.contact_id, direction="outbound",
                            type="text", content={"body": "Your order"}, wamid="wamid.EVENTS-OUT-1",
                            status=MessageStatus.ACCEPTED, status_at={"queued": sent_at, "accepted": sent_at},
                            timestamp=sent_at).insert()
    now = int(time.time()) + 1
    for state, extra in (("delivered", {}), ("failed", {"errors": [{"code": 131026, "title": "Message undeliverable"}]})):
        body, headers = signed(envelope(statuses=[status(message.wamid, state, now, **extra)]))
        answer = await client.post(f"/webhooks/whatsapp/{account.webhook_key}", content=body, headers=headers)
        assert answer.status_code == 200
        await wait_for(lambda state=state: _async(any(r.json["data"]["status"] == state
                                                      for r in receiver.of_type("message.status_changed"))))
    failed = (await wait_for(lambda: _async(receiver.of_type("message.failed"))))[0].json
    assert failed["data"]["error"]["code"] == 131026 and failed["data"]["message"]["id"] == str(message.id)
    statuses = [r.json["data"]["status"] for r in receiver.of_type("message.status_changed")]
    assert statuses.count("delivered") == 1 and statuses.count("failed") == 1

    admin = await User.find_one(User.email == "admin@example.com")
    answer = await client.patch(f"/api/v1/conversations/{conversation.id}", headers=AUTH,
                                json={"assignee_id": str(admin.id), "status": "resolved"})
    assert answer.status_code == 200, answer.text
    updates = await wait_for(lambda: _async(len(receiver.of_type("conversation.updated")) >= 2
                                            and receiver.of_type("conversation.updated")))
    kinds = {u.json["data"]["change"]["kind"] for u in updates}
    assert {"assigned", "resolved"} <= kinds
    assert updates[-1].json["data"]["conversation"]["id"] == str(conversation.id)
    assert len(receiver.of_type("message.received")) == 0  # not subscribed
    assert created["events"] == ["message.status_changed", "message.failed", "conversation.updated"]
    await wait_for(_settled)


async def _settled():
    """No delivery still waiting (so the app shuts down with no job in flight)."""
    await asyncio.sleep(0.2)
    return await Delivery.find({"state": "pending"}).count() == 0
