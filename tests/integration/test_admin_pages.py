"""The admin screens as a browser without JavaScript (classic forms) and as htmx (fragments) uses them."""

from __future__ import annotations

import io
import logging
import re

import pytest
from PIL import Image

from app.domains.accounts.models import WhatsAppAccount
from tests.conftest import csrf_from, sign_in
from tests.support.admin import (  # noqa: F401 (fixtures)
    AGENT_EMAIL,
    AGENT_PASSWORD,
    APP_SECRET,
    NUMBER,
    TOKEN,
    add_agent,
    admin_client,
    register_in_sandbox,
    sandbox,
    sandbox_server,
)

ADMIN_PAGES = ["/admin/numbers", "/admin/templates", "/admin/templates/new", "/admin/team", "/admin/api-keys",
               "/admin/canned", "/admin/labels", "/admin/attributes"]
ADMIN_POSTS = ["/admin/numbers", "/admin/templates/sync", "/admin/templates/new", "/admin/team/users",
               "/admin/team/teams", "/admin/api-keys", "/admin/canned", "/admin/labels", "/admin/attributes"]


async def _form_post(client, page_url: str, url: str, data: dict, **kwargs):
    page = await client.get(page_url)
    return await client.post(url, data={**data, "_csrf_token": csrf_from(page.text)}, **kwargs)


async def _htmx(client, url: str, data: dict | None = None, files=None):
    page = await client.get("/admin/numbers")
    token = csrf_from(page.text)
    return await client.post(url, data=data or {}, files=files, headers={"HX-Request": "true", "X-CSRFToken": token})


async def _add_number(client, **overrides) -> str:
    response = await _form_post(client, "/admin/numbers", "/admin/numbers", {**NUMBER, "mps": "80", **overrides},
                                follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"].rsplit("/", 1)[1]


async def test_agents_get_403_on_every_admin_page_and_action(admin_client):
    await add_agent(admin_client)
    await admin_client.post("/logout", data={"_csrf_token": csrf_from((await admin_client.get("/inbox")).text)})
    await sign_in(admin_client, AGENT_EMAIL, AGENT_PASSWORD)
    inbox = await admin_client.get("/inbox")
    assert "/admin/numbers" not in inbox.text  # no admin nav for agents
    token = csrf_from(inbox.text)
    for url in ADMIN_PAGES:
        assert (await admin_client.get(url)).status_code == 403, url
    for url in ADMIN_POSTS:
        response = await admin_client.post(url, data={"_csrf_token": token})
        assert response.status_code == 403, url


async def test_signed_out_visitors_are_sent_to_sign_in(client_factory, sandbox):
    client = await client_factory()
    for url in ADMIN_PAGES:
        response = await client.get(url, follow_redirects=False)
        assert response.status_code in (302, 303) and response.headers["location"].startswith("/login"), url


async def test_add_number_page_shows_webhook_url_verify_token_steps_and_never_secrets(admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    page = await admin_client.get("/admin/numbers")
    assert "Add a number" in page.text and "Cloud API sandbox" in page.text
    account_id = await _add_number(admin_client)
    shown = await admin_client.get(f"/admin/numbers/{account_id}")
    account = await WhatsAppAccount.get(account_id)
    webhook_url = f"http://testserver.local/webhooks/whatsapp/{account.webhook_key}"
    assert f'<code id="webhook-url" aria-labelledby="webhook-url-label">{webhook_url}</code>' in shown.text
    assert account.verify_token in shown.text and 'data-copy="verify-token"' in shown.text
    assert "WhatsApp → Configuration" in shown.text and "Verify and save" in shown.text
    assert 'id="sandbox-notice"' in shown.text
    assert "…" + TOKEN[-4:] in shown.text and "…" + APP_SECRET[-4:] in shown.text
    listing = await admin_client.get("/admin/numbers")
    for text in (shown.text, listing.text, caplog.text):
        assert TOKEN not in text and APP_SECRET not in text
    assert "<script>" not in shown.text.split("</head>")[1]  # no inline script under the CSP


async def test_add_number_form_errors_and_duplicate(admin_client):
    bad = await _form_post(admin_client, "/admin/numbers", "/admin/numbers", {**NUMBER, "waba_id": "WABA", "mps": "x"})
    assert bad.status_code == 422
    assert "Meta&#39;s ids are digits only." in bad.text and "A whole number between 1 and 1000" in bad.text
    assert TOKEN not in bad.text  # secrets are not echoed back into the form
    await _add_number(admin_client)
    duplicate = await _htmx(admin_client, "/admin/numbers", {**NUMBER, "mps": "80"})
    assert duplicate.status_code == 409 and "already connected" in duplicate.text
    assert duplicate.text.lstrip().startswith("<form id=\"add-number\"")  # the fragment, not the page


async def test_test_connection_shows_result_or_metas_words(admin_client, sandbox):
    state, _ = sandbox
    account_id = await _add_number(admin_client)
    failed = await _htmx(admin_client, f"/admin/numbers/{account_id}/test")
    assert failed.status_code == 200 and 'id="test-result"' in failed.text
    assert "The connection test failed." in failed.text and "code 190" in failed.text
    register_in_sandbox(state, verified_name="Lucky Shrub")
    ok = await _htmx(admin_client, f"/admin/numbers/{account_id}/test")
    assert "Connected" in ok.text and "Lucky Shrub" in ok.text and "TIER_1K" in ok.text
    assert '<section class="panel" id="health" aria-labelledby="health-title" hx-swap-oob="true">' in ok.text
    page = await admin_client.get(f"/admin/numbers/{account_id}")
    assert "working" in page.text  # health panel: token state


async def test_edit_rotate_enable_disable_delete_pages(admin_client):
    account_id = await _add_number(admin_client)
    base = f"/admin/numbers/{account_id}"
    edited = await _htmx(admin_client, base, {"name": "Sales", "display_phone_number": "+1 555 010 2000", "waba_id": "12",
                                              "mps": "0"})
    assert edited.status_code == 422 and "between 1 and 1000" in edited.text
    edited = await _htmx(admin_client, base, {"name": "Sales", "display_phone_number": "+1 555 010 2000", "waba_id": "12",
                                              "mps": "40"})
    assert edited.status_code == 200 and "Saved." in edited.text
    empty = await _htmx(admin_client, f"{base}/secrets", {"access_token": "", "app_secret": ""})
    assert empty.status_code == 422
    rotated = await _htmx(admin_client, f"{base}/secrets", {"access_token": "EAAG-new-token-00000000000-NEW9"})
    assert rotated.status_code == 200 and "…NEW9" in rotated.text and "EAAG-new-token" not in rotated.text
    disabled = await _htmx(admin_client, f"{base}/enabled", {"enabled": "false"})
    assert "Disabled" in disabled.text and (await WhatsAppAccount.get(account_id)).enabled is False
    await _htmx(admin_client, f"{base}/enabled", {"enabled": "true"})
    assert (await WhatsAppAccount.get(account_id)).enabled is True
    deleted = await _htmx(admin_client, f"{base}/delete")
    assert deleted.headers.get("hx-redirect") == "/admin/numbers"
    assert (await admin_client.get(base)).status_code == 404


def _png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


async def test_business_profile_page(admin_client, sandbox):
    state, _ = sandbox
    register_in_sandbox(state)
    account_id = await _add_number(admin_client)
    url = f"/admin/numbers/{account_id}/profile"
    page = await admin_client.get(url)
    assert page.status_code == 200 and 'name="about"' in page.text
    fields = {"about": "Plants", "description": "", "address": "", "email": "hi@example.com", "website_1":
              "https://example.com", "website_2": "", "vertical": "RETAIL"}
    oversize = await _htmx(admin_client, url, fields,
                           files={"photo": ("big.png", _png(640) + b"\0" * (5 * 1024 * 1024 + 1), "image/png")})
    assert oversize.status_code == 413 and "at most 5 MB" in oversize.text
    saved = await _htmx(admin_client, url, fields, files={"photo": ("me.png", _png(400), "image/png")})
    assert saved.status_code == 200 and "Saved at Meta." in saved.text
    assert state.numbers[NUMBER["phone_number_id"]].profile["about"] == "Plants"
    assert state.numbers[NUMBER["phone_number_id"]].profile["profile_picture_url"]
    bad = await _htmx(admin_client, url, {**fields, "email": "not-an-email"})
    assert bad.status_code == 422 and "Enter an email address" in bad.text


async def test_profile_page_when_meta_refuses(admin_client):
    account_id = await _add_number(admin_client)  # the sandbox does not know this token
    page = await admin_client.get(f"/admin/numbers/{account_id}/profile")
    assert page.status_code == 200 and "access token" in page.text and 'name="about"' not in page.text


async def test_templates_pages_sync_create_with_field_errors_and_delete(admin_client, sandbox):
    state, _ = sandbox
    register_in_sandbox(state)
    account_id = await _add_number(admin_client)
    state.seed_template(NUMBER["waba_id"], "hello_world", "en_US", "UTILITY", [{"type": "BODY", "text": "Hello"}])
    state.seed_template(NUMBER["waba_id"], "old_offer", "en", "MARKETING", [{"type": "BODY", "text": "x"}],
                        status="REJECTED")
    synced = await _htmx(admin_client, "/admin/templates/sync")
    assert "2 new" in synced.text and "hello_world" in synced.text and 'data-status="REJECTED"' in synced.text
    filtered = await admin_client.get("/admin/templates?status=APPROVED", headers={"HX-Request": "true"})
    assert "hello_world" in filtered.text and "old_offer" not in filtered.text
    form = {"account_id": account_id, "name": "order_update", "language": "en_US", "category": "UTILITY",
            "header_format": "NONE", "body": "Hi {{1}}, order {{2}} shipped.", "body_examples": "Ana",
            "button_type_1": "URL", "button_text_1": "Track", "button_value_1": "https://x.example/t/{{1}}"}
    bad = await _htmx(admin_client, "/admin/templates/new", form)
    assert bad.status_code == 422
    assert re.search(r'id="e-f-body_examples">The body has 2 placeholder', bad.text)
    assert 'id="e-f-button_value_1"' not in bad.text and "Give an example value for the {{1}}" in bad.text
    created = await _htmx(admin_client, "/admin/templates/new",
                          {**form, "body_examples": "Ana\n#1042", "button_example_1": "1042"})
    assert created.status_code == 200 and created.headers["hx-redirect"].startswith("/admin/templates?created=")
    listing = await admin_client.get("/admin/templates")
    match = re.search(r'<tr id="tpl-([0-9a-f]+)" data-status="PENDING"', listing.text)
    assert match and "order_update" in listing.text
    deleted = await _htmx(admin_client, f"/admin/templates/{match.group(1)}/delete")
    assert deleted.status_code == 200 and deleted.text == ""
    assert [t.name for t in state.templates.list(NUMBER["waba_id"])] == ["hello_world", "old_offer"]


async def test_new_template_page_without_numbers_says_so(admin_client):
    page = await admin_client.get("/admin/templates/new")
    assert "Add a WhatsApp number first" in page.text
    listing = await admin_client.get("/admin/templates")
    assert "Add a WhatsApp number first" in listing.text


@pytest.mark.parametrize("kind,good,bad,shown", [
    ("canned", {"shortcut": "/thanks", "text": "Thanks {{contact.name}}!"}, {"shortcut": "no spaces", "text": "{{x}}"},
     "/thanks"),
    ("labels", {"name": "VIP", "colour": "#FFAA00"}, {"name": "", "colour": "red"}, "#ffaa00"),
    ("attributes", {"name": "Customer tier", "type": "list", "options": "gold\nsilver"},
     {"name": "Tier", "type": "list", "options": ""}, "customer_tier"),
])
async def test_catalog_pages(admin_client, kind, good, bad, shown):
    page = await admin_client.get(f"/admin/{kind}")
    assert page.status_code == 200
    wrong = await _htmx(admin_client, f"/admin/{kind}", bad)
    assert wrong.status_code == 422 and 'class="field-error"' in wrong.text
    made = await _htmx(admin_client, f"/admin/{kind}", good)
    assert made.status_code == 200 and shown in made.text
    item_id = re.search(r'id="item-([0-9a-f]+)"', made.text).group(1)
    duplicate = await _htmx(admin_client, f"/admin/{kind}", good)
    assert duplicate.status_code == 409
    edit = {**good, "name": "Renamed"} if kind != "canned" else {**good, "text": "Renamed {{agent.name}}"}
    edited = await _htmx(admin_client, f"/admin/{kind}/{item_id}", edit)
    assert edited.status_code == 200 and "Renamed" in edited.text
    gone = await _htmx(admin_client, f"/admin/{kind}/{item_id}/delete")
    assert f'id="item-{item_id}"' not in gone.text


async def test_nav_links_every_admin_screen(admin_client):
    page = await admin_client.get("/admin/numbers")
    for url in ("/admin/numbers", "/admin/templates", "/admin/team", "/admin/api-keys", "/admin/canned",
                "/admin/labels", "/admin/attributes"):
        assert f'href="{url}"' in page.text
    assert '<script src="/static/js/admin.js" defer></script>' in page.text


async def test_health_panel_shows_what_meta_and_the_pipelines_recorded(admin_client):
    from app.db import utcnow
    from app.domains.accounts.models import SendError

    account_id = await _add_number(admin_client)
    account = await WhatsAppAccount.get(account_id)
    account.health.last_webhook_at = utcnow()
    account.health.last_send_error = SendError(code=131047, title="Re-engagement message",
                                               detail="More than 24 hours have passed")
    account.health.quality_rating = "YELLOW"
    account.health.messaging_limit_tier = "TIER_10K"
    account.health.token_state = "invalid"
    await account.save()
    page = await admin_client.get(f"/admin/numbers/{account_id}")
    health = page.text.split('id="health"')[1].split("</section>")[0]
    assert account.health.last_webhook_at.strftime("%Y-%m-%d %H:%M") in health
    assert "Re-engagement message (code 131047): More than 24 hours have passed" in health
    assert "YELLOW" in health and "TIER_10K" in health and "rejected by Meta: enter a new one" in health
