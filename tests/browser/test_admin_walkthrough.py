"""An admin connects a sandbox number, copies the webhook URL, tests the connection, syncs templates,
creates one, and watches it turn approved live (no reload) when the sandbox approves it.

Runs the real `inbox run --sandbox` and Chromium; the sandbox is driven only through its control
routes, as a user's own tooling would. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.integration.test_cli import ADMIN_ENV
from tests.support.process import inbox_process

NUMBER = {"phone_number_id": "106540352242922", "waba_id": "102290129340398",
          "display_phone_number": "+1 555-010-0001", "access_token": "EAAG-walkthrough-token-000000-AB12",
          "app_secret": "walkthrough-app-secret-0000000-CD34"}


def test_admin_connects_a_number_and_sees_a_new_template_approved_live(browser, screenshot, tmp_path):
    with inbox_process("run", "--sandbox", env=ADMIN_ENV, data_dir=tmp_path) as (process, base):
        context = browser.new_context(viewport={"width": 1280, "height": 720},
                                      permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base + "/login")
        page.get_by_label("Email").fill("ops@example.com")
        page.get_by_label("Password").fill("deploy password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/inbox")

        # 1. Add the number.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Numbers").click()
        expect(page.get_by_text("built-in Cloud API sandbox")).to_be_visible()
        form = page.locator("#add-number")
        form.get_by_label("Name").fill("Support line")
        form.get_by_label("Display phone number").fill(NUMBER["display_phone_number"])
        form.get_by_label("Phone number ID").fill(NUMBER["phone_number_id"])
        form.get_by_label("WhatsApp Business Account ID").fill("not digits")
        form.get_by_label("Access token").fill(NUMBER["access_token"])
        form.get_by_label("App secret").fill(NUMBER["app_secret"])
        form.get_by_role("button", name="Add number").click()
        expect(page.locator("#add-number").get_by_text("Meta's ids are digits only.")).to_be_visible()
        form = page.locator("#add-number")  # htmx swapped in the form with its errors; secrets are not kept
        form.get_by_label("WhatsApp Business Account ID").fill(NUMBER["waba_id"])
        form.get_by_label("Access token").fill(NUMBER["access_token"])
        form.get_by_label("App secret").fill(NUMBER["app_secret"])
        form.get_by_role("button", name="Add number").click()
        page.wait_for_url(re.compile(r"/admin/numbers/[0-9a-f]{24}$"))
        expect(page.locator("#sandbox-notice")).to_be_visible()
        assert NUMBER["access_token"] not in page.content() and NUMBER["app_secret"] not in page.content()

        # 2. Copy the webhook URL (and the verify token) with the copy buttons.
        page.get_by_role("button", name="Copy Callback URL").click()
        expect(page.locator(".copyable").first.get_by_role("status")).to_have_text("Copied")
        webhook_url = page.evaluate("navigator.clipboard.readText()")
        assert webhook_url == page.locator("#webhook-url").inner_text()
        assert re.fullmatch(re.escape(base) + r"/webhooks/whatsapp/[\w-]{20,}", webhook_url)
        page.get_by_role("button", name="Copy Verify token").click()
        assert page.evaluate("navigator.clipboard.readText()") == page.locator("#verify-token").inner_text()

        # The "Meta" side: register the same number in the sandbox with our webhook URL.
        with httpx.Client(base_url=base, timeout=10) as sandbox:
            registered = sandbox.post("/sandbox/control/numbers", json={
                **NUMBER, "webhook_url": webhook_url, "verified_name": "Lucky Shrub"})
            assert registered.status_code == 201
            sandbox.post("/sandbox/control/templates", json={
                "waba_id": NUMBER["waba_id"], "name": "hello_world", "language": "en_US", "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hello from Lucky Shrub"}]})

        # 3. Test the connection.
        page.get_by_role("button", name="Test connection").click()
        result = page.locator("#test-result")
        expect(result).to_contain_text("Connected: Meta knows this number as Lucky Shrub.")
        expect(result).to_contain_text("TIER_1K")
        expect(page.locator("#health")).to_contain_text("working")  # the health panel follows out of band
        screenshot(page, "admin-number-connected")

        # 4. Sync templates from Meta.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
        page.get_by_role("button", name="Sync from Meta").click()
        expect(page.get_by_text("Synced from Meta: 1 new")).to_be_visible()
        expect(page.get_by_role("row", name=re.compile("hello_world"))).to_contain_text("Approved")

        # 5. Create a template: first with examples that disagree with the placeholders.
        page.get_by_role("link", name="New template").click()
        page.get_by_label("Name", exact=True).fill("order_update")
        page.get_by_label("Language").fill("en_US")
        page.get_by_label("Category").select_option("UTILITY")
        page.get_by_label("Body text").fill("Hi {{1}}, your order {{2}} has shipped.")
        page.get_by_label("Examples").fill("Ana")
        page.get_by_label("Button 1 type").select_option("QUICK_REPLY")
        page.get_by_label("Label").first.fill("Thanks!")
        page.get_by_role("button", name="Submit for review").click()
        expect(page.locator("#e-f-body_examples")).to_contain_text("The body has 2 placeholder(s)")
        screenshot(page, "admin-template-field-errors")
        page.get_by_label("Examples").fill("Ana\n#1042")
        page.get_by_role("button", name="Submit for review").click()
        page.wait_for_url(re.compile(r"/admin/templates\?created="))
        row = page.get_by_role("row", name=re.compile("order_update"))
        status = row.locator("[data-role=status]")
        expect(status).to_have_text("Pending")

        # 6. The sandbox (Meta) approves it: the status webhook reaches us and the row changes live.
        with httpx.Client(base_url=base, timeout=10) as graph:
            listed = graph.get(f"/sandbox/graph/v23.0/{NUMBER['waba_id']}/message_templates",
                               params={"name": "order_update"},
                               headers={"Authorization": f"Bearer {NUMBER['access_token']}"}).json()
            meta_id = listed["data"][0]["id"]
            approved = graph.post(f"/sandbox/control/templates/{meta_id}/status", json={"status": "APPROVED"})
            assert approved.status_code == 200
        url_before = page.url
        expect(status).to_have_text("Approved", timeout=15_000)
        assert page.url == url_before  # no reload: pushed over the page's WebSocket
        expect(row).to_have_attribute("data-status", "APPROVED")
        screenshot(page, "admin-template-approved-live")
        assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
        context.close()
    logs = process.stdout.read()  # everything the server logged, at the default INFO level
    assert NUMBER["access_token"] not in logs and NUMBER["app_secret"] not in logs


def test_team_api_keys_and_labels_screens_in_chromium(browser, screenshot, tmp_path):
    with inbox_process("run", env=ADMIN_ENV, data_dir=tmp_path) as (_, base):
        context = browser.new_context(viewport={"width": 1280, "height": 720},
                                      permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base + "/login")
        page.get_by_label("Email").fill("ops@example.com")
        page.get_by_label("Password").fill("deploy password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/inbox")

        # Invite an agent: the one-time link is shown with a copy button.
        page.goto(base + "/admin/team")
        add = page.locator("#add-user")
        add.get_by_label("Email").fill("agent@example.com")
        add.get_by_label("Name").fill("Agent Ana")
        add.get_by_role("button", name="Add").click()
        expect(page.get_by_text("Invitation for agent@example.com")).to_be_visible()
        page.get_by_role("button", name="Copy Link").click()
        invite_url = page.evaluate("navigator.clipboard.readText()")
        assert invite_url.startswith(base + "/invite/")
        screenshot(page, "admin-team-invited")

        # An API key is shown once, copied, then only its prefix remains.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
        page.locator("#add-key").get_by_label("Name").fill("CRM sync")
        page.get_by_role("button", name="Create key").click()
        page.get_by_role("button", name="Copy API key").click()
        key = page.evaluate("navigator.clipboard.readText()")
        assert key.startswith("wai_")
        assert httpx.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        page.reload()
        assert key not in page.content() and key[:8] in page.content()

        # A label with its colour (set by admin.js, since the CSP forbids inline styles); errors via htmx.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Labels").click()
        page.locator("#add-item").get_by_role("button", name="Add").click()
        expect(page.locator("#add-item .field-error")).to_have_text("1 to 40 characters.")
        page.locator("#add-item").get_by_label("Name").fill("VIP")
        page.locator("#add-item").get_by_label("Colour").fill("#ff8800")
        page.locator("#add-item").get_by_role("button", name="Add").click()
        swatch = page.locator(".swatch").first
        expect(swatch).to_have_css("background-color", "rgb(255, 136, 0)")
        screenshot(page, "admin-labels")

        # The invited agent sets a password through the link, and admin screens are closed to them.
        agent = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        agent.goto(invite_url)
        agent.get_by_label("Password", exact=True).fill("agent password 1")
        agent.get_by_label("Password again").fill("agent password 1")
        agent.get_by_role("button", name="Save and sign in").click()
        agent.wait_for_url(base + "/inbox")
        assert agent.get_by_role("navigation", name="Main").get_by_role("link", name="Numbers").count() == 0
        assert agent.goto(base + "/admin/numbers").status == 403
        agent.context.close()
        assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
        context.close()
