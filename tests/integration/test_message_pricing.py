"""Issue 15 (items 3 and 6): Meta's per-message pricing from status webhooks, and the send answer's
message_status, kept on the message, in its JSON shape (API, event webhooks) and in the inbox."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from beanie import PydanticObjectId

from app.domains.accounts.services import NewAccount
from app.domains.messages.models import Message, MessagePricing, MessageStatus, PendingStatus
from app.domains.messages.status import apply_pending_statuses
from tests.conftest import sign_in
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401
from tests.support.inbound import deliver, envelope, make_setup, new_wamid
from tests.support.inbound import outbound as stored_outbound
from tests.support.servers import read_body, serve

NOW = int(time.time())
FREE_SERVICE = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
MARKETING = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
HX = {"HX-Request": "true"}


def priced(wamid: str, state: str, timestamp: int, pricing: dict[str, Any] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(timestamp), "recipient_id": "972987654321"}
    if pricing is not None:
        item["pricing"] = pricing
    return item


@pytest.fixture
async def env(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    return client, runtime, await make_setup(runtime)


async def thread_html(client, setup, conversation_id) -> str:
    answer = await sign_in(client, setup.email, setup.password)
    assert answer.status_code in (302, 303), answer.text
    page = await client.get(f"/inbox/c/{conversation_id}", headers=HX)
    assert page.status_code == 200, page.text
    return page.text


def bubble(html: str, message_id: Any) -> str:
    start = html.index(f'id="msg-{message_id}"')
    return html[start:html.index("</li>", start)]


async def test_status_pricing_lands_on_the_message_its_json_and_the_inbox(env):
    client, runtime, setup = env
    reply, promo = new_wamid(), new_wamid()
    service = await stored_outbound(setup, reply)
    marketing = await stored_outbound(setup, promo)  # (a template in life; the pricing is what matters)
    await deliver(runtime, setup, envelope(statuses=[priced(reply, "sent", NOW + 1, FREE_SERVICE),
                                                     priced(promo, "sent", NOW + 1, MARKETING)]))
    # Out of order, redelivered, and a later status without pricing: the pricing stays, set the same way.
    await deliver(runtime, setup, envelope(statuses=[priced(reply, "read", NOW + 3, FREE_SERVICE),
                                                     priced(reply, "delivered", NOW + 2, FREE_SERVICE),
                                                     priced(promo, "delivered", NOW + 2)]))
    await deliver(runtime, setup, envelope(statuses=[priced(reply, "sent", NOW + 1, FREE_SERVICE)]))

    stored = await Message.get(service.id)
    assert stored.status == MessageStatus.READ
    assert stored.pricing == MessagePricing(billable=False, model="PMP", type="free_customer_service", category="service")
    assert stored.pricing_category == "service"  # kept beside it for older readers
    stored_promo = await Message.get(marketing.id)
    assert stored_promo.status == MessageStatus.DELIVERED
    assert stored_promo.pricing == MessagePricing(billable=True, model="PMP", type="regular", category="marketing")

    one = (await client.get(f"/api/v1/messages/{service.id}", headers=setup.auth)).json()
    assert one["pricing"] == {"billable": False, "model": "PMP", "type": "free_customer_service", "category": "service"}
    assert one["pricing_category"] == "service" and one["meta_status"] is None
    thread = (await client.get(f"/api/v1/conversations/{service.conversation_id}/messages",
                               headers=setup.auth)).json()["data"]
    by_id = {m["id"]: m for m in thread}
    assert by_id[str(marketing.id)]["pricing"] == {"billable": True, "model": "PMP", "type": "regular",
                                                   "category": "marketing"}

    html = await thread_html(client, setup, service.conversation_id)
    assert "Service · free" in bubble(html, service.id)
    assert "Marketing · billable" in bubble(html, marketing.id)
    assert 'class="msg-detail msg-pricing"' in bubble(html, marketing.id)  # a quiet detail, not a banner
    assert "msg-held" not in html


async def test_a_late_status_still_brings_its_pricing(env):
    """A status that does not move the message (a late 'sent' after 'read') still carries Meta's pricing;
    the last one that carries it wins."""
    client, runtime, setup = env
    wamid = new_wamid()
    message = await stored_outbound(setup, wamid, MessageStatus.READ)
    await deliver(runtime, setup, envelope(statuses=[priced(wamid, "delivered", NOW, MARKETING)]))
    stored = await Message.get(message.id)
    assert stored.status == MessageStatus.READ and stored.pricing.category == "marketing"
    await deliver(runtime, setup, envelope(statuses=[priced(wamid, "sent", NOW - 1, {**MARKETING, "category": "utility"})]))
    stored = await Message.get(message.id)
    assert stored.status == MessageStatus.READ
    assert (stored.pricing.category, stored.pricing_category, stored.pricing.billable) == ("utility", "utility", True)


async def test_pricing_of_a_status_that_beats_its_message_ends_on_the_message(env):
    client, runtime, setup = env
    wamid = new_wamid()
    await deliver(runtime, setup, envelope(statuses=[priced(wamid, "delivered", NOW + 2, MARKETING),
                                                     priced(wamid, "sent", NOW + 1, MARKETING)]))
    waiting = await PendingStatus.find_all().to_list()
    assert {p.status for p in waiting} == {MessageStatus.SENT, MessageStatus.DELIVERED}
    assert all(p.pricing and p.pricing.type == "regular" and p.pricing_category == "marketing" for p in waiting)
    message = await stored_outbound(setup, wamid)  # the sender stores the wamid after Meta's answer
    assert await apply_pending_statuses(message) == [MessageStatus.SENT, MessageStatus.DELIVERED]
    stored = await Message.get(message.id)
    assert stored.status == MessageStatus.DELIVERED
    assert stored.pricing == MessagePricing(billable=True, model="PMP", type="regular", category="marketing")
    one = (await client.get(f"/api/v1/messages/{message.id}", headers=setup.auth)).json()
    assert one["pricing"]["billable"] is True and one["pricing"]["type"] == "regular"


async def test_a_status_kept_before_pricing_existed_and_old_messages_still_read(env):
    """Data stored before ``pricing``: a waiting status and a message with only the category."""
    client, runtime, setup = env
    wamid = new_wamid()
    await PendingStatus(wamid=wamid, status=MessageStatus.SENT, timestamp=NOW, pricing_category="utility").insert()
    message = await stored_outbound(setup, wamid)
    await apply_pending_statuses(message)
    assert (await Message.get(message.id)).pricing == MessagePricing(category="utility")
    old = await stored_outbound(setup, new_wamid(), MessageStatus.DELIVERED, pricing_category="authentication")
    one = (await client.get(f"/api/v1/messages/{old.id}", headers=setup.auth)).json()
    assert one["pricing"] == {"billable": None, "model": None, "type": None, "category": "authentication"}
    assert one["pricing_category"] == "authentication"
    assert "Authentication</span>" in bubble(await thread_html(client, setup, old.conversation_id), old.id)


class AnsweringGraph:
    """A stand-in for Meta's Graph API over real HTTP (the worker sends through aiohttp): answers each send
    as Meta does, with ``message_status`` (Meta holds some marketing templates for a quality assessment)."""

    def __init__(self) -> None:
        self.message_status: str | None = "held_for_quality_assessment"
        self.sent: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = await read_body(receive)
        if scope["method"] == "POST" and scope["path"].endswith("/messages"):
            request = json.loads(body)
            self.sent.append(request)
            answer: dict[str, Any] = {
                "messaging_product": "whatsapp",
                "contacts": [{"input": request["to"], "wa_id": request["to"].lstrip("+")}],
                "messages": [{"id": f"wamid.HELD{len(self.sent):04d}{time.time_ns()}",
                              **({"message_status": self.message_status} if self.message_status else {})}]}
            status = 200
        else:
            answer, status = {"error": {"message": "Unknown path", "type": "OAuthException", "code": 100}}, 400
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


async def test_a_send_answered_held_for_quality_assessment_says_so(outbound):  # noqa: F811
    graph = AnsweringGraph()
    with serve(graph) as fake_meta:
        env = await outbound(graph_api_url=fake_meta)
        account = await env.runtime.accounts.create(env.workspace_id, NewAccount(
            name="Held", phone_number_id="5550001", waba_id="5550002", display_phone_number="+15550001000",
            access_token="EAAG-held-token", app_secret="secret"))
        conversation = await env.conversation(account, "15550002222")
        answer = await env.send(conversation, "our spring sale")
        assert answer.status_code == 202, answer.text
        message_id = answer.json()["id"]
        assert answer.json()["meta_status"] is None  # queued: Meta has not answered yet

        async def accepted(message_id: str) -> dict[str, Any] | None:
            got = (await env.client.get(f"/api/v1/messages/{message_id}", headers=env.headers)).json()
            return got if got["status"] == "accepted" else None

        held = await wait_for(lambda: accepted(message_id))
        assert held["meta_status"] == "held_for_quality_assessment" and held["wamid"].startswith("wamid.HELD")
        assert (await Message.get(PydanticObjectId(message_id))).meta_status == "held_for_quality_assessment"

        graph.message_status = "accepted"
        plain_id = (await env.send(conversation, "and a plain one")).json()["id"]
        assert (await wait_for(lambda: accepted(plain_id)))["meta_status"] == "accepted"
        graph.message_status = None  # Meta leaves it out for most free-form messages
        bare_id = (await env.send(conversation, "and a bare one")).json()["id"]
        assert (await wait_for(lambda: accepted(bare_id)))["meta_status"] is None
        assert [s["text"]["body"] for s in graph.sent] == ["our spring sale", "and a plain one", "and a bare one"]

    signed = await sign_in(env.client, "admin@example.com", "a long test password")
    assert signed.status_code in (302, 303), signed.text
    html = (await env.client.get(f"/inbox/c/{conversation.id}", headers=HX)).text
    assert "Held for quality assessment" in bubble(html, message_id)
    assert 'class="msg-held"' in bubble(html, message_id)
    for other in (plain_id, bare_id):
        assert "msg-held" not in bubble(html, other) and "quality assessment" not in bubble(html, other)

    # Sent later after all: the notice gives way to a quiet detail.
    await Message.get_motor_collection().update_one({"_id": PydanticObjectId(message_id)},
                                                    {"$set": {"status": MessageStatus.SENT.value}})
    html = (await env.client.get(f"/inbox/c/{conversation.id}", headers=HX)).text
    later = bubble(html, message_id)
    assert 'class="msg-held"' not in later and 'class="msg-detail msg-was-held"' in later


async def test_a_paused_answer_reads_paused_by_whatsapp(env):
    client, runtime, setup = env
    message = await stored_outbound(setup, new_wamid(), meta_status="paused")
    assert (await client.get(f"/api/v1/messages/{message.id}", headers=setup.auth)).json()["meta_status"] == "paused"
    assert "Paused by WhatsApp" in bubble(await thread_html(client, setup, message.conversation_id), message.id)
