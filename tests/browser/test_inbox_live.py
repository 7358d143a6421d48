"""The inbox in Chromium, live: a customer writes, ticks advance, a second agent sees it all, reconnects catch up.

`inbox run --demo` in a subprocess (web + worker + Cloud API sandbox); the simulated customer
writes through the sandbox's control route, so messages take the real webhook path.
"""

from __future__ import annotations

import re
import time

from tests.browser.inbox_support import DEMO_ADMIN, TcpProxy, csp_violations, demo, sign_in, watch_console  # noqa: F401

RECORD_STATUSES = """() => {
  window.__statuses = {};
  const note = (el) => {
    if (!el.id || !el.id.startsWith('msg-') || !el.dataset.status) return;
    const seen = (window.__statuses[el.id] ||= []);
    if (seen[seen.length - 1] !== el.dataset.status) seen.push(el.dataset.status);
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes') note(r.target);
      for (const n of r.addedNodes || []) {
        if (n.nodeType !== 1) continue;
        note(n);
        n.querySelectorAll('[id^="msg-"]').forEach(note);
      }
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-status']});
}"""


def tick_sequence(page, selector: str, until: str, timeout: float = 20.0) -> list[str]:
    """Every data-status the message showed (recorded in the page as each live frame landed, after
    RECORD_STATUSES was installed), once it shows ``until``."""
    page.wait_for_selector(f"{selector}[data-status='{until}']", timeout=timeout * 1000)
    return page.evaluate("(id) => window.__statuses[id] || []", selector.lstrip("#"))


def test_customer_writes_agent_replies_ticks_advance_second_agent_sees_it(browser, screenshot, demo):
    agent_ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    admin_ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    agent, admin = agent_ctx.new_page(), admin_ctx.new_page()
    seen_agent, seen_admin = watch_console(agent), watch_console(admin)
    sign_in(agent, demo.base, demo.password)
    sign_in(admin, demo.base, demo.password, DEMO_ADMIN)
    agent.wait_for_function("() => document.title.includes('Inbox')")

    demo.customer_writes("385911234567", "Nina Novak", {"type": "text", "text": {"body": "Hello, do you ship to Zagreb?"}})
    row = agent.locator(".conv-row", has_text="Nina Novak")
    row.wait_for()  # appeared live, no reload
    assert "Hello, do you ship to Zagreb?" in row.inner_text()
    assert row.locator(".unread-badge").inner_text() == "1"
    agent.wait_for_function("() => document.title.startsWith('(')")  # unread count in the tab title
    screenshot(agent, "inbox-live-inbound")

    admin.locator(".conv-row", has_text="Nina Novak").locator(".conv-link").click()
    admin.locator("#thread-items", has_text="Zagreb").wait_for()
    row.locator(".conv-link").click()
    agent.locator("#thread-items", has_text="Zagreb").wait_for()
    agent.evaluate(RECORD_STATUSES)
    agent.fill("#composer-text", "Yes, we ship to Zagreb in 2 days!")
    agent.keyboard.press("Enter")
    bubble = agent.locator("#thread-items .msg-outbound", has_text="ship to Zagreb in 2 days").last
    bubble.wait_for()
    agent.wait_for_function("() => document.getElementById('composer-text').value === ''")
    message_id = bubble.get_attribute("id")
    assert re.fullmatch(r"msg-[0-9a-f]{24}", message_id)
    statuses = tick_sequence(agent, f"#{message_id}", "read")
    # The ticks only move forward and the agent saw at least one before "read" (statuses that land in
    # the same instant are shown once, at the newest).
    order = ["queued", "accepted", "sent", "delivered", "read"]
    assert [order.index(s) for s in statuses] == sorted({order.index(s) for s in statuses}), statuses
    assert statuses[-1] == "read" and {"sent", "delivered"} & set(statuses), statuses
    tick = agent.locator(f"#{message_id} .tick")
    assert tick.inner_text() == "✓✓" and "tick-read" in tick.get_attribute("class")
    screenshot(agent, "inbox-reply-read-ticks")

    # The second agent saw the reply arrive in the thread they had open.
    admin.locator(f"#{message_id}").wait_for()
    assert "ship to Zagreb in 2 days" in admin.locator(f"#{message_id}").inner_text()
    # The agent takes the conversation; the admin sees the assignment live.
    me = agent.locator("#assignee option", has_text="Demo Agent (me)")  # "Demo Agent (me) · Online"
    agent.select_option("#assignee", value=me.get_attribute("value"))
    admin.locator("#thread-meta", has_text="Assigned to Demo Agent").wait_for()
    admin.locator("#thread-items .msg-event", has_text="took the conversation").wait_for()
    admin.locator(".conv-row", has_text="Nina Novak").locator(".badge-agent").wait_for()
    admin.wait_for_function("() => document.getElementById('assignee').selectedOptions[0].text.startsWith('Demo Agent')")
    screenshot(admin, "inbox-second-agent-sees-assignment")
    assert not csp_violations(seen_agent), "agent"
    assert not csp_violations(seen_admin), "admin"
    agent_ctx.close()
    admin_ctx.close()


def test_dropped_websocket_shows_reconnecting_then_catches_up(browser, screenshot, demo):
    port = int(demo.base.rsplit(":", 1)[1])
    proxy = TcpProxy(port)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        sign_in(page, proxy.base, demo.password)
        page.locator(".conv-row", has_text="Maria Silva").locator(".conv-link").click()
        page.locator("#thread-items", has_text="Rua Augusta").wait_for()
        time.sleep(0.3)
        proxy.cut()
        page.locator("#live-status", has_text="Reconnecting").wait_for()
        screenshot(page, "inbox-reconnecting")
        demo.customer_writes("351912345678", "Maria Silva",
                             {"type": "text", "text": {"body": "Sent while your connection was down"}})
        time.sleep(1.0)  # the message is stored while the tab is cut off (not a timing assertion)
        assert page.locator("#thread-items", has_text="Sent while your connection was down").count() == 0
        proxy.restore()
        page.locator("#thread-items", has_text="Sent while your connection was down").wait_for(timeout=20000)
        page.locator(".conv-row", has_text="Sent while your connection was down").wait_for()
        page.wait_for_selector("#live-status", state="hidden", timeout=10000)
        screenshot(page, "inbox-caught-up-after-reconnect")
    finally:
        context.close()
        proxy.close()
