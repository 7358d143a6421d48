"""A worker killed between Meta's answer to a send and recording it must not make the next worker send that
message again (issue 18: "kill -9 the worker ... duplicates (0)").

Every send carries ``biz_opaque_callback_data = "wa-inbox:<message id>"``, which Meta returns in the send's status
webhooks: a status whose wamid was never recorded still names its message, which takes the wamid and the status,
and the worker that takes the dead one's entries over (read from the database) finds it sent and skips it. Only
Meta is simulated (the sandbox); the worker is the real one, in-process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.messages.models import Message, MessageStatus, PendingStatus
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401

CUSTOMER = "4915112345678"


async def status_webhook(env: Any, account: Any, wamid: str, opaque: str, state: str = "sent") -> Any:
    """Meta's status webhook for ``wamid``, signed with the number's app secret (the sandbox's "secret")."""
    payload = {"object": "whatsapp_business_account", "entry": [{"id": account.waba_id, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": account.display_phone_number,
                         "phone_number_id": account.phone_number_id},
            "statuses": [{"id": wamid, "status": state, "timestamp": str(int(time.time())),
                          "recipient_id": CUSTOMER, "biz_opaque_callback_data": opaque}]}}]}]}
    body = json.dumps(payload).encode()
    signature = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    return await env.client.post(f"/webhooks/whatsapp/{account.webhook_key}", content=body,
                                 headers={"X-Hub-Signature-256": f"sha256={signature}",
                                          "Content-Type": "application/json"})


def texts_sent(env: Any, account: Any) -> list[str]:
    return [r.body["text"]["body"] for r in env.state.sent
            if r.phone_number_id == account.phone_number_id and r.type == "text"]


def sent_a(env: Any, account: Any, text: str) -> Any:
    async def check() -> bool | None:
        return text in texts_sent(env, account) or None

    return check


async def test_each_send_names_its_message_for_meta_to_return(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    conversation = await env.conversation(account, CUSTOMER)
    answer = await env.send(conversation, "hello")
    assert answer.status_code == 202, answer.text
    await wait_for(sent_a(env, account, "hello"))
    sent = [r for r in env.state.sent if r.phone_number_id == account.phone_number_id]
    assert sent[0].body["biz_opaque_callback_data"] == f"wa-inbox:{answer.json()['id']}"


async def test_a_status_naming_a_send_whose_answer_was_lost_records_it_and_it_is_not_sent_again(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    conversation = await env.conversation(account, CUSTOMER)
    now = utcnow()
    # As a worker killed after Meta accepted the send, before recording its answer, leaves it: queued, no wamid.
    lost = Message(workspace_id=env.workspace_id, conversation_id=conversation.id, account_id=account.id,
                   contact_id=conversation.contact_id, direction="outbound", type="text", content={"body": "hello"},
                   status=MessageStatus.QUEUED, status_at={"queued": now}, recipient=f"+{CUSTOMER}", via="api",
                   timestamp=now, created_at=now, updated_at=now)
    await lost.insert()

    answer = await status_webhook(env, account, "wamid.LOST-ANSWER", f"wa-inbox:{lost.id}")
    assert answer.status_code == 200, answer.text
    stored = await Message.get(lost.id)
    assert stored.wamid == "wamid.LOST-ANSWER" and stored.status == MessageStatus.SENT
    assert stored.status_at.get("accepted") is not None and await PendingStatus.find_all().count() == 0
    delivered = await status_webhook(env, account, "wamid.LOST-ANSWER", f"wa-inbox:{lost.id}", "delivered")
    assert delivered.status_code == 200 and (await Message.get(lost.id)).status == MessageStatus.DELIVERED

    # The next worker takes the dead one's entry over (read from the database), then a later message in the
    # same conversation: only the later one goes to Meta.
    await env.runtime.outbox.queue.push(str(account.id), str(lost.id), str(conversation.id), "a")
    later = await env.send(conversation, "after")
    assert later.status_code == 202, later.text
    await wait_for(sent_a(env, account, "after"))
    assert texts_sent(env, account) == ["after"]


async def test_opaque_data_that_names_no_message_of_ours_waits_like_any_early_status(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    conversation = await env.conversation(account, CUSTOMER)
    sent = await env.send(conversation, "hello")
    await wait_for(sent_a(env, account, "hello"))
    accepted = await wait_for(lambda: _accepted(sent.json()["id"]))
    for i, opaque in enumerate((f"wa-inbox:{PydanticObjectId()}", "wa-inbox:not-an-id", "someone else's data",
                                f"wa-inbox:{accepted.id}")):  # the last: sent already, under its own wamid
        answer = await status_webhook(env, account, f"wamid.OTHER-{i}", opaque)
        assert answer.status_code == 200, answer.text
    assert (await Message.get(accepted.id)).wamid == accepted.wamid
    assert await PendingStatus.find_all().count() == 4  # kept, as a status that beats its send's answer is


async def _accepted(message_id: str) -> Message | None:
    message = await Message.get(message_id)
    return message if message is not None and message.wamid else None
