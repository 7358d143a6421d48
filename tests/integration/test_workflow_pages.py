"""The Workflows admin screens as a browser without JavaScript posts them: the list, the editor's save (the
definition as JSON in one field), a refused definition's messages with their places, on / off, the
ready-made copies, the dry run, a workflow's runs with their logs and Stop; agents and visitors kept out."""

from __future__ import annotations

import html
import json
import re

from app.domains.workflows.models import Workflow, WorkflowRun
from tests.conftest import csrf_from, sign_in
from tests.support.admin import (  # noqa: F401 (fixtures)
    AGENT_EMAIL,
    AGENT_PASSWORD,
    AUTH,
    add_agent,
    admin_client,
    sandbox,
    sandbox_server,
)

KEYWORDS = {
    "name": "Refund desk", "description": "Answers refund questions", "enabled": True,
    "trigger": {"type": "message_received", "match": "keywords", "keywords": ["urgent", "refund"]},
    "conditions": {"match": "all", "conditions": []},
    "steps": [{"id": "hello", "type": "send_text", "params": {"text": "We are on it, {{contact.name}}."}},
              {"id": "route", "type": "condition", "branches": [
                  {"label": "refund", "when": {"match": "any", "conditions": [
                      {"field": "message.text", "op": "has", "value": ["refund"]}]},
                   "steps": [{"id": "form", "type": "send_text", "params": {"text": "Here is the refund form."}}]},
                  {"label": "else", "steps": []}]}],
}


def _row(page: str, name: str) -> str:
    """The list's table row of the workflow named ``name``."""
    for row in re.findall(r"<tr id=\"workflow-.*?</tr>", page, re.S):
        if f">{name}</a>" in row:
            return row
    raise AssertionError(f"no row for {name}")


def _editor_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="wf-data">(.*?)</script>', page, re.S)
    assert found, "the editor has no data"
    return json.loads(found.group(1))


async def _save(client, url: str, definition: dict, **kwargs):
    page = await client.get(url if not url.endswith("/new") else url)
    return await client.post(url, data={"_csrf_token": csrf_from(page.text), "definition": json.dumps(definition)},
                             **kwargs)


async def test_create_from_the_editor_list_it_in_words_edit_and_turn_it_off_and_on(admin_client):
    client = admin_client
    empty = await client.get("/admin/workflows")
    assert empty.status_code == 200 and "No workflows yet" in empty.text
    assert 'href="/admin/workflows" aria-current="page">Workflows</a>' in empty.text  # the nav says where we are

    new = await client.get("/admin/workflows/new")
    assert new.status_code == 200 and "New workflow" in new.text and 'name="definition"' in new.text
    created = await _save(client, "/admin/workflows/new", KEYWORDS, follow_redirects=False)
    assert created.status_code == 303, created.text
    editor_url = created.headers["location"]
    assert editor_url.endswith("?saved=1")
    editor = await client.get(editor_url)
    assert "Saved." in editor.text and "Edit workflow “Refund desk”" in editor.text
    shown = _editor_data(editor.text)["definition"]
    assert shown["trigger"]["keywords"] == ["urgent", "refund"]
    assert shown["steps"][1]["branches"][0]["steps"][0]["params"]["text"] == "Here is the refund form."
    assert "id" not in shown and "version" not in shown  # only what the editor posts back

    listing = await client.get("/admin/workflows")
    row = _row(listing.text, "Refund desk")
    assert "Message contains: urgent, refund" in row and ">On</span>" in row and "Turn off" in row
    assert "Answers refund questions" in row

    # Saving again from the editor replaces it.
    workflow_id = editor_url.split("/")[-1].split("?")[0]
    changed = {**KEYWORDS, "name": "Refund desk (EU)", "trigger": {"type": "date_reached", "attribute": "appointment_at",
                                                                  "offset_minutes": -1440}}
    saved = await _save(client, f"/admin/workflows/{workflow_id}", changed)
    assert saved.status_code == 200 and "Saved." in saved.text and "Edit workflow “Refund desk (EU)”" in saved.text
    stored = await Workflow.get(workflow_id)
    assert stored.version == 2 and stored.trigger["attribute"] == "appointment_at"
    row = _row((await client.get("/admin/workflows")).text, "Refund desk (EU)")
    assert "24 h before appointment_at" in row

    # Off, then on again, from the list's toggle.
    token = csrf_from((await client.get("/admin/workflows")).text)
    off = await client.post(f"/admin/workflows/{workflow_id}/enabled", data={"_csrf_token": token, "enabled": "off"})
    row = _row(off.text, "Refund desk (EU)")
    assert ">Off</span>" in row and "Turn on" in row and not (await Workflow.get(workflow_id)).enabled
    on = await client.post(f"/admin/workflows/{workflow_id}/enabled", data={"_csrf_token": token, "enabled": "on"})
    assert ">On</span>" in _row(on.text, "Refund desk (EU)") and (await Workflow.get(workflow_id)).enabled

    # Deleted from the list.
    gone = await client.post(f"/admin/workflows/{workflow_id}/delete", data={"_csrf_token": token})
    assert gone.status_code == 200 and "Deleted." in gone.text and "Refund desk (EU)" not in gone.text
    assert await Workflow.find_one({}) is None


async def test_a_refused_definition_answers_422_with_each_message_at_its_place_keeping_what_was_typed(admin_client):
    client = admin_client
    bad = json.loads(json.dumps(KEYWORDS))
    bad["name"] = "Half done"
    bad["trigger"]["keywords"] = []
    bad["steps"][1]["branches"][0]["steps"][0]["params"]["text"] = "  "
    answer = await _save(client, "/admin/workflows/new", bad)
    assert answer.status_code == 422
    assert "Not saved: the workflow has 2 mistakes." in answer.text
    assert ('<li data-path="steps.1.branches.0.steps.0.params.text"><span class="wf-place">Step 2 (Condition) › '
            'branch “refund” › step 1 (Send a text) › Text</span>: <span class="wf-message">write something</span>'
            '</li>') in html.unescape(answer.text)
    assert ('<span class="wf-place">Trigger: keywords</span>: <span class="wf-message">list the words to look '
            'for</span>') in answer.text
    data = _editor_data(answer.text)
    assert data["definition"]["name"] == "Half done"  # what was typed comes back to the editor
    assert data["errors"]["steps.1.branches.0.steps.0.params.text"] == "write something"
    assert await Workflow.find_one({}) is None

    not_json = await client.post("/admin/workflows/new", data={"_csrf_token": csrf_from(answer.text),
                                                               "definition": "{oops"})
    assert not_json.status_code == 422 and "Definition" in not_json.text and "not a JSON object" in not_json.text


async def test_ready_made_use_makes_a_turned_off_copy_and_opens_its_editor(admin_client):
    client = admin_client
    listing = await client.get("/admin/workflows")
    assert "Appointment reminders" in listing.text and "24 hours, 2 hours and 30 minutes before" in listing.text
    used = await client.post("/admin/workflows/ready-made/appointment_reminders",
                             data={"_csrf_token": csrf_from(listing.text)})
    assert used.status_code == 200 and "Edit workflow “Appointment reminders”" in used.text
    assert "turned off: read it, then turn it on" in used.text
    assert _editor_data(used.text)["definition"]["enabled"] is False
    again = await client.post("/admin/workflows/ready-made/appointment_reminders",
                              data={"_csrf_token": csrf_from(listing.text)})
    assert "Appointment reminders (2)" in again.text
    row = _row((await client.get("/admin/workflows")).text, "Appointment reminders")
    assert ">Off</span>" in row and "24 h before appointment_at" in row


async def test_dry_run_from_the_editor_says_what_each_step_would_do(admin_client):
    client = admin_client
    page = await client.get("/admin/workflows/new")
    headers = {"X-CSRFToken": csrf_from(page.text)}
    definition = {**KEYWORDS, "steps": [{"id": "tag", "type": "tags", "params": {"add": ["refunds"], "remove": []}},
                                        {"id": "wait", "type": "wait", "params": {"minutes": 30}}]}
    answer = await client.post("/admin/workflows/dry-run", headers=headers,
                               json={"workflow": definition, "text": "I want a REFUND", "answers": []})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["trigger_matches"] is True
    assert [(s["outcome"], s["text"]) for s in result["steps"]] == [
        ("done", "would change tags: now refunds"), ("waiting", "would wait 30 minutes"),
        ("info", "would end: all steps done")]
    other = await client.post("/admin/workflows/dry-run", headers=headers,
                              json={"workflow": definition, "text": "hello"})
    assert other.json()["steps"][0]["text"] == "would not start: the message does not match the trigger"
    refused = await client.post("/admin/workflows/dry-run", headers=headers,
                                json={"workflow": {**definition, "name": ""}, "text": "refund"})
    assert refused.status_code == 422 and refused.json()["error_code"] == "WORKFLOW_INVALID"
    assert "name" in refused.json()["details"]
    no_csrf = await client.post("/admin/workflows/dry-run", json={"workflow": definition})
    assert no_csrf.status_code == 403


async def test_runs_page_shows_a_runs_log_and_stop_stops_it(admin_client):
    client = admin_client
    contact = await client.post("/api/v1/contacts", headers=AUTH, json={"phone": "+4915112345678", "name": "Ada"})
    assert contact.status_code == 201, contact.text
    definition = {"name": "Long wait", "enabled": True, "trigger": {"type": "manual"},
                  "steps": [{"id": "pause", "type": "wait", "params": {"minutes": 600}}]}
    made = await client.post("/api/v1/workflows", headers=AUTH, json=definition)
    assert made.status_code == 201, made.text
    workflow_id = made.json()["id"]
    started = await client.post(f"/api/v1/workflows/{workflow_id}/runs", headers=AUTH,
                                json={"contact_id": contact.json()["id"]})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    await client.app.state.runtime.workflows.engine.advance(run_id)  # what the worker's job does
    assert (await WorkflowRun.get(run_id)).status == "waiting"

    listing = await client.get("/admin/workflows")
    row = _row(listing.text, "Long wait")
    assert "<td>1</td>" in row and "Started by hand" in row  # one run in progress

    runs = await client.get(f"/admin/workflows/{workflow_id}/runs")
    assert runs.status_code == 200 and "Runs of “Long wait”" in runs.text
    assert f'href="/contacts/{contact.json()["id"]}">Ada</a>' in runs.text
    assert "Waiting" in runs.text and "started: manual" in runs.text and "Log (" in runs.text
    assert ">Stop</button>" in runs.text
    stopped = await client.post(f"/admin/workflows/{workflow_id}/runs/{run_id}/stop",
                                data={"_csrf_token": csrf_from(runs.text)})
    assert stopped.status_code == 200 and "The run was stopped." in stopped.text
    assert "Stopped" in stopped.text and "stopped by" in stopped.text and ">Stop</button>" not in stopped.text
    assert (await WorkflowRun.get(run_id)).status == "stopped"
    active = await client.get(f"/admin/workflows/{workflow_id}/runs?status=active")
    assert "No runs active yet." in active.text
    done = await client.get(f"/admin/workflows/{workflow_id}/runs?status=stopped")
    assert f'id="run-{run_id}"' in done.text


async def test_agents_are_refused_and_visitors_sent_to_sign_in(admin_client, client_factory):
    page = await admin_client.get("/admin/workflows")
    await add_agent(admin_client)
    await admin_client.post("/logout", data={"_csrf_token": csrf_from(page.text)})
    await sign_in(admin_client, AGENT_EMAIL, AGENT_PASSWORD)
    inbox = await admin_client.get("/inbox")
    assert "/admin/workflows" not in inbox.text  # no link for agents
    token = csrf_from(inbox.text)
    for url in ("/admin/workflows", "/admin/workflows/new"):
        assert (await admin_client.get(url)).status_code == 403, url
    for url in ("/admin/workflows/new", "/admin/workflows/dry-run", "/admin/workflows/ready-made/follow_up"):
        assert (await admin_client.post(url, data={"_csrf_token": token})).status_code == 403, url
    assert await Workflow.find_one({}) is None

    visitor = await client_factory()
    answer = await visitor.get("/admin/workflows", follow_redirects=False)
    assert answer.status_code in (302, 303) and answer.headers["location"].startswith("/login")
