"""The Broadcasts screens in Chromium, on `inbox run --demo`: a draft made in the form (the template's text and
its parameter rows follow the chosen template), the preview as the customer reads it, started, and the
progress following the sandbox's sent / delivered / read statuses without a reload (the live socket)."""

from __future__ import annotations

import re

from app.demo import DEMO_ADMIN
from tests.browser.inbox_support import csp_violations, demo, sign_in, watch_console  # noqa: F401


def test_create_preview_start_and_watch_the_progress_live(browser, screenshot, demo):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password, DEMO_ADMIN)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Broadcasts").click()
    page.wait_for_url(demo.base + "/admin/broadcasts")
    page.get_by_role("link", name="New broadcast").click()
    page.wait_for_url(demo.base + "/admin/broadcasts/new")

    page.get_by_label("Name", exact=True).fill("Beans are back")
    page.get_by_label("Template", exact=True).select_option("order_update|en_US")
    assert "your order {{2}} is on its way" in page.locator("#bc-body").inner_text()
    assert page.locator("#bc-params .bc-param:visible").count() == 3
    page.get_by_label("Template", exact=True).select_option("welcome_back|en_US")
    assert page.locator("#bc-body").inner_text().startswith("Hello {{1}}! Fresh beans from Brazil")
    assert page.locator("#bc-params .bc-param:visible").count() == 1
    assert page.get_by_label("{{1}} comes from").input_value() == "name"
    page.get_by_label("If the contact has none, use").first.fill("friend")
    page.get_by_label("Tags", exact=True).fill("vip")
    assert page.get_by_label("Open a conversation for every recipient").is_checked() is False
    screenshot(page, "broadcast-form")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r"/admin/broadcasts/[0-9a-f]{24}\?saved=1$"))

    # Before sending: how many, and the message as the first of them reads it.
    assert re.search(r"2 contacts now.*2 to send", page.locator("#bc-audience").inner_text())
    preview = page.locator("#bc-preview").inner_text()
    assert re.match(r"Hello (Maria Silva|Aiko \w+)! Fresh beans from Brazil just arrived\.", preview), preview
    assert page.get_by_text("The audience is frozen when sending starts.").is_visible()
    screenshot(page, "broadcast-draft")

    page.get_by_role("button", name="Start now").click()
    page.wait_for_url(re.compile(r"\?started=1$"))
    page.evaluate("window.__sameDocument = true")
    # The sandbox answers sent, then delivered after 0.8 s and read after 2.5 s: the page follows.
    page.locator("#bc-status", has_text="Completed").wait_for(timeout=60_000)
    page.locator(".bc-legend li[data-part=read]", has_text="Read: 2").wait_for(timeout=60_000)
    assert page.locator("#bc-sent").inner_text() == "Sent 2 of 2"
    # The recipients table followed too (the audience was frozen after the page was shown).
    page.locator("#recipients tbody tr").nth(1).wait_for()
    assert "Maria Silva" in page.locator("#recipients tbody").inner_text()
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    screenshot(page, "broadcast-completed")

    page.get_by_role("link", name="Broadcasts", exact=True).first.click()
    row = page.locator("tr", has_text="Beans are back")
    assert "Completed" in row.inner_text() and "Sent 2 of 2" in row.inner_text()
    assert not csp_violations(seen), "\n".join(seen["errors"])
    script_errors = [e for e in seen["errors"] if "Failed to load resource" not in e]
    assert not script_errors, script_errors
    context.close()
