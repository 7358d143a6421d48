"""WhatsApp notices and the typing indicator in Chromium: Meta's restriction webhook shows on the number
page and in the admins' badge on every page, "Mark as seen" clears it; typing a reply asks the server
for the typing indicator without disturbing the composer. Its own `inbox run --demo` (module scope):
this test replaces a number's app secret to sign Meta's webhook."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from app.demo import DEMO_ADMIN
from app.whatsapp.signature import HEADER, sign
from tests.browser.inbox_support import csp_violations, demo, sign_in, watch_console  # noqa: F401

SECRET = "browser-test-app-secret-0001"
RESTRICTION = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "account_update_account_restriction.json"


def test_restriction_notice_badge_mark_as_seen_and_typing(browser, screenshot, demo):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password, DEMO_ADMIN)
    page.goto(demo.base + "/admin/numbers")
    page.locator("a[href^='/admin/numbers/']").first.click()
    page.locator("#notices").wait_for()
    number_url = page.url
    page.get_by_label("New app secret").fill(SECRET)
    page.locator("#secrets").get_by_role("button", name="Replace").click()
    page.locator("#secrets .notice.success").wait_for()

    # Meta's account_update, signed with the number's app secret, to its webhook URL.
    path = urlsplit(page.locator("#webhook-url").inner_text().strip()).path
    body = RESTRICTION.read_bytes()
    answer = httpx.post(demo.base + path, content=body, timeout=10,
                        headers={HEADER: sign(SECRET, body), "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert json.loads(body)["entry"][0]["changes"][0]["field"] == "account_update"

    page.goto(number_url)
    notice = page.locator("#notices .notice-item.sev-critical.unseen")
    notice.wait_for()
    assert "Meta restricted this WhatsApp Business account from starting conversations" in notice.inner_text()
    badge = page.locator("#wa-notices .notice-pill", has_text="1 WhatsApp notice")
    badge.wait_for()  # loaded after the page
    screenshot(page, "whatsapp-notices-number-page")

    page.goto(demo.base + "/inbox")  # every page of an admin shows it
    badge.wait_for()
    screenshot(page, "whatsapp-notices-badge-inbox")
    page.locator("#wa-notices").get_by_role("button", name="Mark as seen").click()
    page.locator("#wa-notices .notice-pill").wait_for(state="detached")

    # Typing a reply in an open window: the composer asks for the indicator (204) and stays as it is.
    page.locator(".conv-row", has_text="Maria Silva").locator(".conv-link").click()
    page.locator("#thread-name", has_text="Maria Silva").wait_for()
    page.locator("#composer-text").click()
    with page.expect_response(lambda r: r.url.endswith("/typing") and r.request.method == "POST") as typing:
        page.keyboard.type("Hello Maria, let me check")
    assert typing.value.status == 204
    assert "body=" not in (typing.value.request.post_data or "")  # only the mode goes, never the text
    assert page.input_value("#composer-text") == "Hello Maria, let me check"
    assert page.locator("#toast").is_hidden()
    assert not csp_violations(seen), seen["errors"]
    assert not seen["dialogs"]
    context.close()
