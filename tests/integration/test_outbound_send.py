"""The send path end to end: API -> outbox -> drain job -> sandbox, and its validations."""

from __future__ import annotations

from app.domains.messages.models import Message
from tests.integration.outbound_env import outbound, sandbox_server, statuses, wait_for  # noqa: F401


async def test_send_in_conversation_is_accepted_with_a_wamid(outbound):
    env = await outbound()
    account = await env.add_number()
    conversation = await env.conversation(account, "15550001111")
    answer = await env.send(conversation, "hello there")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "queued" and body["to"] == "+15550001111"

    async def accepted():
        got = await env.client.get(f"/api/v1/messages/{body['id']}", headers=env.headers)
        return got.json() if got.json()["status"] == "accepted" else None

    final = await wait_for(accepted)
    sent = await env.sent(account)
    assert [s["wamid"] for s in sent] == [final["wamid"]]
    assert sent[0]["body"]["text"] == {"body": "hello there"}
    assert sent[0]["body"]["to"] == "+15550001111"
