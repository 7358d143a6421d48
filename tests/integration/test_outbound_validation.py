"""Everything WhatsApp would refuse is refused before queueing, with an error_code; idempotency; retry."""

from __future__ import annotations

from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact
from app.domains.messages.models import Message, MessageError, MessageStatus
from app.domains.templates.models import MessageTemplate
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401

BODY = [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} is ready."}]


def template(name: str = "order_ready", params: list[str] | None = None) -> dict:
    values = ["Ana", "A-17"] if params is None else params
    return {"name": name, "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": v} for v in values]}]}


async def seed_template(env, account, name="order_ready", status="APPROVED", category="UTILITY"):
    await MessageTemplate(workspace_id=env.workspace_id, waba_id=account.waba_id, meta_id=f"m-{name}", name=name,
                          language="en_US", category=category, status=status, components=BODY).insert()
    answer = await env.control.post("/sandbox/control/templates", json={
        "waba_id": account.waba_id, "name": name, "language": "en_US", "category": category,
        "components": BODY, "status": status})
    assert answer.status_code == 201, answer.text


async def post(env, conversation, type_, content, **extra):
    return await env.client.post(f"/api/v1/conversations/{conversation.id}/messages", headers=env.headers,
                                 json={"type": type_, "content": content, **extra})


async def test_refusals_carry_error_codes_and_queue_nothing(outbound):
    env = await outbound()
    account = await env.add_number()
    open_ = await env.conversation(account, "15550002001")
    closed = await env.conversation(account, "15550002002", window=False)
    await seed_template(env, account)
    await seed_template(env, account, name="pending_one", status="PENDING")
    await seed_template(env, account, name="promo", category="MARKETING")
    cases = [
        (closed, "text", {"body": "hi"}, 422, "WINDOW_CLOSED"),
        (open_, "text", {"body": "x" * 4097}, 422, "INVALID_CONTENT"),
        (open_, "text", {}, 422, "INVALID_CONTENT"),
        (open_, "image", {"link": "https://example.com/a.png", "caption": "c" * 1025}, 422, "INVALID_CONTENT"),
        (open_, "interactive", {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": str(i), "title": f"B{i}"}} for i in range(4)]}}, 422, "INVALID_CONTENT"),
        (open_, "carrier_pigeon", {"body": "hi"}, 422, "INVALID_CONTENT"),
        (closed, "template", template("unknown"), 422, "TEMPLATE_NOT_APPROVED"),
        (closed, "template", template("pending_one"), 422, "TEMPLATE_NOT_APPROVED"),
        (closed, "template", template(params=["only one"]), 422, "TEMPLATE_PARAMS"),
        (open_, "image", {"id": "6b0226a619a102ef902a3a6e"}, 422, "MEDIA_NOT_FOUND"),
        (open_, "text", {"body": "hi"}, 422, "REPLY_TARGET_INVALID"),
    ]
    for conversation, type_, content, status, code in cases:
        extra = {"reply_to": "wamid.unknown"} if code == "REPLY_TARGET_INVALID" else {}
        answer = await post(env, conversation, type_, content, **extra)
        assert (answer.status_code, answer.json()["error_code"]) == (status, code), (type_, answer.text)
    # Opted-out customers refuse marketing templates, not utility ones.
    await Contact.find_one(Contact.wa_id == "15550002002").update({"$set": {"opted_out_marketing": True}})
    answer = await post(env, closed, "template", template("promo"))
    assert answer.json()["error_code"] == "CONTACT_OPTED_OUT"
    assert (await post(env, closed, "template", template())).status_code == 202
    assert await Message.find(Message.direction == "outbound").count() == 1
    # Bad bodies are 4xx, never 500.
    for bad in ([], {"type": "text"}, {"content": {"body": "x"}}, {"type": "text", "content": {"body": "x"}, "x": 1}):
        answer = await env.client.post(f"/api/v1/conversations/{open_.id}/messages", headers=env.headers, json=bad)
        assert 400 <= answer.status_code < 500, answer.text


async def test_disabled_or_token_invalid_number_refuses_with_a_reason(outbound):
    env = await outbound()
    account = await env.add_number()
    conversation = await env.conversation(account, "15550002101")
    assert (await env.send(conversation)).status_code == 202  # the number is known (and kept for a while)
    await env.runtime.accounts.set_enabled(account, False)  # an admin disables it: refused at once
    answer = await env.send(conversation)
    assert (answer.status_code, answer.json()["error_code"]) == (409, "ACCOUNT_DISABLED")
    await env.runtime.accounts.set_enabled(account, True)
    # WhatsApp refused the token (what the drainer records, and says to every process)
    await WhatsAppAccount.get_motor_collection().update_one({"_id": account.id},
                                                            {"$set": {"health.token_state": "invalid"}})
    await env.runtime.accounts.changed(account.id)
    answer = await env.send(conversation)
    assert (answer.status_code, answer.json()["error_code"]) == (409, "ACCOUNT_TOKEN_INVALID")
    assert "new one" in answer.json()["error"]


async def test_send_to_number_creates_contact_and_conversation_and_is_idempotent(outbound):
    env = await outbound()
    account = await env.add_number()
    await seed_template(env, account)
    headers = {**env.headers, "Idempotency-Key": "order-17-ready"}
    body = {"to": "+1 (555) 000-2201", "type": "template", "content": template()}
    first = await env.client.post("/api/v1/messages", headers=headers, json=body)
    second = await env.client.post("/api/v1/messages", headers=headers, json=body)
    assert first.status_code == second.status_code == 202, first.text
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["to"] == "+15550002201"
    await wait_for(lambda: env.sent(account))
    assert len(await env.sent(account)) == 1
    contact = await Contact.find_one(Contact.wa_id == "15550002201")
    assert contact is not None and first.json()["contact_id"] == str(contact.id)
    # Free-form to a new number: no window yet.
    answer = await env.client.post("/api/v1/messages", headers=env.headers,
                                   json={"to": "+15550002202", "type": "text", "content": {"body": "hi"}})
    assert answer.json()["error_code"] == "WINDOW_CLOSED"
    answer = await env.client.post("/api/v1/messages", headers=env.headers,
                                   json={"to": "not a number", "type": "text", "content": {"body": "hi"}})
    assert answer.json()["error_code"] == "RECIPIENT_INVALID"


async def test_permanent_error_fails_at_once_and_retry_really_sends_again(outbound):
    env = await outbound()
    account = await env.add_number()
    conversation = await env.conversation(account, "15550002301")
    await env.faults(error_rate=1.0, http_status=400, error_code=131026)
    answer = await env.send(conversation, "will fail")
    message_id = answer.json()["id"]

    async def failed():
        got = (await env.client.get(f"/api/v1/messages/{message_id}", headers=env.headers)).json()
        return got if got["status"] == "failed" else None

    got = await wait_for(failed)
    assert got["error"]["code"] == 131026 and got["attempts"] == 1
    assert "WhatsApp" in got["error"]["agent_message"] or "customer" in got["error"]["agent_message"]
    assert await env.sent(account) == []
    await env.clear_faults()
    retried = await env.client.post(f"/api/v1/messages/{message_id}/retry", headers=env.headers)
    assert retried.status_code == 202 and retried.json()["status"] == "queued"

    async def accepted():
        got = (await env.client.get(f"/api/v1/messages/{message_id}", headers=env.headers)).json()
        return got if got["status"] == "accepted" else None

    final = await wait_for(accepted)
    assert [s["wamid"] for s in await env.sent(account)] == [final["wamid"]]
    again = await env.client.post(f"/api/v1/messages/{message_id}/retry", headers=env.headers)
    assert again.json()["error_code"] == "NOT_FAILED"


async def test_a_failed_message_stored_without_a_recipient_is_retried_to_the_contacts_number(outbound):
    """The demo's pre-failed message (and any stored before messages kept their recipient) could not be
    retried: WhatsApp answered "(#100) Param to must be a string". It goes to the contact's number."""
    env = await outbound()
    account = await env.add_number()
    conversation = await env.conversation(account, "15550003301")
    failed = await Message(workspace_id=env.workspace_id, conversation_id=conversation.id, account_id=account.id,
                           contact_id=conversation.contact_id, direction="outbound", type="text",
                           content={"body": "We refunded the second charge."}, status=MessageStatus.FAILED,
                           error=MessageError(code=131026, title="Message undeliverable")).insert()
    answer = await env.client.post(f"/api/v1/messages/{failed.id}/retry", headers=env.headers)
    assert answer.status_code == 202, answer.text
    await wait_for(lambda: env.sent(account))
    [sent] = await env.sent(account)
    assert sent["body"]["to"] == "+15550003301" and sent["body"]["text"] == {"body": "We refunded the second charge."}
    assert (await Message.get(failed.id)).status != MessageStatus.FAILED


async def test_a_sent_template_shows_the_text_the_customer_read(outbound):
    """The thread, the list, the API and quotes show the template with its parameters filled in, not
    only its name (issue 14, item 17)."""
    env = await outbound()
    account = await env.add_number()
    await seed_template(env, account)
    conversation = await env.conversation(account, "15550002301", window=False)
    answer = await post(env, conversation, "template", template())
    assert answer.status_code == 202, answer.text
    assert answer.json()["rendered"]["body"] == "Hi Ana, your order A-17 is ready."
    listed = await env.client.get(f"/api/v1/conversations/{conversation.id}", headers=env.headers)
    assert "Hi Ana, your order A-17 is ready." in listed.text  # the list's last-message line
    sent = await Message.get(answer.json()["id"])
    from app.domains.inbox.views import MessageView

    quoting = Message(workspace_id=env.workspace_id, conversation_id=conversation.id, account_id=account.id,
                      contact_id=conversation.contact_id, direction="inbound", type="text", content={"body": "ok"},
                      status=MessageStatus.RECEIVED, reply_to_id=sent.id)
    assert MessageView(quoting, quoted=sent).quote == "Hi Ana, your order A-17 is ready."
    interactive = Message(workspace_id=env.workspace_id, conversation_id=conversation.id, account_id=account.id,
                          contact_id=conversation.contact_id, direction="outbound", type="interactive",
                          content={"type": "button", "body": {"text": "Pick a size"}, "action": {"buttons": []}},
                          status=MessageStatus.READ)
    assert MessageView(quoting, quoted=interactive).quote == "Pick a size"
