"""The interactive API reference at /api/docs: vendored Swagger UI, no CDN, works under our strict CSP."""

from __future__ import annotations

import re

from tests.integration.test_cli import ADMIN_ENV
from tests.support.process import inbox_process


def test_api_docs_render_and_try_a_call_under_the_csp(browser, screenshot, tmp_path):
    with inbox_process("run", env=ADMIN_ENV, data_dir=tmp_path) as (_, base):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        outside: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(base) else None)
        page.goto(base + "/api/docs")
        page.wait_for_selector(".swagger-ui .info .title")
        assert "wa-inbox API" in page.locator(".swagger-ui .info .title").inner_text()
        assert page.locator(".opblock").count() > 30

        page.get_by_role("button", name=re.compile("Authorize")).first.click()
        page.locator(".auth-container input").first.fill(ADMIN_ENV["INBOX_ADMIN_API_KEY"])
        page.locator(".auth-btn-wrapper button.authorize").click()
        page.locator(".btn-done").click()
        me = page.locator("#operations-workspace-ApiV1MeMe")
        me.locator(".opblock-summary").click()
        me.get_by_role("button", name="Try it out").click()
        me.get_by_role("button", name="Execute").click()
        me.locator(".live-responses-table tbody .response-col_status").first.wait_for()
        assert "200" in me.locator(".live-responses-table tbody .response-col_status").first.inner_text()
        assert "ops@example.com" in me.locator(".live-responses-table").inner_text()
        screenshot(page, "api-docs")
        assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
        assert outside == []  # nothing loaded from a CDN
        page.close()
