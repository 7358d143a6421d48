"""An admin signs in through Chromium and sees the inbox shell."""

from __future__ import annotations

from tests.integration.test_cli import ADMIN_ENV
from tests.support.process import inbox_process


def test_sign_in_through_chromium_shows_inbox_shell(browser, screenshot, tmp_path):
    with inbox_process("run", env=ADMIN_ENV, data_dir=tmp_path) as (_, base):
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base + "/inbox")
        assert "/login" in page.url
        page.get_by_label("Email").fill("ops@example.com")
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("alert").inner_text() == "Wrong email or password."
        page.get_by_label("Password").fill("deploy password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/inbox")
        assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Numbers").is_visible()
        assert page.get_by_role("region", name="Conversations").is_visible()
        assert page.evaluate("typeof htmx") == "object"  # vendored htmx loaded under the CSP
        screenshot(page, "foundation-inbox-shell")
        assert not [e for e in errors if "Content Security Policy" in e]
        page.close()
