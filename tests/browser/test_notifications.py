"""Browser notifications for what needs an agent (issue 14, item 23).

The desktop notification itself belongs to the operating system: the page's ``Notification`` is
replaced by a recorder (the browser's API, not our code), so the test sees what the inbox asked
the browser to show.
"""

from __future__ import annotations

import re

import httpx

from tests.browser.inbox_support import DEMO_ADMIN, demo, sign_in  # noqa: F401
from tests.browser.inbox_support import NOTIFICATION_RECORDER as RECORDER


def shown(page) -> list[dict]:
    return page.evaluate("window.__shown")


def test_new_conversation_assignment_and_mention_notify_the_agent(browser, demo):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_init_script(RECORDER)
    page = context.new_page()
    sign_in(page, demo.base, demo.password)
    assert "off" in page.locator("#notify-toggle").inner_text()
    page.locator("#notify-toggle").click()
    page.wait_for_function("() => document.getElementById('notify-toggle').textContent.includes('on')")

    demo.customer_writes("447700900777", "Priya Patel", {"type": "text", "text": {"body": "Do you deliver on Sundays?"}})
    page.wait_for_function("() => window.__shown.length >= 1")
    assert shown(page)[0] == {"title": "New conversation: Priya Patel", "body": "Do you deliver on Sundays?"}

    # An admin assigns it to the agent, then mentions them in a note.
    admin = httpx.Client(base_url=demo.base, timeout=10)
    login = admin.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', login.text).group(1)
    admin.post("/login", data={"email": DEMO_ADMIN, "password": demo.password, "_csrf_token": token})
    inbox = admin.get("/inbox?status=all")
    headers = {"X-CSRFToken": re.search(r'"X-CSRFToken": "([^"]+)"', inbox.text).group(1), "HX-Request": "true"}
    row = re.search(r'<li id="conv-([0-9a-f]{24})"(?:(?!</li>).)*?Priya Patel', inbox.text, re.S)
    conversation = row.group(1)
    panel = admin.get(f"/inbox/c/{conversation}", headers=headers).text
    agent_id = re.search(r'<option value="([0-9a-f]{24})"[^>]*>Demo Agent', panel).group(1)
    admin.post(f"/inbox/c/{conversation}/assign", data={"assignee_id": agent_id}, headers=headers)
    page.wait_for_function("() => window.__shown.some(n => n.title.startsWith('Assigned to you'))")
    admin.post(f"/inbox/c/{conversation}/messages", data={"mode": "note", "body": "@Demo Agent can you take this?"},
               headers=headers)
    page.wait_for_function("() => window.__shown.some(n => n.title.startsWith('You were mentioned'))")
    titles = [n["title"] for n in shown(page)]
    assert "Assigned to you: Priya Patel" in titles and "You were mentioned in a note: Priya Patel" in titles

    # Turned off: nothing more is shown.
    page.locator("#notify-toggle").click()
    count = len(shown(page))
    demo.customer_writes("447700900778", "Tom Baker", {"type": "text", "text": {"body": "Hello?"}})
    page.locator(".conv-row", has_text="Tom Baker").wait_for()
    assert len(shown(page)) == count
    admin.close()
    context.close()
