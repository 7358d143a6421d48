"""Issue 19, the templates panel: replies per template. A customer's message answers our template when it is the
next message in the conversation after it, within a day (conversations.services._answer_to_template).

Today, through the product's paths (the API sends; Meta's status webhooks name our messages by their
biz_opaque_callback_data; the customers write through the webhook):
  order_update to Ann, delivered; Ann writes twice            -> replied once (her first message)
  Ben writes; order_update to him, delivered; we send Ben a text; Ben writes
                                                              -> not a reply to the template (our text came after)
  order_update to Cat, still queued; Cat writes                -> not a reply (it had not reached her)
  a reaction from Dan to his delivered order_update            -> not a reply
So order_update: sent 4, replied 1.
"""

from __future__ import annotations

import time

import pytest

from app.domains.messages.models import Message
from app.domains.messages.status import opaque_of
from app.domains.templates.models import MessageTemplate
from tests.conftest import sign_in
from tests.support.inbound import deliver, envelope, make_setup, new_wamid, status, text_message


@pytest.fixture
async def replies(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    await MessageTemplate(workspace_id=setup.account.workspace_id, waba_id=setup.account.waba_id, meta_id="772",
                          name="order_update", language="en_US", category="UTILITY", status="APPROVED",
                          components=[{"type": "BODY", "text": "Your order is ready"}]).insert()

    async def send(to: str, **content) -> str:
        body = {"to": to, "account_id": str(setup.account.id),
                **(content or {"type": "template", "content": {"name": "order_update", "language": {"code": "en_US"}}})}
        answer = await client.post("/api/v1/messages", headers=setup.auth, json=body)
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    async def delivered(message_id: str) -> str:
        wamid = new_wamid()
        receipt = {**status(wamid, "delivered", int(time.time())), "biz_opaque_callback_data": opaque_of(message_id)}
        await deliver(runtime, setup, envelope(statuses=[receipt]))
        assert (await Message.get(message_id)).status == "delivered"
        return wamid

    async def writes(phone: str, text: str = "Thanks!") -> None:
        await deliver(runtime, setup, envelope(messages=[text_message(text, from_=phone)]))

    ann, ben, cat, dan = "4915100000071", "4915100000072", "4915100000073", "4915100000074"
    to_ann = await send(ann)
    await delivered(to_ann)
    await writes(ann)
    await writes(ann, "And when will it arrive?")
    await writes(ben, "Hi")  # (so the window is open for our text)
    await delivered(await send(ben))
    await send(ben, type="text", content={"body": "Tell us if anything is missing"})
    await writes(ben)
    to_cat = await send(cat)
    await writes(cat)
    dan_wamid = await delivered(await send(dan))
    reaction = {"from": dan, "id": new_wamid(), "timestamp": str(int(time.time())), "type": "reaction",
                "reaction": {"message_id": dan_wamid, "emoji": "👍"}}
    await deliver(runtime, setup, envelope(messages=[reaction]))
    return client, setup, to_ann, to_cat


async def test_a_template_is_replied_once_by_the_customers_next_message(replies):
    client, setup, to_ann, to_cat = replies
    assert (await Message.get(to_ann)).replied_at is not None
    assert (await Message.get(to_cat)).replied_at is None
    answer = await client.get("/api/v1/analytics/templates", headers=setup.auth, params={"range": "today"})
    assert answer.status_code == 200, answer.text
    assert [(r["name"], r["sent"], r["delivered"], r["replied"]) for r in answer.json()["templates"]] == [
        ("order_update", 4, 3, 1)]


async def test_the_page_and_the_csv_show_the_replies(replies):
    client, setup, _, _ = replies
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get("/reports", params={"range": "today"})
    assert 'data-figure="template-replied">25.0 % <span class="muted">(1)</span>' in page.text
    exported = await client.get("/reports/templates.csv", params={"range": "today"})
    header, row = exported.text.strip().splitlines()[:2]
    assert header.split(",")[-1] == "replied" and row.split(",")[-1] == "1"
