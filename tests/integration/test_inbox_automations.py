"""What an agent sees of automations in the inbox (issue 17), and a conversation's priority, through HTTP.

The demo workspace with its worker in-process (runs are advanced by the real worker jobs, their
messages go through the one send path to the sandbox); workflows are created with the JSON API and
an admin's key, as an admin's integration would.
"""

from __future__ import annotations

import re

import pytest

from app.demo import DEMO_ADMIN, DEMO_AGENT
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message, MessageStatus
from app.domains.workflows.models import WorkflowRun
from app.domains.workspaces.models import User
from tests.integration.outbound_env import wait_for
from tests.integration.test_inbox_actions import conversation_of, setup
from tests.integration.test_inbox_page import conv_list, hx

ADMIN_KEY = "wai_inbox-automations-test-key-0123456789abcdef"

WELCOME = {"name": "Welcome flow", "enabled": True, "trigger": {"type": "manual"}, "steps": [
    {"id": "hello", "type": "send_text", "params": {"text": "Hello from the welcome flow"}},
    {"id": "pause", "type": "wait", "params": {"minutes": 120}},
    {"id": "bye", "type": "send_text", "params": {"text": "Still there?"}}]}
SURVEY = {"name": "Survey", "enabled": True, "trigger": {"type": "manual"}, "steps": [
    {"id": "ask", "type": "ask", "params": {"question": "How did we do, 1 to 5?", "answer_type": "number",
                                             "timeout_minutes": 60}}]}
OLD_PROMO = {"name": "Old promo", "enabled": False, "trigger": {"type": "manual"}, "steps": [
    {"id": "promo", "type": "send_text", "params": {"text": "20% off"}}]}


async def create_workflows(client, *definitions: dict) -> dict[str, str]:
    """The workflows, created by an admin's integration through the API: name -> id."""
    admin = await User.find_one(User.email == DEMO_ADMIN)
    await client.app.state.runtime.people.create_api_key(admin.workspace_id, "Automations", "admin", admin.id,
                                                         key=ADMIN_KEY)
    ids = {}
    for definition in definitions:
        answer = await client.post("/api/v1/workflows", json=definition,
                                   headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert answer.status_code == 201, answer.text
        ids[definition["name"]] = answer.json()["id"]
    return ids


def section(html: str, css_class: str) -> str:
    """The text of one list of the Automations section (runs-active / runs-ended)."""
    match = re.search(rf'<ul class="runs {css_class}">(.*?)</ul>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))) if match else ""


async def run_of(conversation: Conversation, name: str, status: str | None = None) -> WorkflowRun | None:
    query = {"conversation_id": conversation.id, "workflow_name": name}
    return await WorkflowRun.find_one({**query, "status": status} if status else query)


async def test_run_a_workflow_from_the_panel_see_it_wait_and_stop_it(client_factory):
    client, headers = await setup(client_factory)
    ids = await create_workflows(client, WELCOME, SURVEY, OLD_PROMO)
    maria = await conversation_of("Maria Silva")
    base = f"/inbox/c/{maria.id}"

    thread = await client.get(base, headers=headers)
    assert f'hx-get="{base}/automations"' in thread.text  # the section loads after the panel
    empty = await client.get(base + "/automations", headers=headers)
    assert empty.status_code == 200 and 'id="automations"' in empty.text
    assert "None." in section(empty.text, "runs-active")
    # Only workflows that are on are offered.
    assert ">Welcome flow</option>" in empty.text and ">Survey</option>" in empty.text
    assert "Old promo" not in empty.text

    started = await client.post(base + "/automations/run", data={"workflow_id": ids["Welcome flow"]}, headers=headers)
    assert started.status_code == 200 and "X-Inbox-Error" not in started.headers
    assert "Started “Welcome flow”." in started.text
    assert "Welcome flow" in section(started.text, "runs-active")
    run = await run_of(maria, "Welcome flow")
    assert run is not None and run.trigger["type"] == "manual" and run.started_by is not None

    # The worker sends its first message and parks it on the wait: the section says until when.
    await wait_for(lambda: run_of(maria, "Welcome flow", "waiting"))
    waiting = await client.get(base + "/automations", headers=headers)
    active = section(waiting.text, "runs-active")
    assert "Welcome flow" in active and "waiting until" in active and "UTC" in active
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d', waiting.text)
    assert ">Stop</button>" in waiting.text

    # The thread names the workflow on the message it sent.
    sent = await wait_for(lambda: Message.find_one(Message.conversation_id == maria.id, Message.via == "automation"))
    assert sent.automation["name"] == "Welcome flow"
    thread = await client.get(base, headers=headers)
    bubble = re.search(rf'id="msg-{sent.id}".*?</li>', thread.text, re.S).group(0)
    assert "Hello from the welcome flow" in bubble
    assert '<span class="msg-author">Automation · Welcome flow</span>' in bubble

    # A second run for the same customer is refused, in words, inside the section.
    again = await client.post(base + "/automations/run", data={"workflow_id": ids["Welcome flow"]}, headers=headers)
    assert again.status_code == 200 and again.headers.get("X-Inbox-Error") == "1"
    assert "already running for them" in again.text and 'class="field-error automation-error"' in again.text

    # Stop: the run ends, the section lists it as stopped, by whom.
    stopped = await client.post(f"{base}/automations/runs/{run.id}/stop", headers=headers)
    assert stopped.status_code == 200 and "Stopped “Welcome flow”." in stopped.text
    assert "None." in section(stopped.text, "runs-active")
    ended = section(stopped.text, "runs-ended")
    agent = await User.find_one(User.email == DEMO_AGENT)
    assert "Welcome flow" in ended and "Stopped" in ended and f"stopped by {agent.name}" in ended
    assert (await WorkflowRun.get(run.id)).status == "stopped"
    twice = await client.post(f"{base}/automations/runs/{run.id}/stop", headers=headers)
    assert twice.status_code == 200 and "This run has already ended." in twice.text

    # A question waits for the customer's answer.
    asked = await client.post(base + "/automations/run", data={"workflow_id": ids["Survey"]}, headers=headers)
    assert "Started “Survey”." in asked.text
    await wait_for(lambda: run_of(maria, "Survey", "waiting"))
    survey = section((await client.get(base + "/automations", headers=headers)).text, "runs-active")
    assert "Survey" in survey and "waiting for an answer until" in survey


async def test_a_refused_run_says_why_and_nothing_starts(client_factory):
    client, headers = await setup(client_factory)
    ids = await create_workflows(client, WELCOME, OLD_PROMO)
    omar = await conversation_of("Omar Haddad")
    base = f"/inbox/c/{omar.id}/automations"
    # The workflow was turned off after the panel was drawn (or a form was crafted): refused in words.
    off = await client.post(base + "/run", data={"workflow_id": ids["Old promo"]}, headers=headers)
    assert off.status_code == 200 and off.headers.get("X-Inbox-Error") == "1"
    assert "Turn the workflow on first." in off.text and 'id="automations"' in off.text
    gone = await client.post(base + "/run", data={"workflow_id": "0" * 24}, headers=headers)
    assert gone.status_code == 200 and "That workflow does not exist any more." in gone.text
    nothing = await client.post(base + "/run", data={"workflow_id": ""}, headers=headers)
    assert nothing.status_code == 200 and "Pick a workflow to run." in nothing.text
    assert await WorkflowRun.find({}).count() == 0
    # A run of another conversation cannot be stopped from this one.
    maria = await conversation_of("Maria Silva")
    await client.post(f"/inbox/c/{maria.id}/automations/run", data={"workflow_id": ids["Welcome flow"]},
                      headers=headers)
    elsewhere = await run_of(maria, "Welcome flow")
    crossed = await client.post(f"{base}/runs/{elsewhere.id}/stop", headers=headers)
    assert crossed.status_code == 200 and "That run is not in this conversation." in crossed.text
    assert (await WorkflowRun.get(elsewhere.id)).status in ("running", "waiting")


async def test_business_hours_replies_are_named_automation(client_factory):
    client, headers = await setup(client_factory)
    maria = await conversation_of("Maria Silva")
    reply = await Message(workspace_id=maria.workspace_id, conversation_id=maria.id, account_id=maria.account_id,
                          contact_id=maria.contact_id, direction="outbound", type="text",
                          content={"body": "We are closed, back at nine."}, status=MessageStatus.QUEUED,
                          via="automation").insert()
    thread = await client.get(f"/inbox/c/{maria.id}", headers=headers)
    bubble = re.search(rf'id="msg-{reply.id}".*?</li>', thread.text, re.S).group(0)
    assert '<span class="msg-author">Automation</span>' in bubble


async def test_priority_from_the_panel_badge_in_list_and_header(client_factory):
    client, headers = await setup(client_factory)
    maria = await conversation_of("Maria Silva")
    base = f"/inbox/c/{maria.id}"
    thread = await client.get(base, headers=headers)
    assert '<select id="conv-priority" name="priority">' in thread.text
    assert '<option value="none" selected>No priority</option>' in thread.text

    panel = await client.post(base + "/priority", data={"priority": "high"}, headers=headers)
    assert panel.status_code == 200 and 'id="side-panel"' in panel.text
    assert '<option value="high" selected>High</option>' in panel.text
    assert (await Conversation.get(maria.id)).priority == "high"
    # The row (out of band) and the header carry the word, not a colour alone.
    assert re.search(rf'id="conv-{maria.id}".*?class="badge badge-priority priority-high"[^>]*>High</span>',
                     panel.text, re.S)
    assert "High priority</span>" in panel.text
    event = await Message.find_one(Message.conversation_id == maria.id, Message.type == "event", sort=[("_id", -1)])
    assert "set the priority to high" in event.content["text"]

    page = await client.get("/inbox")
    row = re.search(rf'<li id="conv-{maria.id}".*?</li>', conv_list(page.text), re.S).group(0)
    assert ">High</span>" in row
    listed = await client.get("/inbox/conversations?status=all", headers=hx())
    row = re.search(rf'<li id="conv-{maria.id}".*?</li>', listed.text, re.S).group(0)
    assert ">High</span>" in row

    # Medium is shown in the header and the panel, not flagged in the list.
    medium = await client.post(base + "/priority", data={"priority": "medium"}, headers=headers)
    assert "Medium priority</span>" in medium.text
    row = re.search(rf'<li id="conv-{maria.id}".*?</li>', medium.text, re.S).group(0)
    assert "badge-priority" not in row and 'data-priority="medium"' in row
    # A value the select never offers is refused under the select.
    bad = await client.post(base + "/priority", data={"priority": "extreme"}, headers=headers)
    assert bad.headers.get("X-Inbox-Error") == "1" and "Priority must be" in bad.text
    assert (await Conversation.get(maria.id)).priority == "medium"


async def test_no_priority_clears_it(client_factory):
    client, headers = await setup(client_factory)
    maria = await conversation_of("Maria Silva")
    await client.post(f"/inbox/c/{maria.id}/priority", data={"priority": "urgent"}, headers=headers)
    cleared = await client.post(f"/inbox/c/{maria.id}/priority", data={"priority": "none"}, headers=headers)
    assert "X-Inbox-Error" not in cleared.headers and "badge-priority" not in cleared.text
    assert '<option value="none" selected>No priority</option>' in cleared.text
    assert (await Conversation.get(maria.id)).priority is None
