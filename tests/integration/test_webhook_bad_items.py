"""One unreadable item in a webhook body never costs the others (issue 14, item 1)."""

from __future__ import annotations

import time

from app.domains.contacts.models import Contact
from app.domains.messages.models import Message
from app.domains.webhooks.models import WebhookEvent
from tests.conftest import sign_in
from tests.support.inbound import envelope, make_setup, new_wamid, signed, text_message
from tests.support.servers import scrape_metrics

NOW = int(time.time())


def _rejected_count(metrics: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("inbox_webhook_items_rejected_total{"))


async def test_a_bad_item_is_left_out_and_shown_the_rest_is_applied(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    before = _rejected_count((await scrape_metrics(client.app)).text)
    bad = {"from": "972987654321", "id": new_wamid(), "timestamp": str(NOW), "type": "location",
           "location": {"latitude": "n/a", "longitude": 15.97}}
    good = text_message("Is the shop open on Sunday?", timestamp=NOW + 1)
    body = envelope(messages=[bad, good])
    # A marketing opt-out of another customer in another change of the same body.
    body["entry"][0]["changes"].append({"field": "user_preferences", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": setup.account.phone_number_id},
        "user_preferences": [{"wa_id": "16505551234", "category": "marketing_messages", "value": "stop",
                              "timestamp": NOW}]}})
    content, headers = signed(body)
    answer = await client.post(setup.webhook_path, content=content, headers=headers)
    assert answer.status_code == 200

    # The valid message reached the inbox and the opt-out was recorded ...
    stored = await Message.find(Message.direction == "inbound").to_list()
    assert [m.content.get("body") for m in stored] == ["Is the shop open on Sunday?"]
    opted = await Contact.find_one(Contact.wa_id == "16505551234")
    assert opted is not None and opted.opted_out_marketing is True
    # ... and the bad item is kept (the raw body), explained, counted and listed for admins.
    event = await WebhookEvent.find_one({})
    assert event is not None and event.ingested_at is not None and bad["id"].encode() in event.body
    assert any("messages[0]" in note and "latitude" in note for note in event.notes), event.notes
    assert _rejected_count((await scrape_metrics(client.app)).text) == before + 1
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get(f"/admin/numbers/{setup.account.id}")
    assert page.status_code == 200
    assert "Webhook problems" in page.text and "messages[0] not usable" in page.text and "latitude" in page.text


async def test_a_number_without_problems_says_so(client_factory):
    client = await client_factory()
    setup = await make_setup(client.app.state.runtime)
    content, headers = signed(envelope(messages=[text_message("hi")]))
    assert (await client.post(setup.webhook_path, content=content, headers=headers)).status_code == 200
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get(f"/admin/numbers/{setup.account.id}")
    assert "every webhook this number received could be used" in page.text
