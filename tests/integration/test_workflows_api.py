"""The workflows JSON API as an integrator meets it: definitions saved and refused, ready-made copies, the
dry run, runs started and stopped (by admins and agents), the incoming-webhook trigger and the HTTP step.

Everything of ours is real (the app, its worker in-process, MongoDB and Redis); only Meta is simulated.
Waits are never waited out: a run parked on a 60-minute wait is what "in progress" means here.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import pytest
from pydantic import SecretStr

from app.domains.accounts.services import NewAccount
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.subscriptions.signing import verify
from app.domains.workflows.models import Workflow, WorkflowRun
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401 (fixtures)
from tests.support.servers import read_body, serve

_phones = itertools.count(4917600000001)

WAIT_AN_HOUR = {"name": "Wait an hour", "enabled": True, "trigger": {"type": "manual"},
                "steps": [{"id": "pause", "type": "wait", "params": {"minutes": 60}},
                          {"id": "after", "type": "set_attribute", "params": {"key": "waited", "value": "yes"}}]}


def phone() -> str:
    return str(next(_phones))


async def create(env: Any, definition: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    answer = await env.client.post("/api/v1/workflows", headers=headers or env.headers, json=definition)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def start(env: Any, workflow_id: str, headers: dict[str, str] | None = None, **body: Any):
    return await env.client.post(f"/api/v1/workflows/{workflow_id}/runs", headers=headers or env.headers, json=body)


async def run_in(run_id: str, *statuses: str) -> WorkflowRun:
    """The run once its status is one of ``statuses`` (the worker advances it)."""
    async def there() -> WorkflowRun | None:
        run = await WorkflowRun.get(run_id)
        return run if run is not None and run.status in statuses else None

    return await wait_for(there)


async def contact(env: Any, name: str = "Dana") -> Contact:
    from app.domains.contacts.services import ContactService

    found, _ = await ContactService().upsert(env.workspace_id, wa_id=phone(), profile_name=name)
    return found


def refused(answer: Any, status: int = 422, code: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert set(error) == {"success", "error", "error_code", "details"} and error["error"], error
    if code is not None:
        assert error["error_code"] == code, error
    return error


# -- saving, reading, replacing, deleting ----------------------------------------------------------------------
async def test_create_list_get_replace_delete(outbound):  # noqa: F811
    env = await outbound()
    client, headers = env.client, env.headers
    definition = {"name": "Greeter", "description": "Says hello", "trigger": {"type": "message_received",
                                                                               "match": "keywords",
                                                                               "keywords": ["hello", "hi"]},
                  "steps": [{"id": "hello", "type": "send_text", "params": {"text": "Hello {{contact.name}}"}},
                            {"type": "tags", "params": {"add": ["greeted"]}}]}
    created = await create(env, definition)
    assert created["name"] == "Greeter" and created["description"] == "Says hello"
    assert created["enabled"] is False and created["version"] == 1 and created["webhook_url"] is None
    assert {k: created["trigger"][k] for k in ("type", "match", "keywords")} == {
        "type": "message_received", "match": "keywords", "keywords": ["hello", "hi"]}  # with the defaults
    assert created["conditions"] == {"match": "all", "conditions": []}
    first, second = created["steps"]
    assert first == {"id": "hello", "type": "send_text", "params": {"text": "Hello {{contact.name}}"}, "branches": []}
    assert second["type"] == "tags" and len(second["id"]) == 8 and second["id"] != "hello"  # given one
    assert created["max_messages_per_hour"] == 5 and created["max_runs_per_hour"] == 10

    other = await create(env, {"name": "Another", "trigger": {"type": "manual"}, "steps": []})
    listed = await client.get("/api/v1/workflows", headers=headers)
    assert listed.status_code == 200
    assert [w["name"] for w in listed.json()["data"]] == ["Another", "Greeter"]  # by name
    shown = await client.get(f"/api/v1/workflows/{created['id']}", headers=headers)
    assert shown.status_code == 200 and shown.json() == created

    replaced = await client.put(f"/api/v1/workflows/{created['id']}", headers=headers, json={
        **definition, "name": "Greeter v2", "steps": [*created["steps"], {"id": "bye", "type": "stop"}]})
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["version"] == 2 and body["name"] == "Greeter v2" and body["id"] == created["id"]
    assert [s["id"] for s in body["steps"]] == ["hello", second["id"], "bye"]  # the generated id is kept
    assert body["updated_at"] >= created["updated_at"]
    assert (await client.get(f"/api/v1/workflows/{created['id']}", headers=headers)).json()["version"] == 2

    gone = await client.delete(f"/api/v1/workflows/{created['id']}", headers=headers)
    assert gone.status_code == 204 and gone.content == b""
    refused(await client.get(f"/api/v1/workflows/{created['id']}", headers=headers), 404, "NOT_FOUND")
    refused(await client.delete(f"/api/v1/workflows/{created['id']}", headers=headers), 404, "NOT_FOUND")
    refused(await client.put(f"/api/v1/workflows/{created['id']}", headers=headers, json=definition), 404)
    refused(await client.get("/api/v1/workflows/not-an-id", headers=headers), 404, "NOT_FOUND")
    assert [w["id"] for w in (await client.get("/api/v1/workflows", headers=headers)).json()["data"]] == [other["id"]]


async def test_turning_off_or_deleting_stops_runs_in_progress(outbound):  # noqa: F811
    env = await outbound()
    client, headers = env.client, env.headers
    workflow = await create(env, WAIT_AN_HOUR)
    someone = await contact(env)
    started = await start(env, workflow["id"], contact_id=str(someone.id))
    assert started.status_code == 201, started.text
    run = await run_in(started.json()["id"], "waiting")
    assert run.waiting.step_id == "pause"

    off = await client.post(f"/api/v1/workflows/{workflow['id']}/enabled", headers=headers, json={"enabled": False})
    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False and off.json()["version"] == 2
    stopped = await WorkflowRun.get(run.id)
    assert stopped.status == "stopped" and stopped.end_reason == "the workflow was turned off"
    shown = (await client.get(f"/api/v1/workflow-runs/{run.id}", headers=headers)).json()
    assert shown["status"] == "stopped" and shown["end_reason"] == "the workflow was turned off"
    assert shown["wake_at"] is None and shown["ended_at"]
    assert shown["log"][-1]["text"] == "the workflow was turned off"

    on = await client.post(f"/api/v1/workflows/{workflow['id']}/enabled", headers=headers, json={"enabled": True})
    assert on.status_code == 200 and on.json()["enabled"] is True
    again = await start(env, workflow["id"], contact_id=str(someone.id))  # the stopped run no longer holds the contact
    assert again.status_code == 201, again.text
    await run_in(again.json()["id"], "waiting")
    refused(await client.post(f"/api/v1/workflows/{workflow['id']}/enabled", headers=headers, json={}))
    refused(await client.post(f"/api/v1/workflows/{workflow['id']}/enabled", headers=headers,
                              json={"enabled": "maybe"}))
    assert (await client.delete(f"/api/v1/workflows/{workflow['id']}", headers=headers)).status_code == 204
    deleted = await WorkflowRun.get(again.json()["id"])
    assert deleted.status == "stopped" and deleted.end_reason == "the workflow was deleted"


def _nested(levels: int) -> list[dict[str, Any]]:
    """A condition whose else-branch holds a condition ... ``levels`` deep, a note at the bottom."""
    steps: list[dict[str, Any]] = [{"id": f"leaf{levels}", "type": "note", "params": {"text": "deep"}}]
    for level in range(levels):
        steps = [{"id": f"c{level}", "type": "condition", "branches": [{"label": "else", "steps": steps}]}]
    return steps


async def test_every_mistake_is_refused_with_its_place_and_nothing_is_stored(outbound):  # noqa: F811
    env = await outbound()
    client, headers = env.client, env.headers
    await env.add_number()
    people = env.runtime.people
    elsewhere, _ = await people.create_workspace("Elsewhere", "owner@elsewhere.example", "owner password")
    their_number = await env.runtime.accounts.create(elsewhere.id, NewAccount(
        name="Theirs", phone_number_id="777000111", waba_id="777000222", display_phone_number="+15550007777",
        access_token="EAAG-theirs", app_secret="their secret"))
    good = {"name": "Fine", "trigger": {"type": "manual"},
            "steps": [{"id": "hello", "type": "send_text", "params": {"text": "Hello"}}]}
    keywords = {"type": "message_received", "match": "keywords"}
    cases: list[tuple[str, Any, str]] = [
        ("unknown step type", {**good, "steps": [{"id": "x", "type": "dance"}]}, "steps.0.type"),
        ("send_text without text", {**good, "steps": [{"type": "send_text", "params": {}}]}, "steps.0.params.text"),
        ("blank text", {**good, "steps": [{"type": "send_text", "params": {"text": "  "}}]}, "steps.0.params.text"),
        ("jump to a missing step", {**good, "steps": [{"id": "a", "type": "jump", "params": {"to": "nowhere"}}]},
         "steps.0.params.to"),
        ("unknown condition field", {**good, "conditions": {"conditions": [{"field": "shoe_size", "op": "is"}]}},
         "conditions.conditions.0.field"),
        ("unknown field in a branch", {**good, "steps": [{"id": "c", "type": "condition", "branches": [
            {"when": {"conditions": [{"field": "vars.Bad Name", "op": "is_set"}]}, "steps": []}]}]},
         "steps.0.branches.0.when.conditions.0.field"),
        ("keywords without keywords", {**good, "trigger": keywords}, "trigger.keywords"),
        ("blank keywords", {**good, "trigger": {**keywords, "keywords": [" "]}}, "trigger.keywords"),
        ("invalid regex", {**good, "trigger": {"type": "message_received", "match": "regex", "pattern": "(("}},
         "trigger.pattern"),
        ("two steps with one id", {**good, "steps": [{"id": "a", "type": "stop"}, {"id": "a", "type": "stop"}]},
         "steps.1.id"),
        ("nesting too deep", {**good, "steps": _nested(7)}, ".".join(["steps.0"] + ["branches.0.steps.0"] * 6)),
        ("another workspace's number", {**good, "account_id": str(their_number.id)}, "account_id"),
        ("another workspace's number in the trigger",
         {**good, "trigger": {"type": "message_received", "account_id": str(their_number.id)}}, "trigger.account_id"),
        ("not an id", {**good, "account_id": "nope"}, "account_id"),
        ("extra unknown key", {**good, "colour": "red"}, "colour"),
        ("extra key in a step", {**good, "steps": [{"type": "stop", "when": "now"}]}, "steps.0.when"),
        ("wrong JSON type", {**good, "max_runs_per_hour": "many"}, "max_runs_per_hour"),
        ("steps not a list", {**good, "steps": "send hello"}, "steps"),
        ("params not an object", {**good, "steps": [{"type": "note", "params": ["hi"]}]}, "steps.0.params"),
        ("enabled not a boolean", {**good, "enabled": "maybe"}, "enabled"),
        ("no trigger", {"name": "Nothing"}, "trigger"),
        ("unknown trigger", {**good, "trigger": {"type": "moon_phase"}}, "trigger.type"),
        ("tag trigger without a tag", {**good, "trigger": {"type": "tag_added"}}, "trigger.tag"),
        ("empty name", {**good, "name": ""}, "name"),
        ("wait two ways", {**good, "steps": [{"type": "wait", "params": {"minutes": 5, "until_time": "09:00"}}]},
         "steps.0.params"),
        ("ask without a question", {**good, "steps": [{"type": "ask", "params": {"answer_type": "number"}}]},
         "steps.0.params.question"),
        ("branches on a send", {**good, "steps": [{"type": "send_text", "params": {"text": "x"},
                                                   "branches": [{"steps": []}]}]}, "steps.0.branches"),
        ("a bad http url", {**good, "steps": [{"type": "http", "params": {"url": "ftp://x"}}]}, "steps.0.params.url"),
        ("a JSON array", [good], "definition"),
        ("a string", "workflow", "definition"),
    ]
    for label, body, place in cases:
        answer = await client.post("/api/v1/workflows", headers=headers, json=body)
        error = refused(answer, 422, "WORKFLOW_INVALID")
        assert place in error["details"], (label, error)
        assert error["details"][place] and error["error"].startswith("The workflow"), (label, error)
    # Several mistakes at once: each named.
    answer = await client.post("/api/v1/workflows", headers=headers, json={**good, "trigger": keywords, "steps": [
        {"id": "a", "type": "send_text", "params": {}}, {"id": "b", "type": "jump", "params": {"to": "zz"}}]})
    assert {"trigger.keywords", "steps.0.params.text", "steps.1.params.to"} <= set(refused(answer)["details"])
    # Not JSON at all, and not a body of JSON: 4xx with a code too.
    for raw, content_type in ((b"{nope", "application/json"), (b"", "application/json")):
        answer = await client.post("/api/v1/workflows", content=raw, headers={**headers, "content-type": content_type})
        assert 400 <= answer.status_code < 500 and answer.json()["error_code"], answer.text
    assert await Workflow.find_all().count() == 0
    assert (await client.get("/api/v1/workflows", headers=headers)).json()["data"] == []

    # A replace is checked the same way, and a refused one leaves the workflow as it was.
    saved = await create(env, good)
    for label, body, place in cases[:12]:
        error = refused(await client.put(f"/api/v1/workflows/{saved['id']}", headers=headers, json=body))
        assert error["error_code"] == "WORKFLOW_INVALID" and place in error["details"], (label, error)
    assert (await client.get(f"/api/v1/workflows/{saved['id']}", headers=headers)).json() == saved
    assert await Workflow.find_all().count() == 1

    # The deepest nesting allowed (steps at six levels) is fine.
    assert (await client.post("/api/v1/workflows", headers=headers, json={**good, "name": "Deep",
                                                                           "steps": _nested(5)})).status_code == 201


# -- ready-made workflows ----------------------------------------------------------------------------------------
async def test_ready_made_workflows_are_listed_and_copied_turned_off(outbound):  # noqa: F811
    env = await outbound()
    client, headers = env.client, env.headers
    listed = await client.get("/api/v1/workflows/ready-made", headers=headers)
    assert listed.status_code == 200
    items = listed.json()["data"]
    assert [i["key"] for i in items] == ["keyword_replies", "appointment_reminders", "follow_up"]
    assert all(i["name"] and i["description"] for i in items)
    for item in items:
        copy = await client.post(f"/api/v1/workflows/ready-made/{item['key']}", headers=headers)
        assert copy.status_code == 201, copy.text
        body = copy.json()
        assert body["name"] == item["name"] and body["enabled"] is False and body["steps"]
    second = await client.post("/api/v1/workflows/ready-made/keyword_replies", headers=headers)
    assert second.status_code == 201 and second.json()["name"] == "Keyword replies with escalation (2)"
    third = await client.post("/api/v1/workflows/ready-made/keyword_replies", headers=headers)
    assert third.json()["name"] == "Keyword replies with escalation (3)"
    refused(await client.post("/api/v1/workflows/ready-made/world_domination", headers=headers), 404, "NOT_FOUND")
    assert await Workflow.find_all().count() == 5
    # A copy turned on works like any workflow.
    on = await client.post(f"/api/v1/workflows/{second.json()['id']}/enabled", headers=headers, json={"enabled": True})
    assert on.status_code == 200 and on.json()["enabled"] is True


# -- the dry run -------------------------------------------------------------------------------------------------
async def dry(env: Any, workflow: dict[str, Any], **body: Any) -> dict[str, Any]:
    answer = await env.client.post("/api/v1/workflows/dry-run", headers=env.headers, json={"workflow": workflow,
                                                                                           **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


def texts(result: dict[str, Any]) -> list[str]:
    return [line["text"] for line in result["steps"]]


async def test_dry_run_shows_what_would_happen_and_does_nothing(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    client, headers = env.client, env.headers
    ready = next(i for i in (await client.get("/api/v1/workflows/ready-made", headers=headers)).json()["data"]
                 if i["key"] == "keyword_replies")
    from app.domains.workflows.library import READY_MADE

    keyword = {k: v for k, v in READY_MADE[ready["key"]].items()}
    open_window = await env.conversation(account, phone(), window=True)
    customer = str(open_window.contact_id)

    urgent = await dry(env, keyword, text="this is urgent", contact_id=customer)
    assert urgent["trigger_matches"] is True and urgent["conditions_hold"] is True
    lines = texts(urgent)
    assert lines[0] == "takes branch “escalate”"
    assert "would set the priority to high" in lines and "would change labels: add escalated" in lines
    assert "would assign to the online agent with the fewest open conversations" in lines
    assert any(t.startswith("would notify the assignee: “Escalated by keyword") for t in lines), lines
    assert any(t.startswith("would send “Thanks Customer, we've marked this as urgent") for t in lines), lines
    assert lines[-1] == "would end: all steps done"

    # Any message starts it (trigger "any"): a text with no keyword goes through the condition, no branch.
    plain = await dry(env, keyword, text="thank you", contact_id=customer)
    assert plain["trigger_matches"] is True and texts(plain) == ["no branch matches: goes on",
                                                                 "would end: all steps done"]
    # A keyword trigger that does not match: it would not start.
    only_hello = {**keyword, "trigger": {"type": "message_received", "match": "keywords", "keywords": ["hello"]}}
    quiet = await dry(env, only_hello, text="thank you")
    assert quiet["trigger_matches"] is False
    assert quiet["steps"] == [{"step_id": None, "type": "end", "outcome": "skipped",
                               "text": "would not start: the message does not match the trigger"}]
    # Conditions that do not hold on this contact.
    vip_only = {**keyword, "conditions": {"match": "all", "conditions": [{"field": "tag", "op": "has",
                                                                            "value": "vip"}]}}
    assert texts(await dry(env, vip_only, text="urgent", contact_id=customer)) == [
        "would not start: the conditions do not hold"]

    # A question for a number answered "abc": refused, and the timeout branch after it.
    ask = {"name": "Ask", "trigger": {"type": "manual"}, "steps": [
        {"id": "how-many", "type": "ask", "params": {"question": "How many?", "answer_type": "number",
                                                     "save_as": "how_many"},
         "branches": [{"label": "timeout", "steps": [{"id": "late", "type": "note", "params": {"text": "no answer"}}]}]},
        {"id": "thanks", "type": "send_text", "params": {"text": "You said {{answer}}"}}]}
    asked = await dry(env, ask, contact_id=customer, answers=["abc"])
    assert [(line["step_id"], line["outcome"]) for line in asked["steps"][:2]] == [("how-many", "waiting"),
                                                                                   ("how-many", "skipped")]
    assert texts(asked)[1] == "answer “abc” refused (please answer with a number)"
    accepted = await dry(env, ask, contact_id=customer, answers=["12"])
    assert "answer “12” accepted" in texts(accepted) and "would send “You said 12”" in texts(accepted)

    # The 24-hour window closed: a free-form send would fail, and the dry run says so.
    closed = await env.conversation(account, phone(), window=False)
    send = {"name": "Send", "trigger": {"type": "manual"},
            "steps": [{"id": "hi", "type": "send_text", "params": {"text": "Hi"}}]}
    failing = await dry(env, send, contact_id=str(closed.contact_id))
    assert failing["steps"] == [{"step_id": "hi", "type": "send_text", "outcome": "failed",
                                 "text": "would fail: the 24-hour window is closed, only a template can be sent"}]
    assert texts(await dry(env, send, contact_id=customer)) == ["would send “Hi”", "would end: all steps done"]

    # A jump loop: stopped after 100 lines, saying so.
    loop = {"name": "Loop", "trigger": {"type": "manual"}, "steps": [
        {"id": "a", "type": "note", "params": {"text": "again"}}, {"id": "b", "type": "jump", "params": {"to": "a"}}]}
    looped = await dry(env, loop)
    assert len(looped["steps"]) == 101
    assert looped["steps"][-1]["text"] == "stopped the dry run after 100 steps: does a jump loop?"
    assert looped["steps"][-1]["outcome"] == "failed"

    # An HTTP step is described, not called; a wait is described and passed.
    described = await dry(env, {"name": "Call", "trigger": {"type": "manual"}, "steps": [
        {"id": "w", "type": "wait", "params": {"minutes": 30, "end_on_reply": True}},
        {"id": "h", "type": "http", "params": {"url": "https://crm.example/hook"}}]})
    assert texts(described)[:2] == ["would wait 30 minutes (ends if the customer replies)",
                                    "would call POST https://crm.example/hook (not called in a dry run)"]

    # Mistakes are refused like a save's, named without the body's "workflow." prefix.
    error = refused(await client.post("/api/v1/workflows/dry-run", headers=headers, json={
        "workflow": {**send, "steps": [{"type": "dance"}]}}), 422, "WORKFLOW_INVALID")
    assert "steps.0.type" in error["details"]
    error = refused(await client.post("/api/v1/workflows/dry-run", headers=headers, json={
        "workflow": {**send, "steps": [{"type": "send_text"}]}}), 422, "WORKFLOW_INVALID")
    assert "steps.0.params.text" in error["details"]
    refused(await client.post("/api/v1/workflows/dry-run", headers=headers, json={"workflow": send,
                                                                                  "answers": "12"}), 422)
    refused(await client.post("/api/v1/workflows/dry-run", headers=headers, json={
        "workflow": send, "contact_id": "5f0000000000000000000000"}), 404)

    # Nothing was stored, sent or started by any of it.
    assert await Workflow.find_all().count() == 0 and await WorkflowRun.find_all().count() == 0
    assert await Message.find(Message.direction == "outbound").count() == 0
    assert (await Conversation.get(open_window.id)).priority != "high"
    assert await env.sent(account) == []


# -- runs ----------------------------------------------------------------------------------------------------
async def test_runs_start_list_show_stop(outbound):  # noqa: F811
    env = await outbound()
    account = await env.add_number()
    client, headers = env.client, env.headers
    workflow = await create(env, WAIT_AN_HOUR)
    other = await create(env, {**WAIT_AN_HOUR, "name": "Other"})
    someone = await contact(env, "Erin")

    started = await start(env, workflow["id"], contact_id=str(someone.id), data={"source": "crm"})
    assert started.status_code == 201, started.text
    run = started.json()
    assert run["workflow_id"] == workflow["id"] and run["workflow_name"] == "Wait an hour"
    assert run["contact_id"] == str(someone.id) and run["conversation_id"] is None
    assert run["status"] == "running" and run["trigger"]["type"] == "manual" and run["trigger"]["by"]
    assert run["log"][0]["type"] == "trigger" and run["log"][0]["text"].startswith("started: manual")
    parked = await run_in(run["id"], "waiting")
    assert parked.vars["webhook"] == {"source": "crm"}

    busy = await start(env, workflow["id"], contact_id=str(someone.id))
    refused(busy, 409, "RUN_NOT_STARTED")
    conversation = await env.conversation(account, phone())
    by_conversation = await start(env, workflow["id"], conversation_id=str(conversation.id))
    assert by_conversation.status_code == 201, by_conversation.text
    assert by_conversation.json()["conversation_id"] == str(conversation.id)
    assert by_conversation.json()["contact_id"] == str(conversation.contact_id)
    await run_in(by_conversation.json()["id"], "waiting")
    elsewhere = await start(env, other["id"], contact_id=str(someone.id))  # another workflow: its own run
    assert elsewhere.status_code == 201

    refused(await start(env, workflow["id"]), 422, "RUN_TARGET_MISSING")
    refused(await start(env, workflow["id"], contact_id="5f0000000000000000000000"), 404)
    refused(await start(env, "5f0000000000000000000000", contact_id=str(someone.id)), 404)
    refused(await start(env, workflow["id"], contact_id=str(someone.id), colour="red"), 422)
    off = await create(env, {**WAIT_AN_HOUR, "name": "Off", "enabled": False})
    refused(await start(env, off["id"], contact_id=str(someone.id)), 422, "WORKFLOW_OFF")

    listed = await client.get("/api/v1/workflow-runs", headers=headers, params={"workflow_id": workflow["id"]})
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["data"]] == [by_conversation.json()["id"], run["id"]]  # newest first
    everything = (await client.get("/api/v1/workflow-runs", headers=headers)).json()["data"]
    assert len(everything) == 3
    mine = (await client.get("/api/v1/workflow-runs", headers=headers,
                             params={"contact_id": str(someone.id)})).json()["data"]
    assert {r["workflow_name"] for r in mine} == {"Wait an hour", "Other"}
    one = (await client.get("/api/v1/workflow-runs", headers=headers,
                            params={"conversation_id": str(conversation.id)})).json()["data"]
    assert [r["id"] for r in one] == [by_conversation.json()["id"]]
    assert len((await client.get("/api/v1/workflow-runs", headers=headers, params={"limit": 1})).json()["data"]) == 1
    refused(await client.get("/api/v1/workflow-runs", headers=headers, params={"status": "sleeping"}), 400)
    refused(await client.get("/api/v1/workflow-runs", headers=headers, params={"workflow_id": "nope"}), 404)

    shown = await client.get(f"/api/v1/workflow-runs/{run['id']}", headers=headers)
    assert shown.status_code == 200
    body = shown.json()
    assert body["status"] == "waiting" and body["waiting"]["step_id"] == "pause" and body["wake_at"]
    assert [(line["type"], line["outcome"]) for line in body["log"]] == [("trigger", "info"), ("wait", "waiting")]
    assert body["steps_done"] == 1

    stopped = await client.post(f"/api/v1/workflow-runs/{run['id']}/stop", headers=headers)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped" and stopped.json()["end_reason"].startswith("stopped by ")
    refused(await client.post(f"/api/v1/workflow-runs/{run['id']}/stop", headers=headers), 422, "RUN_ENDED")
    refused(await client.get("/api/v1/workflow-runs/5f0000000000000000000000", headers=headers), 404, "NOT_FOUND")
    active = (await client.get("/api/v1/workflow-runs", headers=headers,
                               params={"workflow_id": workflow["id"], "status": "active"})).json()["data"]
    assert [r["id"] for r in active] == [by_conversation.json()["id"]]
    ended = (await client.get("/api/v1/workflow-runs", headers=headers, params={"status": "stopped"})).json()["data"]
    assert [r["id"] for r in ended] == [run["id"]]
    # Stopped, the contact may be started again.
    assert (await start(env, workflow["id"], contact_id=str(someone.id))).status_code == 201


async def test_agents_start_and_see_runs_only_of_conversations_they_see(outbound):  # noqa: F811
    env = await outbound()
    client, headers = env.client, env.headers
    theirs, hidden_number = await env.add_number(), await env.add_number()
    people = env.runtime.people
    agent = await people.create_user(env.workspace_id, "agent@example.com", "an agent password", "agent", "Ann")
    agent.all_numbers, agent.number_ids = False, [theirs.id]
    await agent.save()
    _, key = await people.create_api_key(env.workspace_id, "agent", "agent", agent.id)
    as_agent = {"Authorization": f"Bearer {key}"}
    workflow = await create(env, WAIT_AN_HOUR)
    visible = await env.conversation(theirs, phone())
    hidden = await env.conversation(hidden_number, phone())

    for method, path, body in (("GET", "/api/v1/workflows", None), ("POST", "/api/v1/workflows", WAIT_AN_HOUR),
                               ("GET", f"/api/v1/workflows/{workflow['id']}", None),
                               ("PUT", f"/api/v1/workflows/{workflow['id']}", WAIT_AN_HOUR),
                               ("DELETE", f"/api/v1/workflows/{workflow['id']}", None),
                               ("POST", f"/api/v1/workflows/{workflow['id']}/enabled", {"enabled": False}),
                               ("POST", f"/api/v1/workflows/{workflow['id']}/webhook-token", None),
                               ("GET", "/api/v1/workflows/ready-made", None),
                               ("POST", "/api/v1/workflows/ready-made/follow_up", None),
                               ("POST", "/api/v1/workflows/dry-run", {"workflow": WAIT_AN_HOUR})):
        answer = await client.request(method, path, headers=as_agent, json=body)
        refused(answer, 403, "ADMIN_REQUIRED")
    assert await Workflow.find_all().count() == 1 and (await Workflow.find_one({})).version == 1

    refused(await start(env, workflow["id"], as_agent, contact_id=str(visible.contact_id)), 422, "RUN_TARGET_MISSING")
    refused(await start(env, workflow["id"], as_agent, conversation_id=str(hidden.id)), 404, "NOT_FOUND")
    mine = await start(env, workflow["id"], as_agent, conversation_id=str(visible.id))
    assert mine.status_code == 201, mine.text
    assert mine.json()["trigger"] == {"type": "manual", "by": "Ann"}  # who started it
    hidden_run = (await start(env, workflow["id"], conversation_id=str(hidden.id))).json()  # an admin's
    contact_run = (await start(env, workflow["id"], contact_id=str((await contact(env)).id))).json()
    await run_in(mine.json()["id"], "waiting")

    refused(await client.get("/api/v1/workflow-runs", headers=as_agent), 422, "RUN_TARGET_MISSING")
    seen = await client.get("/api/v1/workflow-runs", headers=as_agent, params={"conversation_id": str(visible.id)})
    assert [r["id"] for r in seen.json()["data"]] == [mine.json()["id"]]
    refused(await client.get("/api/v1/workflow-runs", headers=as_agent, params={"conversation_id": str(hidden.id)}),
            404, "NOT_FOUND")
    assert (await client.get(f"/api/v1/workflow-runs/{mine.json()['id']}", headers=as_agent)).status_code == 200
    for run_id in (hidden_run["id"], contact_run["id"]):
        refused(await client.get(f"/api/v1/workflow-runs/{run_id}", headers=as_agent), 404, "NOT_FOUND")
        refused(await client.post(f"/api/v1/workflow-runs/{run_id}/stop", headers=as_agent), 404, "NOT_FOUND")
        assert (await WorkflowRun.get(run_id)).status in ("running", "waiting")
    stopped = await client.post(f"/api/v1/workflow-runs/{mine.json()['id']}/stop", headers=as_agent)
    assert stopped.status_code == 200 and stopped.json()["end_reason"] == "stopped by Ann"
    # An admin sees all three.
    assert len((await client.get("/api/v1/workflow-runs", headers=headers)).json()["data"]) == 3


# -- the incoming-webhook trigger ------------------------------------------------------------------------------
def hook_path(workflow: dict[str, Any]) -> str:
    url = workflow["webhook_url"]
    assert url.startswith("http://testserver.local/webhooks/workflows/")
    return url.removeprefix("http://testserver.local")


async def test_incoming_webhook_starts_runs(outbound):  # noqa: F811
    env = await outbound()
    await env.add_number()
    client, headers = env.client, env.headers
    workflow = await create(env, {"name": "From the shop", "enabled": True, "trigger": {"type": "webhook"},
                                  "steps": [{"id": "tag", "type": "tags", "params": {"add": ["ordered"]}},
                                            {"id": "order", "type": "set_attribute",
                                             "params": {"key": "source", "value": "the shop"}}]})
    path = hook_path(workflow)
    assert path.startswith(f"/webhooks/workflows/{workflow['id']}/")
    shown = (await client.get(f"/api/v1/workflows/{workflow['id']}", headers=headers)).json()
    assert shown["webhook_url"] == workflow["webhook_url"]

    assert await Contact.find({"wa_id": "4915112345678"}).count() == 0
    hit = await client.post(path, json={"phone": "+4915112345678", "data": {"order": "A-1"}})  # no API key
    assert hit.status_code == 202, hit.text
    run = await run_in(hit.json()["id"], "completed")
    assert run.vars["webhook"] == {"order": "A-1"} and run.trigger["type"] == "webhook"
    customer = await Contact.get(run.contact_id)
    assert customer.wa_id == "4915112345678" and "ordered" in customer.tags

    first = await client.post(path, json={"phone": "+4915112345678", "id": "evt-1", "data": {"order": "A-2"}})
    assert first.status_code == 202, first.text
    await run_in(first.json()["id"], "completed")
    refused(await client.post(path, json={"phone": "+4915112345678", "id": "evt-1", "data": {"order": "A-2"}}),
            409, "RUN_NOT_STARTED")
    by_id = await client.post(path, json={"contact_id": str(customer.id), "id": "evt-2"})
    assert by_id.status_code == 202 and by_id.json()["contact_id"] == str(customer.id)
    await run_in(by_id.json()["id"], "completed")
    assert await Contact.find({"wa_id": "4915112345678"}).count() == 1

    wrong = path.rsplit("/", 1)[0]
    refused(await client.post(f"{wrong}/not-the-token", json={"phone": "+4915112345678"}), 404, "NOT_FOUND")
    refused(await client.post(f"{wrong}/tökén", json={"phone": "+4915112345678"}), 404, "NOT_FOUND")
    refused(await client.post(f"/webhooks/workflows/5f0000000000000000000000/{path.rsplit('/', 1)[1]}",
                              json={"phone": "+4915112345678"}), 404, "NOT_FOUND")
    refused(await client.post(f"/webhooks/workflows/nope/{path.rsplit('/', 1)[1]}", json={}), 404, "NOT_FOUND")
    refused(await client.post(path, content=b"{not json", headers={"content-type": "application/json"}),
            422, "INVALID_JSON")
    refused(await client.post(path, content=b"\xff\xfe", headers={"content-type": "application/json"}),
            422, "INVALID_JSON")
    refused(await client.post(path, content=b"[" * 70000 + b"]" * 70000, headers={"content-type": "application/json"}),
            413, "BODY_TOO_LARGE")
    refused(await client.post(path, content=b"[" * 30000, headers={"content-type": "application/json"}),
            422, "INVALID_JSON")  # nested deeper than any parser goes: still a 4xx
    refused(await client.post(path, json=["+4915112345678"]), 422, "INVALID_JSON")
    refused(await client.post(path, json="+4915112345678"), 422, "INVALID_JSON")
    refused(await client.post(path, json={"phone": "+49", "data": {"x": "y" * 70000}}), 413, "BODY_TOO_LARGE")
    refused(await client.post(path, json={"data": {"order": "A-3"}}), 422, "RUN_TARGET_MISSING")
    refused(await client.post(path, json={"phone": "not a phone"}), 422)
    refused(await client.post(path, json={"contact_id": "5f0000000000000000000000"}), 404)

    new_token = await client.post(f"/api/v1/workflows/{workflow['id']}/webhook-token", headers=headers)
    assert new_token.status_code == 200
    new_path = hook_path(new_token.json())
    assert new_path != path
    refused(await client.post(path, json={"phone": "+4915112345678"}), 404, "NOT_FOUND")
    assert (await client.post(new_path, json={"phone": "+4915112345699"})).status_code == 202

    off = await client.post(f"/api/v1/workflows/{workflow['id']}/enabled", headers=headers, json={"enabled": False})
    assert off.json()["webhook_url"] == new_token.json()["webhook_url"]  # turning off keeps the URL
    refused(await client.post(new_path, json={"phone": "+4915112345678"}), 422, "WORKFLOW_OFF")
    runs = await WorkflowRun.find_all().count()
    assert runs == 4


# -- the HTTP step -------------------------------------------------------------------------------------------------
class JsonReceiver:
    """An endpoint of another system: records each request, answers ``answer`` as JSON."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = await read_body(receive)
        with self.lock:
            self.requests.append((scope["method"], scope["path"], {k.decode(): v.decode() for k, v in scope["headers"]},
                                  body))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(self.answer).encode()})


@pytest.fixture
def crm():
    app = JsonReceiver({"customer": {"tier": "gold", "points": 120, "tags": ["a"]}, "ok": True})
    with serve(app) as url:
        yield app, url


def _http_workflow(url: str) -> dict[str, Any]:
    return {"name": "Ask the CRM", "enabled": True, "trigger": {"type": "manual"}, "steps": [
        {"id": "lookup", "type": "http", "params": {"method": "POST", "url": f"{url}/lookup?who={{{{contact.phone}}}}",
                                                    "body": "order for {{contact.name}}",
                                                    "save": {"tier": "customer.tier", "points": "customer.points",
                                                             "list_is_skipped": "customer.tags"}}},
        {"id": "after", "type": "set_attribute", "params": {"key": "checked", "value": "{{attributes.tier}}"}}]}


async def test_http_step_calls_signed_and_saves_the_answer(outbound, crm):  # noqa: F811
    receiver, url = crm
    env = await outbound(allow_private_webhook_targets=True)
    workflow = await create(env, _http_workflow(url))
    # The key HTTP steps sign with: shown once when rotated, only its end afterwards.
    rotated = await env.client.post(f"/api/v1/workflows/{workflow['id']}/signing-secret", headers=env.headers)
    assert rotated.status_code == 200, rotated.text
    secret = rotated.json()["secret"]
    shown = (await env.client.get(f"/api/v1/workflows/{workflow['id']}", headers=env.headers)).json()
    assert secret.startswith("whsec_") and shown["signing_secret_last4"] == secret[-4:] and secret not in str(shown)
    someone = await contact(env, "Fay")
    started = await start(env, workflow["id"], contact_id=str(someone.id), data={"order": "B-7"})
    assert started.status_code == 201, started.text
    run = await run_in(started.json()["id"], "completed", "failed")
    assert run.status == "completed", run.log

    assert len(receiver.requests) == 1
    method, path, headers, body = receiver.requests[0]
    assert method == "POST" and path == "/lookup"
    stored = await Workflow.get(workflow["id"])
    assert secret not in (stored.signing_secret or "")  # encrypted at rest
    assert verify(secret, headers["x-inbox-timestamp"], body, headers["x-inbox-signature"])
    assert not verify(secret, headers["x-inbox-timestamp"], body + b" ", headers["x-inbox-signature"])
    assert headers["idempotency-key"] == f"wf:{run.id}:lookup:0"
    sent = json.loads(body)
    assert sent["workflow"] == {"id": workflow["id"], "name": "Ask the CRM", "run_id": str(run.id)}
    assert sent["contact"]["id"] == str(someone.id) and sent["data"] == "order for Fay"
    assert sent["vars"]["webhook"] == {"order": "B-7"}

    customer = await Contact.get(someone.id)
    assert customer.attributes["tier"] == "gold" and customer.attributes["points"] in (120, "120")  # untyped attribute: text
    assert "list_is_skipped" not in customer.attributes and customer.attributes["checked"] == "gold"
    shown = (await env.client.get(f"/api/v1/workflow-runs/{run.id}", headers=env.headers)).json()
    assert any("saved tier, points" in line["text"] for line in shown["log"]), shown["log"]


async def test_http_step_to_a_private_address_fails_the_run_visibly(outbound, crm):  # noqa: F811
    receiver, url = crm
    env = await outbound()  # the SSRF guard on, as in production
    workflow = await create(env, _http_workflow(url))
    someone = await contact(env)
    started = await start(env, workflow["id"], contact_id=str(someone.id))
    run = await run_in(started.json()["id"], "completed", "failed")
    assert run.status == "failed" and "not reached" in run.end_reason, run.end_reason
    assert receiver.requests == []
    shown = (await env.client.get(f"/api/v1/workflow-runs/{run.id}", headers=env.headers)).json()
    assert shown["status"] == "failed" and shown["log"][-1]["outcome"] == "failed"
    assert "not reached" in shown["log"][-1]["text"]
    assert "tier" not in (await Contact.get(someone.id)).attributes
