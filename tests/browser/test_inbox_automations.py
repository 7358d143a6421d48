"""Automations and priority in the inbox, in Chromium (issue 17): an agent flags a conversation High and runs a
workflow from the side panel; a second agent sees the badge arrive live.

`inbox run --demo` in a subprocess (web + worker + Cloud API sandbox). The workflow is made the way an
admin's integration makes one: an API key from the admin screen, then POST /api/v1/workflows.
"""

from __future__ import annotations

import re

import httpx

from tests.browser.inbox_support import DEMO_ADMIN, csp_violations, demo, settled, sign_in, watch_console  # noqa: F401

WELCOME = {"name": "Browser welcome", "enabled": True, "trigger": {"type": "manual"}, "steps": [
    {"id": "hello", "type": "send_text", "params": {"text": "Hi! This is our welcome flow."}},
    {"id": "pause", "type": "wait", "params": {"minutes": 90}},
    {"id": "later", "type": "send_text", "params": {"text": "Anything else?"}}]}


def _csrf(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)


def admin_creates_workflow(base: str, password: str, definition: dict) -> str:
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as admin:
        login = admin.get("/login")
        admin.post("/login", data={"email": DEMO_ADMIN, "password": password, "_csrf_token": _csrf(login.text)})
        keys = admin.get("/admin/api-keys")
        made = admin.post("/admin/api-keys", data={"name": "Workflows", "role": "admin",
                                                   "_csrf_token": _csrf(keys.text)})
        key = re.search(r"wai_[A-Za-z0-9_-]+", made.text).group(0)
        answer = httpx.post(base + "/api/v1/workflows", json=definition, timeout=10,
                            headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]


def test_agent_sets_priority_and_runs_a_workflow_from_the_panel(browser, screenshot, demo):
    admin_creates_workflow(demo.base, demo.password, WELCOME)
    agent_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    other_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    agent, other = agent_ctx.new_page(), other_ctx.new_page()
    seen = watch_console(agent)
    sign_in(agent, demo.base, demo.password)
    sign_in(other, demo.base, demo.password, DEMO_ADMIN)
    other_row = other.locator(".conv-row", has_text="Maria Silva")
    other_row.wait_for()
    assert other_row.locator(".badge-priority").count() == 0

    agent.locator(".conv-row", has_text="Maria Silva").locator(".conv-link").click()
    panel = agent.locator("#side-panel")
    panel.get_by_label("Priority").wait_for()
    panel.get_by_label("Priority").select_option(label="High")
    row = agent.locator(".conv-row", has_text="Maria Silva")
    row.locator(".badge-priority", has_text="High").wait_for()
    agent.locator("#thread-meta", has_text="High priority").wait_for()
    assert panel.get_by_label("Priority").input_value() == "high"
    agent.locator("#thread-items", has_text="set the priority to high").wait_for()
    # The other agent's list gets the badge live, without a reload.
    other_row.locator(".badge-priority", has_text="High").wait_for(timeout=10_000)

    # Run a workflow: it is listed, reaches its wait, and its message in the thread names it.
    automations = agent.locator("#automations")
    automations.get_by_label("Run a workflow").wait_for()
    settled(agent)
    automations.get_by_label("Run a workflow").select_option(label="Browser welcome")
    automations.get_by_role("button", name="Run", exact=True).click()
    automations.get_by_text("Started “Browser welcome”.").wait_for()
    active = automations.locator(".runs-active .run", has_text="Browser welcome")
    active.wait_for()
    active.filter(has_text="waiting until").wait_for(timeout=20_000)  # the list asks again while it runs
    active.locator("time").filter(has_not_text="UTC").wait_for()  # shown in the agent's own clock
    bubble = agent.locator("#thread-items .msg-outbound", has_text="This is our welcome flow").last
    bubble.wait_for(timeout=20_000)
    assert bubble.locator(".msg-author").inner_text() == "Automation · Browser welcome"
    screenshot(agent, "inbox-automations-running")

    active.get_by_role("button", name="Stop Browser welcome").click()
    automations.get_by_text("Stopped “Browser welcome”.").wait_for()
    ended = automations.locator(".runs-ended .run", has_text="Browser welcome")
    assert "Stopped" in ended.inner_text()
    assert automations.locator(".runs-active .run").count() == 0
    screenshot(agent, "inbox-automations-stopped")
    assert not csp_violations(seen) and not seen["dialogs"], seen
    agent_ctx.close()
    other_ctx.close()
