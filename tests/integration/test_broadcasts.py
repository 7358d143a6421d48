"""Broadcasts end to end: the API, the real worker jobs, the outbox's bulk lane, Meta's sandbox.

Only Meta is simulated. Each recipient's message goes through the one send path, so the sandbox
sees exactly what WhatsApp would.
"""

from __future__ import annotations

from typing import Any

from app.domains.broadcasts.models import Broadcast, BroadcastRecipient
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation, ConversationStatus
from app.domains.messages.models import Message
from app.domains.templates.models import MessageTemplate
from tests.integration.outbound_env import ThreadWorker, outbound, sandbox_server, wait_for  # noqa: F401

BODY = "Hi {{1}}, our sale ends on {{2}}."


async def world(outbound: Any, *, category: str = "MARKETING", inline_worker: bool = True, contacts: int = 5,
                **number: Any) -> tuple[Any, Any, list[Contact]]:  # noqa: F811
    env = await outbound(inline_worker=inline_worker)
    account = await env.add_number(**number)
    components = [{"type": "BODY", "text": BODY}]
    await MessageTemplate(workspace_id=env.workspace_id, waba_id=account.waba_id, meta_id="m-sale", name="sale",
                          language="en", category=category, status="APPROVED", components=components).insert()
    env.state.seed_template(account.waba_id, "sale", "en", category, components)
    made = []
    for i in range(contacts):
        answer = await env.client.post("/api/v1/contacts", headers=env.headers, json={
            "phone": f"+4915300000{i:03d}", "name": f"Person {i}", "tags": ["vip"] if i % 2 == 0 else ["other"],
            "attributes": {"city": f"City {i}"} if i != 2 else {}})
        assert answer.status_code == 201, answer.text
        made.append(await Contact.get(answer.json()["id"]))
    return env, account, made


def draft(account: Any, **changes: Any) -> dict[str, Any]:
    return {"name": "Spring sale", "account_id": str(account.id), "template_name": "sale", "language": "en",
            "params": [{"source": "name"}, {"source": "attribute", "value": "city"}],
            "audience": {"tags": ["vip"]}, **changes}


async def finished(broadcast_id: str) -> Broadcast:
    async def done() -> Broadcast | None:
        found = await Broadcast.get(broadcast_id)
        return found if found.status in ("completed", "paused", "cancelled") else None

    return await wait_for(done, timeout=60)


async def test_a_broadcast_reaches_its_audience_once_each_with_reasons_for_the_skipped(outbound):  # noqa: F811
    env, account, people = await world(outbound)
    await env.client.patch(f"/api/v1/contacts/{people[4].id}", headers=env.headers, json={"opted_out_marketing": True})
    made = await env.client.post("/api/v1/broadcasts", headers=env.headers, json=draft(account))
    assert made.status_code == 201, made.text
    bid = made.json()["id"]
    counted = (await env.client.get(f"/api/v1/broadcasts/{bid}/audience", headers=env.headers)).json()
    assert counted == {"contacts": 3, "opted_out": 1, "to_send": 2}  # vip: 0, 2, 4 (4 opted out)
    preview = (await env.client.get(f"/api/v1/broadcasts/{bid}/preview", headers=env.headers)).json()
    assert preview["rendered"]["body"] == "Hi Person 0, our sale ends on City 0."

    started = await env.client.post(f"/api/v1/broadcasts/{bid}/start", headers=env.headers, json={})
    assert started.status_code == 200, started.text
    again = await env.client.post(f"/api/v1/broadcasts/{bid}/start", headers=env.headers, json={})
    assert again.status_code == 409 and again.json()["error_code"] == "BROADCAST_STARTED"
    broadcast = await finished(bid)
    assert broadcast.status == "completed" and broadcast.total == 3

    async def sent_once() -> list[dict[str, Any]] | None:
        sent = [s for s in await env.sent(account) if s["type"] == "template"]
        return sent if len(sent) >= 1 else None

    sent = await wait_for(sent_once)
    assert [s["to"] for s in sent] == ["+4915300000000"]
    assert sent[0]["body"]["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Person 0"}, {"type": "text", "text": "City 0"}]
    shown = (await env.client.get(f"/api/v1/broadcasts/{bid}", headers=env.headers)).json()
    assert shown["counts"]["queued"] == 1 and shown["counts"]["skipped"] == 2
    assert shown["counts"]["skipped_by_reason"] == {"no value for city": 1, "opted out of marketing": 1}
    # No conversation was opened for a recipient who has not answered: it waits resolved.
    conversation = await Conversation.find_one({"contact_id": people[0].id})
    assert conversation.status is ConversationStatus.RESOLVED
    message = await Message.find_one({"broadcast.id": bid})
    assert message.via == "broadcast" and message.broadcast["name"] == "Spring sale" and message.priority == "bulk"
    # ... and once they answer, the inbox shows what they were sent as its last message.
    assert conversation.last_message.message_id == message.id and conversation.last_message.direction == "outbound"
    assert conversation.last_message.text.startswith("Hi Person 0, our sale ends on City 0.")
    assert conversation.last_message_at is not None

    # A resumed or re-run slice sends nothing twice: every recipient has one message, ever.
    await env.runtime.broadcasts.sender.run_slice(bid)
    assert await Message.find({"broadcast.id": bid}).count() == 1
    rows = (await env.client.get(f"/api/v1/broadcasts/{bid}/recipients", headers=env.headers)).json()["data"]
    assert sorted(r["status"] for r in rows) in (["accepted", "skipped", "skipped"], ["queued", "skipped", "skipped"],
                                                ["sent", "skipped", "skipped"], ["delivered", "skipped", "skipped"])
    csv = await env.client.get(f"/api/v1/broadcasts/{bid}/recipients.csv", headers=env.headers)
    assert csv.status_code == 200 and csv.text.count("\n") == 4 and "opted out of marketing" in csv.text


async def test_bad_input_is_refused_with_its_reason_and_nothing_is_sent(outbound):  # noqa: F811
    env, account, _ = await world(outbound, contacts=1)
    cases = [
        (draft(account, template_name="nope"), "TEMPLATE_NOT_APPROVED"),
        (draft(account, params=[{"source": "name"}]), "BROADCAST_INVALID"),
        (draft(account, audience={"segment_ids": ["6b12d0c703ad15ea8f962084"]}), "AUDIENCE_INVALID"),
        (draft(account, account_id="6b12d0c703ad15ea8f962084"), "BROADCAST_INVALID"),
        (draft(account, header_link="http://insecure.example/x.jpg"), "VALIDATION_ERROR"),
    ]
    for body, code in cases:
        answer = await env.client.post("/api/v1/broadcasts", headers=env.headers, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error_code"] == code, answer.json()
    # A draft may be saved with nobody in it yet (to upload a list next); neither it nor one whose tag nobody
    # has can start.
    for audience in ({"tags": ["nobody-has-this"]}, {}):
        nobody = await env.client.post("/api/v1/broadcasts", headers=env.headers, json=draft(account, audience=audience))
        assert nobody.status_code == 201, nobody.text
        counted = await env.client.get(f"/api/v1/broadcasts/{nobody.json()['id']}/audience", headers=env.headers)
        assert counted.json() == {"contacts": 0, "opted_out": 0, "to_send": 0}
        refused = await env.client.post(f"/api/v1/broadcasts/{nobody.json()['id']}/start", headers=env.headers,
                                        json={})
        assert refused.status_code == 422 and refused.json()["error_code"] == "AUDIENCE_EMPTY"
        assert "upload a list" in refused.json()["error"]
    assert await Broadcast.find({"status": {"$ne": "draft"}}).count() == 0


async def test_pause_resume_and_a_template_paused_by_meta_pauses_it_with_the_reason(outbound):  # noqa: F811
    env, account, people = await world(outbound, inline_worker=False, contacts=6)
    made = await env.client.post("/api/v1/broadcasts", headers=env.headers,
                                 json=draft(account, params=[{"source": "name"}, {"source": "text", "value": "Friday"}],
                                            audience={"tags": ["vip", "other"]}))
    bid = made.json()["id"]
    assert (await env.client.post(f"/api/v1/broadcasts/{bid}/start", headers=env.headers, json={})).status_code == 200
    paused = await env.client.post(f"/api/v1/broadcasts/{bid}/pause", headers=env.headers)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert paused.json()["pause_reason"].startswith("paused by")
    # Meanwhile Meta paused the template: resuming finds it, and the broadcast pauses again saying why.
    await MessageTemplate.find({"name": "sale"}).update({"$set": {"status": "PAUSED"}})
    resumed = await env.client.post(f"/api/v1/broadcasts/{bid}/resume", headers=env.headers)
    assert resumed.status_code == 200
    worker = ThreadWorker(env.runtime.settings, env.runtime.db).start()
    try:
        broadcast = await finished(bid)
        assert broadcast.status == "paused" and "template is paused" in broadcast.pause_reason
        assert await Message.find({"broadcast.id": bid}).count() == 0
        await MessageTemplate.find({"name": "sale"}).update({"$set": {"status": "APPROVED"}})
        assert (await env.client.post(f"/api/v1/broadcasts/{bid}/resume", headers=env.headers)).status_code == 200
        broadcast = await finished(bid)
        assert broadcast.status == "completed" and broadcast.total == 6
        assert await Message.find({"broadcast.id": bid}).count() == 6
        assert await BroadcastRecipient.find({"broadcast_id": broadcast.id, "status": "queued"}).count() == 6
    finally:
        worker.kill()
    cancel = await env.client.post(f"/api/v1/broadcasts/{bid}/cancel", headers=env.headers)
    assert cancel.status_code == 409 and cancel.json()["error_code"] == "BROADCAST_STATE"


async def test_local_time_sends_each_recipient_at_their_own_hour(outbound):  # noqa: F811
    """A Berlin number and a New York number, at 09:00 their time: each waits for its own morning."""
    from datetime import UTC, timedelta

    from app.db import as_utc, utcnow
    from app.domains.broadcasts.audience import local_moment

    env, account, _ = await world(outbound, contacts=0)
    for phone in ("+4930123456", "+12125551234"):
        made = await env.client.post("/api/v1/contacts", headers=env.headers, json={"phone": phone, "tags": ["vip"]})
        assert made.status_code == 201, made.text
    made = await env.client.post("/api/v1/broadcasts", headers=env.headers, json=draft(
        account, params=[{"source": "name", "fallback": "there"}, {"source": "text", "value": "Friday"}],
        local_time="09:00"))
    assert made.status_code == 201, made.text
    bid = made.json()["id"]
    assert (await env.client.post(f"/api/v1/broadcasts/{bid}/start", headers=env.headers, json={})).status_code == 200

    async def frozen() -> list[BroadcastRecipient] | None:
        rows = await BroadcastRecipient.find({}).sort("not_before").to_list()
        return rows if len(rows) == 2 and (await Broadcast.get(bid)).next_send_at else None

    rows = await wait_for(frozen)
    berlin, new_york = sorted(rows, key=lambda r: r.not_before)
    assert as_utc(berlin.not_before) == local_moment("4930123456", "09:00", as_utc(berlin.created_at), "UTC")
    assert as_utc(berlin.not_before).astimezone(UTC).hour in (7, 8)  # 09:00 in Berlin (summer / winter)
    assert as_utc(new_york.not_before).hour in (13, 14)  # 09:00 in New York
    assert as_utc((await Broadcast.get(bid)).next_send_at) == as_utc(berlin.not_before)
    assert await Message.find({"broadcast.id": bid}).count() == 0  # nobody's 09:00 has come yet
    await BroadcastRecipient.find({"_id": berlin.id}).update({"$set": {"not_before": utcnow() - timedelta(seconds=1)}})
    await Broadcast.find_one({"_id": berlin.broadcast_id}).update({"$set": {"next_send_at": utcnow()}})
    await env.runtime.broadcasts.due()  # Berlin's morning came
    await wait_for(lambda: _one_message(bid))
    assert (await Broadcast.get(bid)).status == "sending"  # New York still waits for its morning


async def _one_message(bid: str) -> bool | None:
    return True if await Message.find({"broadcast.id": bid}).count() == 1 else None
