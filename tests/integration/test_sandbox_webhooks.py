"""Webhooks, inbound simulation and faults over real HTTP.

A receiver app captures the sandbox's posts and every one is checked against
``app.whatsapp.signature.verify`` with the number's app secret (see the fixtures module).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.integration.test_sandbox_fixtures import (  # noqa: F401 - fixtures
    CUSTOMER,
    PHONE_ID,
    WABA_ID,
    Sandbox,
    assert_graph_error,
    auth,
    receiver_server,
    sandbox,
    sandbox_server,
    text,
    wait_for,
)


def _by_message(statuses: list[dict[str, Any]], wamid: str) -> list[str]:
    return [s["status"] for s in statuses if s["id"] == wamid]


async def test_status_webhooks_sent_delivered_read_signed_and_in_order(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await sandbox.inbound(client, {"type": "text", "text": {"body": "hi"}})
        wamids = [(await sandbox.send(client, text(f"m{i}"))).json()["messages"][0]["id"] for i in range(3)]
    await wait_for(lambda: all(_by_message(sandbox.receiver.statuses(), w) == ["sent", "delivered", "read"]
                               for w in wamids))
    envelope = sandbox.receiver.envelopes()[-1]
    assert envelope["object"] == "whatsapp_business_account"
    entry = envelope["entry"][0]
    assert entry["id"] == WABA_ID and entry["changes"][0]["field"] == "messages"
    value = entry["changes"][0]["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": "15550001001", "phone_number_id": PHONE_ID}
    statuses = sandbox.receiver.statuses()
    sent = next(s for s in statuses if s["status"] == "sent")
    user_id = sandbox.state.users.by_phone(WABA_ID, CUSTOMER).user_id
    assert sent["recipient_id"] == CUSTOMER and isinstance(sent["timestamp"], str) and sent["timestamp"].isdigit()
    assert sent["recipient_user_id"] == user_id and "conversation" not in sent  # per-message pricing (v24+)
    # A free-form reply inside the customer service window is free.
    assert sent["pricing"] == {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                               "category": "service"}
    # 2026: every status rides with its recipient's contact (contacts[i] <-> statuses[i]).
    assert len(value["contacts"]) == len(value["statuses"])
    assert value["contacts"][0] == {"profile": {"name": "Ann Customer"}, "wa_id": CUSTOMER, "user_id": user_id}


async def test_read_after_ms_null_means_never_read(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client, read_after_ms=None, delivered_after_ms=10)
        await sandbox.inbound(client, {"type": "text", "text": {"body": "hi"}})
        wamid = (await sandbox.send(client, text())).json()["messages"][0]["id"]
    await wait_for(lambda: _by_message(sandbox.receiver.statuses(), wamid) == ["sent", "delivered"])
    await asyncio.sleep(0.3)
    assert _by_message(sandbox.receiver.statuses(), wamid) == ["sent", "delivered"]


async def test_free_form_outside_the_window_is_accepted_then_fails_131047(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        never_wrote = await sandbox.send(client, text())
        assert never_wrote.status_code == 200
        old = time.time() - 25 * 3600  # wrote, but 25 h ago
        await sandbox.inbound(client, {"type": "text", "text": {"body": "old"}}, sender="15550002222", timestamp=old)
        stale = await sandbox.send(client, text(to="+15550002222"))
        assert stale.status_code == 200
    wamids = [r.json()["messages"][0]["id"] for r in (never_wrote, stale)]
    failed = await wait_for(lambda: [s for s in sandbox.receiver.statuses() if s["status"] == "failed"]
                            if len([s for s in sandbox.receiver.statuses() if s["status"] == "failed"]) == 2 else None)
    assert sorted(s["id"] for s in failed) == sorted(wamids)
    error = failed[0]["errors"][0]
    assert error["code"] == 131047 and error["title"] == "Re-engagement message"
    assert set(error) == {"code", "title", "message", "error_data", "href"} and error["error_data"]["details"]
    assert all(_by_message(sandbox.receiver.statuses(), w) == ["failed"] for w in wamids)


async def test_undelivered_webhooks_are_retried_until_200(sandbox: Sandbox) -> None:
    sandbox.receiver.fail_next = 2
    async with httpx.AsyncClient() as client:
        await sandbox.register(client, delivered_after_ms=None, read_after_ms=None)
        wamid = await sandbox.inbound(client, {"type": "text", "text": {"body": "retry me"}})
        messages = await wait_for(lambda: sandbox.receiver.messages())
        assert messages[0][1]["id"] == wamid
        failures = [p for p in sandbox.receiver.posts if p[2] == 500]
        assert len(failures) == 2 and all(p[1] == failures[0][1] for p in failures)  # same bytes each time
        # The sandbox logs an attempt once the receiver's answer is back: poll for it.
        await wait_for(lambda: any(d["ok"] for d in sandbox.state.webhooks.deliveries))
        log = (await client.get(f"{sandbox.control}/deliveries", params={"phone_number_id": PHONE_ID})).json()
        assert [d["attempt"] for d in log["data"]] == [1, 2, 3] and log["data"][-1]["ok"] is True
        assert [d["status_code"] for d in log["data"]] == [500, 500, 200] and log["pending"] == 0


async def test_inbound_text_reply_and_reaction_webhooks(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        first = await sandbox.inbound(client, {"type": "text", "text": {"body": "hello"}})
        await sandbox.inbound(client, {"type": "text", "text": {"body": "again"}, "context": {"id": first}})
        await sandbox.inbound(client, {"type": "reaction", "reaction": {"message_id": first, "emoji": "👍"}})
    received = await wait_for(lambda: sandbox.receiver.messages() if len(sandbox.receiver.messages()) == 3 else None)
    value, message = received[0]
    user_id = sandbox.state.users.by_phone(WABA_ID, CUSTOMER).user_id
    assert user_id.startswith("US.") and len(user_id) == 23
    assert value["contacts"] == [{"profile": {"name": "Ann Customer"}, "wa_id": CUSTOMER, "user_id": user_id}]
    assert message == {"from": CUSTOMER, "from_user_id": user_id, "id": first, "timestamp": message["timestamp"],
                       "type": "text", "text": {"body": "hello"}}
    assert message["timestamp"].isdigit()
    assert received[1][1]["context"] == {"from": "15550001001", "id": first}
    assert received[2][1]["reaction"] == {"message_id": first, "emoji": "👍"}


MEDIA_CASES = [
    ("image", {"caption": "look"}, "image/jpeg", lambda b: Image.open(io.BytesIO(b)).format == "JPEG"),
    ("image", {"mime_type": "image/png"}, "image/png", lambda b: Image.open(io.BytesIO(b)).format == "PNG"),
    ("sticker", {}, "image/webp", lambda b: Image.open(io.BytesIO(b)).format == "WEBP"),
    ("audio", {"voice": True}, "audio/ogg; codecs=opus", lambda b: b[:4] == b"OggS" and b"OpusHead" in b[:64]),
    ("video", {"caption": "clip"}, "video/mp4", lambda b: b[4:8] == b"ftyp" and b"avc1" in b),
    ("document", {"filename": "invoice.pdf"}, "application/pdf", lambda b: b.startswith(b"%PDF-")),
]


@pytest.mark.parametrize(("kind", "given", "mime", "valid"), MEDIA_CASES, ids=[f"{c[0]}-{c[2]}" for c in MEDIA_CASES])
async def test_inbound_media_is_a_real_downloadable_file(sandbox: Sandbox, kind: str, given: dict[str, Any],
                                                         mime: str, valid: Any) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await sandbox.inbound(client, {"type": kind, kind: given})
        _, message = (await wait_for(lambda: sandbox.receiver.messages()))[0]
        media = message[kind]
        assert media["mime_type"] == mime and media["id"].isdigit()
        for key, value in given.items():
            if key != "mime_type":
                assert media[key] == value
        info = (await client.get(f"{sandbox.graph}/{media['id']}", headers=auth())).json()
        download = await client.get(info["url"], headers=auth())
    assert download.status_code == 200
    data = download.content
    assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["file_size"] == len(data)
    assert media["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()  # webhooks: base64
    assert valid(data)


async def test_inbound_bad_inputs_never_500(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        url = f"{sandbox.control}/inbound"
        for body in ({"phone_number_id": "nope", "from": CUSTOMER, "message": {"type": "text", "text": {"body": "x"}}},
                     {"phone_number_id": PHONE_ID, "from": "abc", "message": {"type": "text", "text": {"body": "x"}}},
                     {"phone_number_id": PHONE_ID, "from": CUSTOMER, "message": {"text": {"body": "x"}}},
                     {"phone_number_id": PHONE_ID, "from": CUSTOMER, "message": {"type": "text"}},
                     {"phone_number_id": PHONE_ID, "from": CUSTOMER, "message": {"type": "audio",
                                                                                 "audio": {"mime_type": "audio/amr"}}},
                     {"phone_number_id": PHONE_ID, "from": CUSTOMER, "message": "hi"},
                     {"phone_number_id": PHONE_ID, "from": CUSTOMER, "message": {}, "extra": 1}):
            response = await client.post(url, json=body)
            assert response.status_code == 400 and "error" in response.json(), (body, response.text)
        for body in ({"phone_number_id": 5}, {"mps": "fast"}, [], {"phone_number_id": "1", "waba_id": "2"}):
            response = await client.post(f"{sandbox.control}/numbers", json=body)
            assert response.status_code == 400 and "error" in response.json(), response.text
        assert (await client.post(f"{sandbox.control}/faults", json={"error_rate": 2})).status_code == 400
        assert (await client.post(f"{sandbox.control}/numbers", content=b"{")).status_code == 400


async def test_template_status_change_posts_its_webhook(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        seeded = await client.post(f"{sandbox.control}/templates", json={
            "waba_id": WABA_ID, "name": "welcome", "language": "en_US", "category": "MARKETING", "status": "PENDING",
            "components": [{"type": "BODY", "text": "Welcome!"}]})
        template_id = seeded.json()["id"]
        changed = await client.post(f"{sandbox.control}/templates/{template_id}/status",
                                    json={"status": "REJECTED", "reason": "INVALID_FORMAT"})
        assert changed.status_code == 200
    envelope = (await wait_for(lambda: sandbox.receiver.envelopes()))[0]
    entry = envelope["entry"][0]
    assert entry["id"] == WABA_ID and entry["changes"][0]["field"] == "message_template_status_update"
    value = entry["changes"][0]["value"]
    assert value["event"] == "REJECTED" and value["message_template_id"] == int(template_id)
    assert value["message_template_name"] == "welcome" and value["message_template_language"] == "en_US"
    assert value["reason"] == "INVALID_FORMAT"


async def test_fault_error_rate_one_answers_500_in_metas_shape(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await sandbox.register(client, phone_number_id="1002", access_token="tok-1002")
        fault = await client.post(f"{sandbox.control}/faults", json={"phone_number_id": PHONE_ID, "error_rate": 1.0,
                                                                      "http_status": 500})
        assert fault.status_code == 200
        assert_graph_error(await sandbox.send(client, text()), 500, 131000)
        other = await sandbox.send(client, text(), token="tok-1002", phone_id="1002")
        assert other.status_code == 200  # scoped to one number
        await client.post(f"{sandbox.control}/faults", json={"error_rate": 1.0, "error_code": 131016})
        assert_graph_error(await sandbox.send(client, text(), token="tok-1002", phone_id="1002"), 503, 131016)
        assert (await client.delete(f"{sandbox.control}/faults")).status_code == 200
        assert (await sandbox.send(client, text())).status_code == 200


async def test_fault_latency_and_timeouts(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        await sandbox.register(client)
        await client.post(f"{sandbox.control}/faults", json={"latency_ms": 300})
        started = time.monotonic()
        assert (await sandbox.send(client, text())).status_code == 200
        assert time.monotonic() - started >= 0.3
        await client.post(f"{sandbox.control}/faults", json={"timeout_rate": 1.0})
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{sandbox.graph}/{PHONE_ID}/messages", json=text(), headers=auth(), timeout=0.5)
        await client.delete(f"{sandbox.control}/faults")
        assert (await sandbox.send(client, text())).status_code == 200
    assert len(sandbox.state.list_sent()) == 2  # the held request was never accepted
