"""Workflows end to end: a customer's webhook, the real worker jobs, the one send path, Meta's sandbox.

Only Meta is simulated. Runs are advanced by the worker (in-process, as `inbox run` does); waits are
shortened by moving a run's wake-up time, never by a test switch in the product.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from app.db import utcnow
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.workflows.models import WorkflowRun
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401 (fixtures)
from tests.support.inbound import envelope, new_wamid, signed, text_message

_phones = itertools.count(4915200000001)


async def customer_writes(env: Any, account: Any, phone: str, text: str) -> Message:
    wamid = new_wamid()
    body, headers = signed(envelope(messages=[text_message(text, wamid=wamid, from_=phone)],
                                    phone_number_id=account.phone_number_id, waba_id=account.waba_id), "secret")
    answer = await env.client.post(f"/webhooks/whatsapp/{account.webhook_key}", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return await wait_for(lambda: Message.find_one(Message.wamid == wamid))


async def texts_to(env: Any, account: Any, phone: str) -> list[str]:
    out = []
    for sent in await env.sent(account):
        if sent["to"] != f"+{phone}":
            continue
        if sent["type"] == "text":
            out.append(sent["body"]["text"]["body"])
        elif sent["type"] == "interactive":
            out.append(sent["body"]["interactive"]["body"]["text"])
        elif sent["type"] == "template":
            out.append("template:" + sent["body"]["template"]["name"])
    return out


async def texts(env: Any, account: Any, phone: str, n: int) -> list[str]:
    async def enough() -> list[str] | None:
        found = await texts_to(env, account, phone)
        return found if len(found) >= n else None

    return await wait_for(enough)


async def create(env: Any, definition: dict[str, Any]) -> dict[str, Any]:
    answer = await env.client.post("/api/v1/workflows", headers=env.headers, json=definition)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def ended(run_filter: dict[str, Any]) -> WorkflowRun:
    async def done() -> WorkflowRun | None:
        run = await WorkflowRun.find_one(run_filter)
        return run if run is not None and run.status not in ("running", "waiting") else None

    return await wait_for(done)


async def waiting(run_filter: dict[str, Any]) -> WorkflowRun:
    async def parked() -> WorkflowRun | None:
        run = await WorkflowRun.find_one({**run_filter, "status": "waiting"})
        return run

    return await wait_for(parked)


async def wake_now(run: WorkflowRun) -> None:
    """The wait is over: its wake-up moved to now (what the clock would do), then the tick queues it."""
    await WorkflowRun.find_one({"_id": run.id}).update({"$set": {"wake_at": utcnow() - timedelta(seconds=1)}})


KEYWORDS = {
    "name": "Support keywords", "enabled": True,
    "trigger": {"type": "message_received", "match": "any"},
    "steps": [{"id": "route", "type": "condition", "branches": [
        {"label": "urgent", "when": {"match": "any", "conditions": [
            {"field": "message.text", "op": "has", "value": ["urgent", "refund"]}]},
         "steps": [{"id": "prio", "type": "set_priority", "params": {"priority": "high"}},
                   {"id": "tag", "type": "tags", "params": {"add": ["escalated"], "remove": []}},
                   {"id": "ack", "type": "send_text", "params": {"text": "Marked urgent, {{contact.name}}."}}]},
        {"label": "hours", "when": {"match": "all", "conditions": [
            {"field": "message.text", "op": "has", "value": ["hours"]}]},
         "steps": [{"id": "hours", "type": "send_text", "params": {"text": "We open at nine."}}]},
    ]}],
}


async def test_keyword_reply_and_escalation_through_the_worker_and_sandbox(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    workflow = await create(env, KEYWORDS)
    phone = str(next(_phones))

    await customer_writes(env, account, phone, "What are your opening hours?")
    assert await texts(env, account, phone, 1) == ["We open at nine."]
    await customer_writes(env, account, phone, "This is URGENT, I want a refund")
    assert await texts(env, account, phone, 2) == ["We open at nine.", "Marked urgent, ."] or \
        (await texts_to(env, account, phone))[1].startswith("Marked urgent")
    conversation = await Conversation.find_one({})
    assert conversation.priority == "high"
    contact = await Contact.get(conversation.contact_id)
    assert "escalated" in contact.tags
    sent = await Message.find(Message.direction == "outbound").sort("_id").to_list()
    assert [m.via for m in sent] == ["automation", "automation"]
    assert sent[0].automation["name"] == "Support keywords" and sent[0].automation["workflow_id"] == workflow["id"]
    runs = await WorkflowRun.find({}).sort("_id").to_list()
    assert [r.status for r in runs] == ["completed", "completed"]
    # A message matching no branch starts a run that ends having sent nothing.
    await customer_writes(env, account, phone, "thanks")
    third = await ended({"trigger.text": "thanks"})
    assert third.status == "completed" and len(await texts_to(env, account, phone)) == 2
