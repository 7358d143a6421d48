"""Issue 15 item 5 against the sandbox and a real worker: Meta restricting the number (368 / 131031)
holds its sends until an admin resumes them, 131050 opts the customer out of marketing, and a
throttled Flow (132069) is retried."""

from __future__ import annotations

import asyncio

import pytest
from beanie import PydanticObjectId

from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact
from app.domains.messages.models import Message
from tests.integration.outbound_env import outbound, sandbox_server, statuses, wait_for  # noqa: F401
from tests.support.servers import scrape_metrics


def _bodies(sent: list[dict]) -> list[str]:
    return [s["body"]["text"]["body"] for s in sorted(sent, key=lambda s: s["accepted_at"])]


async def _all(ids: list[str], status: str) -> bool:
    return (await statuses(ids)).get(status, 0) == len(ids)


@pytest.mark.parametrize("code", [368, 131031])
async def test_restricted_number_holds_its_sends_until_an_admin_resumes_them(outbound, code):
    env = await outbound()
    account = await env.add_number()
    await env.faults(phone_number_id=account.phone_number_id, error_rate=1.0, http_status=400, error_code=code)
    conversation = await env.conversation(account, f"1555{int(account.phone_number_id[-6:]):06d}01")
    ids = []
    for i in range(3):
        answer = await env.send(conversation, f"m-{i}")
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])

    async def stopped():
        return (await WhatsAppAccount.get(account.id)).health.sending_stopped

    found = await wait_for(stopped)
    assert found.code == code
    # The first message met the refusal and stays queued, not failed; the next ones were not sent.
    await asyncio.sleep(1.0)  # a drainer that ignored the hold would have failed or sent by now
    assert await statuses(ids) == {"queued": 3}
    first = await Message.get(PydanticObjectId(ids[0]))
    assert first.error is None and first.status.value == "queued"
    assert await env.sent(account) == []

    # The account's JSON shows why; a send made meanwhile is accepted and waits with the others.
    shown = await env.client.get(f"/api/v1/accounts/{account.id}", headers=env.headers)
    assert shown.status_code == 200
    assert shown.json()["health"]["sending_stopped"]["code"] == code
    assert shown.json()["health"]["sending_stopped"]["at"]
    later = await env.send(conversation, "m-3")
    assert later.status_code == 202, later.text
    ids.append(later.json()["id"])
    await asyncio.sleep(0.5)
    assert await statuses(ids) == {"queued": 4} and await env.sent(account) == []

    # The admin deals with Meta, then resumes sending: everything goes, in the order it was written.
    await env.clear_faults()
    resumed = await env.client.post(f"/api/v1/accounts/{account.id}/resume-sending", headers=env.headers)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["health"]["sending_stopped"] is None
    await wait_for(lambda: _all(ids, "accepted"), timeout=30)
    assert _bodies(await env.sent(account)) == ["m-0", "m-1", "m-2", "m-3"]
    assert (await WhatsAppAccount.get(account.id)).health.sending_stopped is None

    again = await env.client.post(f"/api/v1/accounts/{account.id}/resume-sending", headers=env.headers)
    assert again.status_code == 409 and again.json()["error_code"] == "NOT_STOPPED"


async def test_resume_sending_needs_a_known_number_and_an_admin(outbound):
    env = await outbound()
    unknown = await env.client.post(f"/api/v1/accounts/{PydanticObjectId()}/resume-sending", headers=env.headers)
    assert unknown.status_code == 404
    anonymous = await env.client.post(f"/api/v1/accounts/{PydanticObjectId()}/resume-sending")
    assert anonymous.status_code == 401


async def test_a_restriction_stops_every_conversation_of_the_number_not_other_numbers(outbound):
    env = await outbound()
    restricted, healthy = await env.add_number(), await env.add_number()
    await env.faults(phone_number_id=restricted.phone_number_id, error_rate=1.0, http_status=400, error_code=368)
    held = []
    for i in range(3):  # three customers of the restricted number
        conversation = await env.conversation(restricted, f"1555{int(restricted.phone_number_id[-6:]):06d}{i:02d}")
        held.append((await env.send(conversation, f"r-{i}")).json()["id"])
    other = await env.conversation(healthy, f"1555{int(healthy.phone_number_id[-6:]):06d}50")
    fine = [(await env.send(other, "h-0")).json()["id"]]

    async def stopped():
        return (await WhatsAppAccount.get(restricted.id)).health.sending_stopped

    await wait_for(stopped)
    await wait_for(lambda: _all(fine, "accepted"))
    await asyncio.sleep(0.5)
    assert await statuses(held) == {"queued": 3}
    assert (await WhatsAppAccount.get(healthy.id)).health.sending_stopped is None


async def test_131050_marks_the_customer_opted_out_of_marketing(outbound):
    env = await outbound()
    account = await env.add_number()
    await env.faults(phone_number_id=account.phone_number_id, error_rate=1.0, http_status=400, error_code=131050)
    conversation = await env.conversation(account, f"1555{int(account.phone_number_id[-6:]):06d}02")
    assert (await Contact.get(conversation.contact_id)).opted_out_marketing is False
    answer = await env.send(conversation, "promo")
    assert answer.status_code == 202, answer.text
    message_id = answer.json()["id"]
    await wait_for(lambda: _all([message_id], "failed"))
    message = await Message.get(PydanticObjectId(message_id))
    assert message.error.code == 131050 and "stopped marketing" in message.error.agent_message
    assert (await Contact.get(conversation.contact_id)).opted_out_marketing is True
    assert (await WhatsAppAccount.get(account.id)).health.sending_stopped is None  # the number goes on


async def test_132069_throttled_flow_is_retried_and_does_not_trip_the_circuit(outbound):
    env = await outbound(circuit_failures=2)
    account = await env.add_number()
    await env.faults(phone_number_id=account.phone_number_id, error_rate=1.0, http_status=400, error_code=132069)
    conversation = await env.conversation(account, f"1555{int(account.phone_number_id[-6:]):06d}03")
    message_id = (await env.send(conversation, "flow")).json()["id"]

    async def retried_twice():
        metrics = (await scrape_metrics(env.client.app)).text
        line = next((x for x in metrics.splitlines() if x.startswith('inbox_send_retries_total{reason="132069"}')), "")
        return line and float(line.split()[-1]) >= 2

    await wait_for(retried_twice)  # 60 s scaled by 0.01, doubling, with jitter
    assert (await statuses([message_id])) == {"queued": 1}
    assert (await WhatsAppAccount.get(account.id)).health.circuit_open_until is None
    await env.clear_faults()
    await wait_for(lambda: _all([message_id], "accepted"), timeout=30)
    assert _bodies(await env.sent(account)) == ["flow"]
