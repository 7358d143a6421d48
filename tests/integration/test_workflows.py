"""Workflows end to end: a customer's webhook, the real worker jobs, the one send path, Meta's sandbox.

Only Meta is simulated. Runs are advanced by the worker (in-process, as `inbox run` does); waits are
shortened by moving a run's wake-up time, never by a test switch in the product.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from app.db import as_utc, utcnow
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


BOOKING = {
    "name": "Booking", "enabled": True,
    "trigger": {"type": "message_received", "match": "keywords", "keywords": ["book"]},
    "steps": [
        {"id": "size", "type": "ask", "params": {"question": "For how many people?", "answer_type": "number",
                                                 "save_as": "party_size", "retries": 1, "timeout_minutes": 30}},
        {"id": "big", "type": "condition", "branches": [
            {"label": "large", "when": {"match": "all", "conditions": [{"field": "answer", "op": "gt", "value": 4}]},
             "steps": [{"id": "large", "type": "send_text", "params": {"text": "A table for {{answer}}: we'll call."}}]},
            {"label": "else", "steps": [{"id": "small", "type": "send_text", "params": {"text": "See you soon."}}]}]},
    ],
}
CATCH_ALL = {"name": "Catch-all", "enabled": True, "trigger": {"type": "message_received", "match": "any"},
             "conditions": {"match": "all", "conditions": [{"field": "message.text", "op": "is_not", "value": "book"}]},
             "steps": [{"id": "n", "type": "note", "params": {"text": "seen: {{message.text}}"}}]}


async def test_a_question_waits_for_the_answer_checks_it_saves_it_and_branches_on_it(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    await create(env, BOOKING)
    await create(env, CATCH_ALL)
    phone = str(next(_phones))
    await customer_writes(env, account, phone, "book")
    assert await texts(env, account, phone, 1) == ["For how many people?"]
    run = await waiting({"workflow_name": "Booking"})
    assert run.waiting.kind == "reply"

    await customer_writes(env, account, phone, "lots of us")
    asked_again = await texts(env, account, phone, 2)
    assert asked_again[1].startswith("Sorry, I didn't get that: please answer with a number")
    await customer_writes(env, account, phone, "6")
    assert (await texts(env, account, phone, 3))[2] == "A table for 6: we'll call."
    run = await ended({"workflow_name": "Booking"})
    assert run.status == "completed" and run.vars["answer"] == 6
    contact = await Contact.find_one({"wa_id": phone})
    assert contact.attributes["party_size"] == "6" or contact.attributes["party_size"] == 6
    log = [entry.text for entry in run.log]
    assert any("refused" in line for line in log) and any("saved as party_size" in line for line in log)
    # The answers went to the waiting run: the catch-all workflow never started for them.
    assert await WorkflowRun.find({"workflow_name": "Catch-all"}).count() == 0


async def test_an_unanswered_question_takes_its_timeout_branch(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    await create(env, {**BOOKING, "steps": [
        {"id": "q", "type": "ask", "params": {"question": "Which day?", "answer_type": "date", "timeout_minutes": 60},
         "branches": [{"label": "timeout", "steps": [
             {"id": "late", "type": "send_text", "params": {"text": "No rush: write when you know."}}]}]},
        {"id": "thanks", "type": "send_text", "params": {"text": "Booked for {{answer}}."}}]})
    phone = str(next(_phones))
    await customer_writes(env, account, phone, "I want to book")
    run = await waiting({})
    await wake_now(run)  # an hour later
    assert await texts(env, account, phone, 3) == ["Which day?", "No rush: write when you know.", "Booked for ."]
    assert (await ended({})).status == "completed"


async def test_a_follow_up_stops_when_the_customer_replies(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    await create(env, {"name": "Follow-up", "enabled": True, "trigger": {"type": "tag_added", "tag": "follow-up"},
                       "steps": [{"id": "one", "type": "send_text", "params": {"text": "Still interested?"}},
                                 {"id": "w", "type": "wait", "params": {"minutes": 1440, "end_on_reply": True}},
                                 {"id": "two", "type": "send_text", "params": {"text": "Last reminder!"}}]})
    phone = str(next(_phones))
    message = await customer_writes(env, account, phone, "hi")
    tagged = await env.client.patch(f"/api/v1/contacts/{message.contact_id}", headers=env.headers,
                                    json={"tags": ["follow-up"]})
    assert tagged.status_code == 200, tagged.text
    assert await texts(env, account, phone, 1) == ["Still interested?"]
    run = await waiting({})
    assert run.waiting.end_on_reply and run.trigger["type"] == "tag_added"
    await customer_writes(env, account, phone, "yes please")
    run = await ended({})
    assert run.status == "completed" and run.end_reason == "the customer replied"
    await wake_now(run)  # even once its wait would have ended, nothing more goes out
    assert await env.runtime.workflows.triggers.tick() is not None
    assert await texts_to(env, account, phone) == ["Still interested?"]


async def test_no_agent_reply_within_minutes_starts_a_run_and_an_agent_reply_cancels_it(outbound):  # noqa: F811
    from app.domains.workflows.models import WorkflowTimer

    env = await outbound()
    account = await env.add_number()
    await create(env, {"name": "Nudge", "enabled": True, "trigger": {"type": "no_agent_reply", "minutes": 15},
                       "steps": [{"id": "sorry", "type": "send_text",
                                  "params": {"text": "Sorry for the wait, we're on it."}},
                                 {"id": "p", "type": "set_priority", "params": {"priority": "urgent"}}]})
    waiting_customer, answered_customer = str(next(_phones)), str(next(_phones))
    first = await customer_writes(env, account, waiting_customer, "hello?")
    await customer_writes(env, account, waiting_customer, "anyone?")  # the clock runs from the first one
    timer = await wait_for(lambda: WorkflowTimer.find_one({"conversation_id": first.conversation_id}))
    assert abs((timer.due_at - first.timestamp).total_seconds() - 900) < 1
    answered = await customer_writes(env, account, answered_customer, "hi")
    await wait_for(lambda: WorkflowTimer.find_one({"conversation_id": answered.conversation_id}))
    conversation = await Conversation.get(answered.conversation_id)
    assert (await env.send(conversation, "Hi, how can I help?")).status_code in (200, 201, 202)
    await wait_for(lambda: _gone(WorkflowTimer, {"conversation_id": answered.conversation_id}))

    await WorkflowTimer.find({}).update({"$set": {"due_at": utcnow() - timedelta(seconds=1)}})  # 15 minutes on
    fired = await env.runtime.workflows.triggers.fire_timers()
    assert fired == 1
    assert await texts(env, account, waiting_customer, 1) == ["Sorry for the wait, we're on it."]
    assert (await wait_for(lambda: _priority(first.conversation_id))) == "urgent"
    assert await texts_to(env, account, answered_customer) == ["Hi, how can I help?"]  # no nudge


async def _gone(model: Any, query: dict[str, Any]) -> bool:
    return await model.find_one(query) is None


async def _priority(conversation_id: Any) -> str | None:
    return (await Conversation.get(conversation_id)).priority


async def test_guards_the_hourly_message_cap_a_jump_loop_and_the_closed_window_fail_visibly(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    await create(env, {"name": "Chatty", "enabled": True, "max_messages_per_hour": 2,
                       "trigger": {"type": "message_received", "match": "keywords", "keywords": ["chat"]},
                       "steps": [{"id": f"s{i}", "type": "send_text", "params": {"text": f"message {i}"}}
                                 for i in range(3)]})
    await create(env, {"name": "Loop", "enabled": True,
                       "trigger": {"type": "message_received", "match": "keywords", "keywords": ["loop"]},
                       "steps": [{"id": "tag", "type": "tags", "params": {"add": ["looping"], "remove": []}},
                                 {"id": "again", "type": "jump", "params": {"to": "tag"}}]})
    phone = str(next(_phones))
    await customer_writes(env, account, phone, "let's chat")
    run = await ended({"workflow_name": "Chatty"})
    assert run.status == "failed" and "already sent 2 messages" in run.end_reason
    assert await texts(env, account, phone, 2) == ["message 0", "message 1"]
    events = await Message.find({"direction": "internal", "type": "event"}).to_list()
    assert any("Workflow Chatty stopped: not sent" in e.content["text"] for e in events)

    await customer_writes(env, account, phone, "loop")
    looped = await ended({"workflow_name": "Loop"})
    assert looped.status == "failed" and "after 100 steps" in looped.end_reason and looped.visits == 100

    # Started by hand for a contact who never wrote: free-form text is refused, the run says why.
    made = await env.client.post("/api/v1/contacts", headers=env.headers, json={"phone": "+4915299999999"})
    assert made.status_code == 201, made.text
    hello = await create(env, {"name": "Hello", "enabled": True, "trigger": {"type": "manual"},
                               "steps": [{"id": "hi", "type": "send_text", "params": {"text": "Hello!"}}]})
    started = await env.client.post(f"/api/v1/workflows/{hello['id']}/runs", headers=env.headers,
                                    json={"contact_id": made.json()["id"]})
    assert started.status_code == 201, started.text
    refused = await ended({"workflow_name": "Hello"})
    assert refused.status == "failed" and "only a template can be sent" in refused.end_reason
    assert await texts_to(env, account, "4915299999999") == []


async def test_a_resolved_conversation_starts_a_workflow_that_starts_another(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    survey = await create(env, {"name": "Survey", "enabled": True, "trigger": {"type": "manual"},
                                "steps": [{"id": "ask", "type": "send_buttons", "params": {
                                    "text": "How did we do?", "buttons": ["Great", "Bad"]}}]})
    await create(env, {"name": "After resolve", "enabled": True, "trigger": {"type": "conversation_resolved"},
                       "steps": [{"id": "thanks", "type": "send_text", "params": {"text": "Thanks for writing."}},
                                 {"id": "more", "type": "start_workflow", "params": {"workflow_id": survey["id"]}}]})
    phone = str(next(_phones))
    message = await customer_writes(env, account, phone, "all sorted, thanks")
    resolved = await env.client.patch(f"/api/v1/conversations/{message.conversation_id}", headers=env.headers,
                                      json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    assert await texts(env, account, phone, 2) == ["Thanks for writing.", "How did we do?"]
    inner = await ended({"workflow_name": "Survey"})
    assert inner.depth == 1 and inner.trigger == {"type": "workflow", "by_workflow": "After resolve"}


async def test_appointment_reminders_fire_before_the_date_and_follow_a_moved_appointment(outbound):  # noqa: F811
    """The ready-made reminders, with a text instead of a template (the customer wrote today): 24 h before
    appointment_at the run starts; its "2 h before" wait follows the attribute when the appointment moves."""
    from app.domains.workflows.models import WorkflowTimer

    env = await outbound()
    account = await env.add_number()
    made = await env.client.post("/api/v1/attributes", headers=env.headers,
                                 json={"name": "Appointment at", "key": "appointment_at", "type": "datetime"})
    assert made.status_code == 201, made.text
    copied = await env.client.post("/api/v1/workflows/ready-made/appointment_reminders", headers=env.headers)
    assert copied.status_code == 201, copied.text
    definition = copied.json()
    for step in definition["steps"]:
        if step["type"] == "send_template":
            step["type"], step["params"] = "send_text", {"text": f"Reminder ({step['id']}): {{{{attributes.appointment_at}}}}"}
    definition["enabled"] = True
    saved = await env.client.put(f"/api/v1/workflows/{definition['id']}", headers=env.headers, json={
        k: definition[k] for k in ("name", "description", "enabled", "trigger", "conditions", "steps")})
    assert saved.status_code == 200, saved.text

    phone = str(next(_phones))
    message = await customer_writes(env, account, phone, "see you tomorrow")
    triggers = env.runtime.workflows.triggers
    appointment = utcnow() + timedelta(hours=24) + timedelta(minutes=1)
    patched = await env.client.patch(f"/api/v1/contacts/{message.contact_id}", headers=env.headers,
                                     json={"attributes": {"appointment_at": appointment.isoformat()}})
    assert patched.status_code == 200, patched.text
    assert await triggers.scan("date_reached") == 1  # turned on: its contacts with a date get their timer
    timer = await WorkflowTimer.find_one({})
    assert abs((timer.due_at - (appointment - timedelta(hours=24))).total_seconds()) < 1
    assert await triggers.fire_timers() == 0  # a minute early
    await WorkflowTimer.find({}).update({"$set": {"due_at": utcnow()}})  # a minute later
    assert await triggers.fire_timers() == 1
    await triggers.scan("date_reached")  # scans overlap: the contact is seen again
    await WorkflowTimer.find({}).update({"$set": {"due_at": utcnow()}})
    assert await triggers.fire_timers() == 0  # but one run per appointment
    assert (await texts(env, account, phone, 1))[0].startswith("Reminder (day)")
    run = await waiting({})
    assert abs((run.wake_at - (appointment - timedelta(hours=2))).total_seconds()) < 2

    # Moved to 90 minutes from now: the 2-hour reminder is due at once, the 30-minute one an hour later.
    moved = utcnow() + timedelta(minutes=90)
    patched = await env.client.patch(f"/api/v1/contacts/{message.contact_id}", headers=env.headers,
                                     json={"attributes": {"appointment_at": moved.isoformat()}})
    assert patched.status_code == 200
    sent = await texts(env, account, phone, 2)
    assert sent[1].startswith("Reminder (two-hours)")

    async def rescheduled() -> WorkflowRun | None:
        found = await WorkflowRun.find_one({"status": "waiting", "waiting.step_id": "wait-30m"})
        return found

    run = await wait_for(rescheduled)
    assert abs((run.wake_at - (moved - timedelta(minutes=30))).total_seconds()) < 2
    await wake_now(run)  # woken early, the wait is worked out again from the attribute: still an hour to go
    assert (await env.runtime.workflows.engine.advance(str(run.id))) == "waiting"
    again = await WorkflowRun.get(run.id)
    assert again.visits == run.visits and len(again.log) == len(run.log)  # the same wait: nothing logged twice
    moved = utcnow() + timedelta(minutes=20)  # moved again, closer: the last reminder is due at once
    patched = await env.client.patch(f"/api/v1/contacts/{message.contact_id}", headers=env.headers,
                                     json={"attributes": {"appointment_at": moved.isoformat()}})
    assert patched.status_code == 200
    assert (await texts(env, account, phone, 3))[2].startswith("Reminder (half-hour)")
    assert (await ended({})).status == "completed"


async def test_a_worker_killed_in_the_middle_of_a_step_resumes_it_without_doing_earlier_steps_again(
        outbound, monkeypatch):  # noqa: F811
    """A real worker (arq, its own loop and connections) dies while a run's HTTP step waits for an answer.
    Its lease lapses, the next worker's tick takes the run, does that step again with the same
    Idempotency-Key, and goes on: the message sent before the kill is not sent twice."""
    import asyncio

    from app.domains.workflows import engine
    from tests.integration.outbound_env import ThreadWorker
    from tests.support.servers import read_body, serve

    monkeypatch.setattr(engine, "LEASE", timedelta(seconds=3))
    seen: list[dict[str, str]] = []

    async def crm(scope, receive, send) -> None:  # hangs on its first call, answers the second
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await read_body(receive)
        seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        if len(seen) == 1:
            await asyncio.sleep(30)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"customer": {"tier": "gold"}}'})

    with serve(crm) as crm_url:
        env = await outbound(inline_worker=False, allow_private_webhook_targets=True)
        account = await env.add_number()
        await create(env, {"name": "CRM lookup", "enabled": True,
                           "trigger": {"type": "message_received", "match": "keywords", "keywords": ["order"]},
                           "steps": [{"id": "hi", "type": "send_text", "params": {"text": "Looking it up…"}},
                                     {"id": "crm", "type": "http", "params": {
                                         "url": f"{crm_url}/lookup", "save": {"tier": "customer.tier"}}},
                                     {"id": "done", "type": "send_text",
                                      "params": {"text": "You are a {{attributes.tier}} customer."}}]})
        settings, database = env.runtime.settings, env.runtime.db
        victim = ThreadWorker(settings, database).start()
        phone = str(next(_phones))
        await customer_writes(env, account, phone, "where is my order?")
        await wait_for(lambda: _async_true(len(seen) == 1), timeout=30)
        victim.kill()
        run = await WorkflowRun.find_one({})
        assert run.status == "running" and run.cursor == [1]  # killed inside the HTTP step
        survivor = ThreadWorker(settings, database).start()
        try:
            run = await ended({})
            # The number's sends wait for the dead worker's outbox lease to lapse (30 s) before going on.
            assert await wait_for(lambda: _async_true(len(seen) == 2), timeout=5)
            sent = await wait_for(lambda: _texts_at_least(env, account, phone, 2), timeout=90)
            assert sent == ["Looking it up…", "You are a gold customer."]
        finally:
            survivor.kill()
    assert run.status == "completed", run.end_reason
    assert len(seen) == 2 and seen[0]["idempotency-key"] == seen[1]["idempotency-key"]
    assert seen[1]["x-inbox-signature"].startswith("sha256=")
    assert len(await texts_to(env, account, phone)) == 2  # the first message was not sent again
    contact = await Contact.find_one({"wa_id": phone})
    assert contact.attributes["tier"] == "gold"


async def _texts_at_least(env: Any, account: Any, phone: str, n: int) -> list[str] | None:
    found = await texts_to(env, account, phone)
    return found if len(found) >= n else None


async def _async_true(value: bool) -> bool | None:
    return True if value else None


async def test_every_read_of_the_workflow_engine_is_served_by_a_declared_index(outbound):  # noqa: F811
    """Triggers, reply routing, timers, scans, the tick and runs: each read the product makes while workflows
    work is checked against the indexes the server lists (tests/support/index_rule.py)."""
    from app.domains.workflows.models import WorkflowTimer
    from tests.integration.test_inbox_indexes import check_all, seen_in
    from tests.support.command_capture import capture, phase

    env = await outbound()
    account = await env.add_number()
    await env.client.post("/api/v1/attributes", headers=env.headers,
                          json={"name": "Appointment at", "key": "appointment_at", "type": "datetime"})
    await create(env, BOOKING)
    await create(env, {"name": "Nudge", "enabled": True, "trigger": {"type": "no_agent_reply", "minutes": 5},
                       "steps": [{"id": "n", "type": "note", "params": {"text": "waiting"}}]})
    await create(env, {"name": "Remind", "enabled": True,
                       "trigger": {"type": "date_reached", "attribute": "appointment_at", "offset_minutes": -60},
                       "steps": [{"id": "t", "type": "tags", "params": {"add": ["reminded"], "remove": []}}]})
    triggers = env.runtime.workflows.triggers
    await triggers.tick()  # the date workflow's first scan
    phone = str(next(_phones))
    with capture(env.runtime.settings.mongodb_database) as seen:
        phase("trigger")
        message = await customer_writes(env, account, phone, "book")
        await waiting({"workflow_name": "Booking"})
        phase("answer")
        await customer_writes(env, account, phone, "2")
        await ended({"workflow_name": "Booking"})
        phase("date")
        await env.client.patch(f"/api/v1/contacts/{message.contact_id}", headers=env.headers,
                               json={"attributes": {"appointment_at": (utcnow() + timedelta(minutes=61)).isoformat()}})
        phase("tick")
        await triggers.tick()  # the scan sets the contact's timer
        await WorkflowTimer.find({}).update({"$set": {"due_at": utcnow()}})  # a minute later
        await triggers.tick()
        await ended({"workflow_name": "Remind"})
    # The test's own reads (by workflow name, every timer) are left out: they are not the product's.
    seen = [c for c in seen if "workflow_name" not in str(c.command)
            and not (c.name == "update" and c.command.get("updates", [{}])[0].get("q") == {})]
    checked = await check_all("workflows", seen)
    assert seen_in(checked, "answer", "workflow_runs", "findAndModify") or seen_in(checked, "answer", "workflow_runs")
    assert seen_in(checked, "tick", "workflow_timers", "findAndModify") or seen_in(checked, "tick", "workflow_timers")


async def test_a_no_reply_clock_in_business_hours_runs_only_while_open(outbound):  # noqa: F811
    """"No agent reply within 15 minutes" counted in business hours: a customer who writes on a closed day
    (today is a holiday) is due 15 minutes after tomorrow's opening, not 15 minutes from now."""
    from datetime import UTC

    from app.domains.workflows.models import WorkflowTimer

    env = await outbound()
    account = await env.add_number()
    today = utcnow().astimezone(UTC).date()
    every_day = {d: [{"start": "09:00", "end": "10:00"}] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    hours = await env.client.put("/api/v1/business-hours", headers=env.headers, json={
        "enabled": True, "time_zone": "UTC", "weekly": every_day, "holidays": [{"date": today.isoformat()}]})
    assert hours.status_code == 200, hours.text
    await create(env, {"name": "SLA", "enabled": True,
                       "trigger": {"type": "no_agent_reply", "minutes": 15, "business_hours": True},
                       "steps": [{"id": "p", "type": "set_priority", "params": {"priority": "urgent"}}]})
    message = await customer_writes(env, account, str(next(_phones)), "hello?")
    timer = await wait_for(lambda: WorkflowTimer.find_one({"conversation_id": message.conversation_id}))
    tomorrow = today + timedelta(days=1)
    assert as_utc(timer.due_at) == datetime(tomorrow.year, tomorrow.month, tomorrow.day, 9, 15, tzinfo=UTC)
