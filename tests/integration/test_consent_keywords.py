"""STOP / START from the customer, through real signed webhooks: the contact's marketing consent and
its history (source "keyword", by the message's wamid), and every send path refusing marketing
templates to them while they are opted out (the API to a number, the API in a conversation, the
inbox composer), never utility ones."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from app.domains.contacts.consent import keyword_consent
from app.domains.contacts.models import Contact, KeywordSettings
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message, MessageStatus
from app.domains.templates.models import MessageTemplate
from tests.conftest import sign_in
from tests.integration.outbound_env import ThreadWorker, outbound, sandbox_server, wait_for  # noqa: F401
from tests.integration.test_outbound_faults import all_settled
from tests.support.command_capture import capture
from tests.support.inbound import deliver, envelope, make_setup, new_wamid, signed, text_message

CUSTOMER = "972541112233"


@pytest.mark.parametrize(("text", "expected"), [
    ("STOP", True), ("stop", True), ("  Stop!  ", True), ("STOP ALL", True), ("opt-out", True), ("Opt out.", True),
    ("unsubscribe", True), ("Arrêter", True), ("ARRETER", True), ("baja", True), ("Parar", True), ("STOPP", True),
    ("START", False), ("start.", False), ("Subscribe", False), ("UNSTOP", False),
    ("Please stop calling me", None), ("stop it now", None), ("stopping", None), ("", None), (None, None),
    ("Where is my order?", None), ("start" * 20, None),
])
def test_only_a_whole_message_that_is_a_keyword_counts(text, expected):
    assert keyword_consent(text) is expected


async def _templates(setup) -> None:
    for name, category in (("spring_sale", "MARKETING"), ("order_receipt", "UTILITY")):
        await MessageTemplate(workspace_id=setup.workspace_id, waba_id=setup.account.waba_id, meta_id=f"m-{name}",
                              name=name, language="en_US", category=category, status="APPROVED",
                              components=[{"type": "BODY", "text": f"{name} body"}]).insert()


def _template(name: str) -> dict:
    return {"type": "template", "content": {"name": name, "language": {"code": "en_US"}}}


async def _customer() -> Contact:
    return await Contact.find_one(Contact.wa_id == CUSTOMER)


async def _sends(client, setup, conversation_id, composer_headers) -> dict[str, int]:
    """The status of a marketing and a utility template through each send path."""
    codes = {}
    for name in ("spring_sale", "order_receipt"):
        to_number = await client.post("/api/v1/messages", headers=setup.auth, json={"to": f"+{CUSTOMER}", **_template(name)})
        in_conversation = await client.post(f"/api/v1/conversations/{conversation_id}/messages", headers=setup.auth,
                                            json=_template(name))
        composer = await client.post(f"/inbox/c/{conversation_id}/templates", headers=composer_headers,
                                     data={"template": f"{name}:en_US"})
        for path, answer in (("api", to_number), ("conversation", in_conversation), ("composer", composer)):
            codes[f"{name}/{path}"] = answer.status_code
            if answer.status_code == 422:
                assert "CONTACT_OPTED_OUT" in answer.text, answer.text
    return codes


async def test_stop_then_start_through_webhooks_and_marketing_refused_meanwhile(client):
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    await _templates(setup)
    now = int(time.time())
    await deliver(runtime, setup, envelope(messages=[text_message("Hi, where is my parcel?", from_=CUSTOMER,
                                                                  timestamp=now - 30)]))
    contact = await _customer()
    assert not contact.opted_out_marketing and contact.consent == []
    conversation = await Conversation.find_one(Conversation.contact_id == contact.id)
    await sign_in(client, setup.email, setup.password)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', (await client.get("/inbox")).text).group(1)
    composer = {"X-CSRFToken": token, "HX-Request": "true"}

    stop = new_wamid()
    message = text_message("Stop!", wamid=stop, from_=CUSTOMER, timestamp=now - 20)
    await deliver(runtime, setup, envelope(messages=[message]))
    contact = await _customer()
    assert contact.opted_out_marketing
    assert [(c.opted_out, c.source, c.by) for c in contact.consent] == [(True, "keyword", stop)]
    # Meta delivers the same webhook again (a new body, the same message): nothing more is recorded.
    await deliver(runtime, setup, envelope(messages=[message], name="Dana L."))
    assert len((await _customer()).consent) == 1

    codes = await _sends(client, setup, conversation.id, composer)
    assert {k: v for k, v in codes.items() if k.startswith("spring_sale")} == {
        "spring_sale/api": 422, "spring_sale/conversation": 422, "spring_sale/composer": 422}
    assert codes["order_receipt/api"] == 202 and codes["order_receipt/conversation"] == 202
    assert codes["order_receipt/composer"] == 200

    # A sentence with "stop" in it is a message, not a keyword.
    await deliver(runtime, setup, envelope(messages=[text_message("please don't stop the delivery", from_=CUSTOMER,
                                                                  timestamp=now - 15)]))
    assert len((await _customer()).consent) == 1

    start = new_wamid()
    await deliver(runtime, setup, envelope(messages=[text_message("START", wamid=start, from_=CUSTOMER,
                                                                  timestamp=now - 10)]))
    contact = await _customer()
    assert not contact.opted_out_marketing
    assert [(c.opted_out, c.source, c.by) for c in contact.consent] == [(True, "keyword", stop), (False, "keyword", start)]
    # An older STOP Meta delivers late does not undo the newer START.
    await deliver(runtime, setup, envelope(messages=[text_message("STOP", from_=CUSTOMER, timestamp=now - 25)]))
    assert not (await _customer()).opted_out_marketing and len((await _customer()).consent) == 2
    codes = await _sends(client, setup, conversation.id, composer)
    assert set(codes.values()) <= {200, 202}, codes


async def test_a_stop_written_in_a_group_does_not_opt_the_group_out(client):
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    await deliver(runtime, setup, envelope(messages=[text_message("STOP", from_=CUSTOMER, group_id="120363000000000001")]))
    group = await Contact.find_one(Contact.kind == "group")
    person = await _customer()
    assert group is not None and not group.opted_out_marketing and group.consent == []
    assert not person.opted_out_marketing and person.consent == []


async def test_a_marketing_template_queued_before_the_opt_out_is_not_sent(outbound):
    """Queued while no worker runs, then the customer is opted out: when the worker comes, the
    marketing template fails with the reason and never reaches WhatsApp; the text behind it is sent."""
    env = await outbound(inline_worker=False)
    account = await env.add_number()
    conversation = await env.conversation(account, "15550004001")
    await MessageTemplate(workspace_id=env.workspace_id, waba_id=account.waba_id, meta_id="m-sale", name="spring_sale",
                          language="en_US", category="MARKETING", status="APPROVED",
                          components=[{"type": "BODY", "text": "Spring sale"}]).insert()
    env.state.seed_template(account.waba_id, "spring_sale", "en_US", "MARKETING",
                            [{"type": "BODY", "text": "Spring sale"}])  # WhatsApp would take it
    url = f"/api/v1/conversations/{conversation.id}/messages"
    marketing = await env.client.post(url, headers=env.headers, json=_template("spring_sale"))
    assert marketing.status_code == 202, marketing.text
    text = await env.send(conversation, "Your parcel left the warehouse")
    assert text.status_code == 202, text.text
    opted = await env.client.patch(f"/api/v1/contacts/{conversation.contact_id}", headers=env.headers,
                                   json={"opted_out_marketing": True})
    assert opted.status_code == 200, opted.text

    worker = ThreadWorker(env.runtime.settings, env.runtime.db).start()
    try:
        await wait_for(lambda: all_settled([text.json()["id"]]))
        await wait_for(lambda: all_settled([marketing.json()["id"]], "failed"))
    finally:
        worker.kill()
    refused = await Message.get(marketing.json()["id"])
    assert refused.status is MessageStatus.FAILED
    assert "opted out of marketing" in refused.error.agent_message
    sent = await env.sent(account)
    assert [s["body"]["type"] for s in sent] == ["text"]
    answer = await env.client.get(f"/api/v1/messages/{marketing.json()['id']}", headers=env.headers)
    assert answer.json()["status"] == "failed"


async def test_ingestion_reads_the_workspaces_words_once_then_only_its_cached_copy(outbound):  # noqa: F811
    """With extra words saved, customers' messages through the webhook cost at most one read of the
    keyword settings (this process's cache filling; the driver's own command log); an admin's change is
    heard and read exactly once again; a custom word still changes consent."""
    env = await outbound()
    account = await env.add_number()
    saved = await env.client.put("/api/v1/opt-out-keywords", headers=env.headers,
                                 json={"opt_out_words": ["ALTO"], "opt_in_words": ["volver"]})
    assert saved.status_code == 200, saved.text
    database = env.runtime.settings.mongodb_database
    phones = iter(f"3466600{i:04d}" for i in range(100))

    async def writes(text: str) -> Contact:
        phone, wamid = next(phones), new_wamid()
        body, headers = signed(envelope(messages=[text_message(text, wamid=wamid, from_=phone)],
                                        phone_number_id=account.phone_number_id, waba_id=account.waba_id), "secret")
        answer = await env.client.post(f"/webhooks/whatsapp/{account.webhook_key}", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        await wait_for(lambda: Message.find_one(Message.wamid == wamid))
        return await Contact.find_one(Contact.wa_id == phone)

    def settings_reads(seen) -> int:
        return sum(1 for c in seen if c.command.get(c.name) == KeywordSettings.Settings.name)

    await asyncio.sleep(0.2)  # the save's own change notice comes back from Redis too, and drops the copy again
    with capture(database) as seen:
        said = [await writes(text) for text in ("Hola", "alto", "Where is my parcel?", "ALTO!")]
    assert seen and settings_reads(seen) <= 1  # the first message may fill this process's cache
    assert [c.opted_out_marketing for c in said] == [False, True, False, True]

    changed = await env.client.put("/api/v1/opt-out-keywords", headers=env.headers,
                                   json={"opt_out_words": ["ALTO", "basta"]})
    assert changed.status_code == 200, changed.text
    await asyncio.sleep(0.2)
    with capture(database) as seen:
        said = [await writes(text) for text in ("basta", "Hi", "stop")]
    assert settings_reads(seen) == 1  # the change was heard: read once, then cached again
    assert [c.opted_out_marketing for c in said] == [True, False, True]
    assert said[0].consent[-1].source == "keyword"
