"""A tab whose session ended (issue 14, item 8): it says so, keeps the draft, and sign-in returns to
the conversation. Its own `inbox run --demo` (module scope): this test changes the agent's password."""

from __future__ import annotations

import re

from tests.browser.inbox_support import csp_violations, demo, sign_in, watch_console  # noqa: F401

NEW_PASSWORD = "a brand new password"


def test_session_ended_says_so_keeps_the_draft_and_sign_in_returns_to_the_conversation(browser, demo):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password)
    page.locator(".conv-row", has_text="Maria Silva").locator(".conv-link").click()
    page.locator("#thread-name", has_text="Maria Silva").wait_for()
    conversation = page.get_attribute("#thread-wrap", "data-conv")
    draft = "Your order ships tomorrow, and the invoice"
    page.locator("#composer-text").click()
    page.keyboard.type(draft)

    # The same agent changes their password on another device: this tab's session ends.
    other = browser.new_context().new_page()
    sign_in(other, demo.base, demo.password)
    other.goto(demo.base + "/profile")
    other.get_by_label("Current password").fill(demo.password)
    other.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    other.get_by_label("New password again").fill(NEW_PASSWORD)
    other.get_by_role("button", name="Save").click()
    other.locator("#profile-notice").wait_for()

    page.keyboard.press("Enter")  # send: refused, the tab says why and keeps the text
    banner = page.locator("#session-ended")
    banner.wait_for()
    assert "Your session has ended" in banner.inner_text()
    assert page.input_value("#composer-text") == draft
    assert page.url.startswith(demo.base + "/inbox")  # not bounced to the login page mid-typing

    page.locator("#session-ended a", has_text="Sign in again").click()  # back to where the agent was
    page.wait_for_url(re.compile(".*/login.*"))
    assert f"next=/inbox/c/{conversation}" in page.url
    page.get_by_label("Email").fill("agent@demo.wa-inbox.test")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(rf".*/inbox.*{conversation}"))  # the conversation the agent was in
    page.locator("#thread-name", has_text="Maria Silva").wait_for()
    assert page.input_value("#composer-text") == draft  # the draft is back in its conversation
    page.locator("#composer-text").click()
    page.keyboard.press("Enter")
    page.locator("#thread-items .msg-outbound", has_text="Your order ships tomorrow").wait_for()
    page.wait_for_function("() => !localStorage.getItem('wa-inbox:draft:' + "
                           "document.getElementById('thread-wrap').getAttribute('data-conv'))")
    assert not csp_violations(seen)
    context.close()


def test_sign_in_after_a_refused_form_returns_to_the_page_not_to_its_post_url(browser, demo):
    """Signing in after a form was refused for an ended session landed on "405 Method Not Allowed"."""
    page = browser.new_page()
    page.goto(demo.base + "/login?next=" + "/inbox%3Fstatus%3Dall")
    page.get_by_label("Email").fill("admin@demo.wa-inbox.test")
    page.get_by_label("Password").fill(demo.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(demo.base + "/inbox?status=all")
    page.close()
