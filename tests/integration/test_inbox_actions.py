"""Composer and side-panel actions of the inbox, through HTTP, on the demo workspace."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

from app.demo import DEMO_AGENT
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation, ConversationStatus
from app.domains.messages.models import Message, MessageStatus
from tests.integration.test_inbox_page import demo_client


async def setup(client_factory, who: str = DEMO_AGENT):
    client = await demo_client(client_factory, who)
    page = await client.get("/inbox")
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page.text).group(1)
    return client, {"X-CSRFToken": token, "HX-Request": "true"}


async def conversation_of(name: str) -> Conversation:
    contact = await Contact.find_one(Contact.profile_name == name)
    return await Conversation.find_one(Conversation.contact_id == contact.id)


async def test_send_text_buttons_note_and_reply(client_factory):
    client, headers = await setup(client_factory)
    maria = await conversation_of("Maria Silva")
    sent = await client.post(f"/inbox/c/{maria.id}/messages", data={"mode": "text", "body": "Hi <b>Maria</b>"}, headers=headers)
    assert sent.status_code == 200
    assert 'hx-swap-oob="beforeend:#thread-items"' in sent.text and 'data-status="queued"' in sent.text
    assert "Hi &lt;b&gt;Maria&lt;/b&gt;" in sent.text
    empty = await client.post(f"/inbox/c/{maria.id}/messages", data={"mode": "text", "body": "  "}, headers=headers)
    assert empty.status_code == 422 and "EMPTY_MESSAGE" in empty.text
    buttons = await client.post(f"/inbox/c/{maria.id}/messages", headers=headers,
                                data={"mode": "buttons", "body": "Delivery or pick-up?", "button": ["Delivery", "Pick-up"]})
    assert buttons.status_code == 200
    interactive = await Message.find_one(Message.type == "interactive", Message.direction == "outbound",
                                         Message.conversation_id == maria.id, sort=[("_id", -1)])
    assert [b["reply"]["title"] for b in interactive.content["action"]["buttons"]] == ["Delivery", "Pick-up"]
    too_many = await client.post(f"/inbox/c/{maria.id}/messages", headers=headers,
                                 data={"mode": "buttons", "body": "Pick", "button": ["a", "b", "c", "d"]})
    assert too_many.status_code == 422
    note = await client.post(f"/inbox/c/{maria.id}/messages", data={"mode": "note", "body": "<script>x</script> VIP"},
                             headers=headers)
    assert note.status_code == 200 and "Internal note" in note.text and "<script>x" not in note.text
    inbound = await Message.find_one(Message.conversation_id == maria.id, Message.direction == "inbound",
                                     Message.wamid != None)  # noqa: E711
    reply = await client.post(f"/inbox/c/{maria.id}/messages", headers=headers,
                              data={"mode": "text", "body": "Quoting you", "reply_to": str(inbound.id)})
    assert reply.status_code == 200 and 'class="quote"' in reply.text
    omar = await conversation_of("Omar Haddad")
    other = await Message.find_one(Message.conversation_id == omar.id, Message.direction == "inbound")
    wrong = await client.post(f"/inbox/c/{maria.id}/messages", headers=headers,
                              data={"mode": "text", "body": "x", "reply_to": str(other.id)})
    assert wrong.status_code == 422


async def test_a_send_posted_by_the_browser_itself_is_sent_and_comes_back_to_the_thread(client_factory):
    """Enter before htmx has bound the composer (the page still loading): the browser posts the form itself."""
    client, _ = await setup(client_factory)
    maria = await conversation_of("Maria Silva")
    thread = await client.get(f"/inbox/c/{maria.id}")
    form = re.search(r'<form id="composer"[^>]*>', thread.text).group(0)
    assert 'method="post"' in form and f'action="/inbox/c/{maria.id}/messages"' in form
    token = re.search(r'name="_csrf_token" value="([^"]+)"', thread.text[thread.text.index('id="composer"'):]).group(1)
    sent = await client.post(f"/inbox/c/{maria.id}/messages", follow_redirects=False,
                             data={"_csrf_token": token, "mode": "text", "body": "Sent before htmx woke up"})
    assert sent.status_code == 303 and sent.headers["location"] == f"/inbox/c/{maria.id}"
    assert await Message.find_one(Message.conversation_id == maria.id, Message.content["body"] == "Sent before htmx woke up")
    again = await client.get(sent.headers["location"])
    assert "Sent before htmx woke up" in again.text


async def test_closed_window_refuses_free_text_and_sends_a_template(client_factory):
    client, headers = await setup(client_factory)
    peter = await conversation_of("Peter Smith")
    refused = await client.post(f"/inbox/c/{peter.id}/messages", data={"mode": "text", "body": "Hi"}, headers=headers)
    assert refused.status_code == 422 and "WINDOW_CLOSED" in refused.text
    picker = await client.get(f"/inbox/c/{peter.id}/templates", headers=headers)
    assert "order_update" in picker.text and "hello_world" in picker.text
    form = await client.get(f"/inbox/c/{peter.id}/templates/order_update:en_US", headers=headers)
    assert form.text.count("data-param=") == 3 and "tp-body" in form.text
    missing = await client.post(f"/inbox/c/{peter.id}/templates", headers=headers,
                                data={"template": "order_update:en_US", "body-1": "Peter"})
    assert missing.status_code == 422 and "TEMPLATE_PARAMS" in missing.text
    sent = await client.post(f"/inbox/c/{peter.id}/templates", headers=headers, data={
        "template": "order_update:en_US", "body-1": "Peter", "body-2": "#4410", "body-3": "Friday"})
    assert sent.status_code == 200, sent.text
    template = await Message.find_one(Message.conversation_id == peter.id, Message.type == "template")
    assert template.content["name"] == "order_update"
    assert [p["text"] for p in template.content["components"][0]["parameters"]] == ["Peter", "#4410", "Friday"]


async def test_retry_react_attach_and_older_pages(client_factory):
    client, headers = await setup(client_factory)
    lucia = await conversation_of("Lucía Hernández")
    failed = await Message.find_one(Message.conversation_id == lucia.id, Message.status == MessageStatus.FAILED)
    page = await client.get(f"/inbox/c/{lucia.id}", headers=headers)
    assert "Retry" in page.text and "could not deliver" in page.text
    retried = await client.post(f"/inbox/m/{failed.id}/retry", headers=headers)
    assert retried.status_code == 200
    assert (await Message.get(failed.id)).status is not MessageStatus.FAILED
    again = await client.post(f"/inbox/m/{failed.id}/retry", headers=headers)
    assert again.status_code == 409
    target = await Message.find_one(Message.conversation_id == lucia.id, Message.direction == "inbound")
    reacted = await client.post(f"/inbox/m/{target.id}/react", data={"emoji": "👍"}, headers=headers)
    assert reacted.status_code == 200 and 'class="chip"' in reacted.text
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    upload = await client.post(f"/inbox/c/{lucia.id}/attachments", headers=headers, data={"caption": "the receipt"},
                               files={"file": ("receipt.png", buffer.getvalue(), "image/png")})
    assert upload.status_code == 200, upload.text
    image = await Message.find_one(Message.conversation_id == lucia.id, Message.type == "image")
    assert image.content["caption"] == "the receipt"
    maria = await conversation_of("Maria Silva")
    thread = await client.get(f"/inbox/c/{maria.id}", headers=headers)
    assert "Start of the conversation" in thread.text  # the demo thread fits one page
    bad = await client.get(f"/inbox/c/{maria.id}/older?before=nope", headers=headers)
    assert bad.status_code == 400  # the one cursor error (app/pagination.py): INVALID_CURSOR


async def test_side_panel_assign_status_snooze_labels_and_contact(client_factory, settings):
    client, headers = await setup(client_factory)
    maria = await conversation_of("Maria Silva")
    from app.domains.workspaces.models import User

    agent = await User.find_one(User.email == DEMO_AGENT)
    base = f"/inbox/c/{maria.id}"
    panel = await client.post(base + "/assign", data={"assignee_id": str(agent.id)}, headers=headers)
    assert panel.status_code == 200 and 'id="side-panel"' in panel.text and "Assigned to" in panel.text
    assert (await Conversation.get(maria.id)).assignee_id == agent.id
    event = await Message.find_one(Message.conversation_id == maria.id, Message.type == "event", sort=[("_id", -1)])
    assert "took the conversation" in event.content["text"]
    await client.post(base + "/status", data={"status": "pending"}, headers=headers)
    assert (await Conversation.get(maria.id)).status is ConversationStatus.PENDING
    bad = await client.post(base + "/status", data={"status": "nonsense"}, headers=headers)
    assert "form-error" in bad.text
    until = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    await client.post(base + "/snooze", data={"until": until, "tz_offset": "0"}, headers=headers)
    snoozed = await Conversation.get(maria.id)
    assert snoozed.status is ConversationStatus.SNOOZED and snoozed.snoozed_until is not None
    past = await client.post(base + "/snooze", data={"until": "2020-01-01T10:00", "tz_offset": "0"}, headers=headers)
    assert "Pick a time in the future" in past.text
    from app.domains.catalog.models import Label

    vip = await Label.find_one(Label.name == "billing")
    await client.post(base + "/labels", data={"labels": [str(vip.id)]}, headers=headers)
    assert (await Conversation.get(maria.id)).labels == [str(vip.id)]
    unknown = await client.post(base + "/labels", data={"labels": ["not-a-label"]}, headers=headers)
    assert "Pick labels from the list" in unknown.text
    await client.post(base + "/contact", data={"name": "Maria <Silva>"}, headers=headers)
    # The demo's "plan" is a list of basic / pro (typed attributes, issue 16): a value outside it is refused.
    gold = await client.post(base + "/contact/attributes", data={"key": "plan", "value": "gold"}, headers=headers)
    assert "Plan must be one of" in gold.text, gold.text
    await client.post(base + "/contact/attributes", data={"key": "plan", "value": "Basic"}, headers=headers)
    await client.post(base + "/contact/attributes", data={"key": "nickname", "value": "Mar"}, headers=headers)
    await client.post(base + "/contact/tags", data={"tags": "vip, lisbon"}, headers=headers)
    out = await client.post(base + "/contact/opt-out", data={"opted_out": "1"}, headers=headers)
    contact = await Contact.get(maria.contact_id)
    assert contact.name == "Maria <Silva>"
    assert contact.attributes["plan"] == "basic" and contact.attributes["nickname"] == "Mar"
    assert contact.tags == ["vip", "lisbon"] and contact.opted_out_marketing
    assert "Maria &lt;Silva&gt;" in out.text and "opted out" in out.text
    # A refused change says why under its own field and keeps what was typed (issue 14, item 18).
    typed = "vip, lisbon, <bad tag>"
    refused = await client.post(base + "/contact/tags", data={"tags": typed}, headers=headers)
    tags_form = re.search(r'<form[^>]*contact/tags.*?</form>', refused.text, re.S).group(0)
    assert 'class="field-error"' in tags_form and "Tags are up to 40 letters" in tags_form
    assert 'value="vip, lisbon, &lt;bad tag&gt;"' in tags_form
    assert 'class="form-error"' not in refused.text  # not at the far end of the panel
    assert (await Contact.get(maria.contact_id)).tags == ["vip", "lisbon"]  # nothing stored
    from redis.asyncio import Redis

    from app.domains.conversations.actions import ConversationActions
    from app.realtime import LiveEvents

    await Conversation.find_one(Conversation.id == maria.id).update(
        {"$set": {"status": "snoozed", "snoozed_until": datetime.now(UTC) - timedelta(minutes=1)}})
    redis = Redis.from_url(settings.redis_url)  # this test's own loop: not the app's connection pool
    assert await ConversationActions(LiveEvents(redis)).wake_snoozed() >= 1
    await redis.aclose()
    assert (await Conversation.get(maria.id)).status is ConversationStatus.OPEN


async def test_page_is_csp_clean_and_simulator_is_demo_only(client_factory):
    client, headers = await setup(client_factory)
    page = await client.get("/inbox")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)  # no inline script
    assert not re.search(r"\son[a-z]+=", page.text)  # no inline event handlers
    assert "style=" not in page.text
    plain = await client_factory(inline_worker=True)
    answer = await plain.post("/inbox/simulate", data={"kind": "text"})
    assert answer.status_code in (401, 403, 404) or "login" in answer.headers.get("location", "")


async def test_attachments_up_to_what_whatsapp_takes_and_its_limits_in_words(client_factory):
    """Issue 14, item 14: an 11 MB PDF was refused with a raw "Request Entity Too Large" (Litestar's
    10 MB default). The page carries WhatsApp's limits for inbox.js to say before uploading (the
    browser test picks a file over them)."""
    client, headers = await setup(client_factory)
    lucia = await conversation_of("Lucía Hernández")
    pdf = b"%PDF-1.4\n" + b"0" * (11 * 1024 * 1024) + b"\n%%EOF\n"
    upload = await client.post(f"/inbox/c/{lucia.id}/attachments", headers=headers,
                               files={"file": ("catalogue.pdf", pdf, "application/pdf")})
    assert upload.status_code == 200, upload.text[:300]
    document = await Message.find_one(Message.conversation_id == lucia.id, Message.type == "document")
    assert document is not None and document.content["filename"] == "catalogue.pdf"
    page = await client.get(f"/inbox/c/{lucia.id}", headers=headers)
    assert 'data-max-video="16"' in page.text and 'data-max-other="100"' in page.text  # what inbox.js checks first
