"""The admin screen for event webhooks: add (secret once), errors next to fields, log, disable reason, actions."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr

from app.db import utcnow
from app.domains.subscriptions.models import Subscription
from app.domains.workspaces.models import Role, User
from tests.conftest import csrf_from, sign_in

SETTINGS = {"admin_email": "admin@example.com", "admin_password": SecretStr("admin password"),
            "allow_private_webhook_targets": True}


async def test_admin_adds_an_endpoint_sees_the_secret_once_and_the_disable_reason(client_factory):
    client = await client_factory(settings=SETTINGS)
    await sign_in(client, "admin@example.com", "admin password")
    page = await client.get("/admin/subscriptions")
    assert page.status_code == 200 and 'href="/admin/subscriptions"' in page.text and "Add an endpoint" in page.text
    token = csrf_from(page.text)

    bad = await client.post("/admin/subscriptions", data={"_csrf_token": token, "url": "ftp://x",
                                                          "events": ["message.received"]})
    assert bad.status_code == 422 and "The endpoint must be an https:// URL" in bad.text
    empty = await client.post("/admin/subscriptions", data={"_csrf_token": token, "url": "http://127.0.0.1:9/h"})
    assert empty.status_code == 422 and "Choose at least one event" in empty.text

    made = await client.post("/admin/subscriptions", data={
        "_csrf_token": token, "url": "http://127.0.0.1:9/hook", "description": "CRM",
        "events": ["message.received", "message.failed"]})
    assert made.status_code == 201
    subscription = await Subscription.find_one({})
    assert "whsec_" in made.text and "shown this once" in made.text
    again = await client.get(f"/admin/subscriptions/{subscription.id}")
    assert "whsec_" not in again.text and "Nothing delivered yet" in again.text

    await Subscription.get_motor_collection().update_one({"_id": subscription.id}, {"$set": {
        "active": False, "disabled_reason": "Disabled: every delivery failed for 24 hours (last answer: HTTP 500).",
        "disabled_at": utcnow(), "failing_since": utcnow() - timedelta(days=1)}})
    disabled = await client.get(f"/admin/subscriptions/{subscription.id}")
    assert "every delivery failed for 24 hours" in disabled.text and "Enable again" in disabled.text
    listed = await client.get("/admin/subscriptions")
    assert "Disabled" in listed.text and "HTTP 500" in listed.text

    token = csrf_from(disabled.text)
    enabled = await client.post(f"/admin/subscriptions/{subscription.id}/active",
                                data={"_csrf_token": token, "active": "true"}, follow_redirects=False)
    assert enabled.status_code == 303 and (await Subscription.get(subscription.id)).active
    rotated = await client.post(f"/admin/subscriptions/{subscription.id}/rotate", data={"_csrf_token": token})
    assert rotated.status_code == 200 and "whsec_" in rotated.text
    edited = await client.post(f"/admin/subscriptions/{subscription.id}", follow_redirects=False, data={
        "_csrf_token": token, "url": "http://127.0.0.1:9/other", "description": "", "events": ["contact.created"]})
    assert edited.status_code == 303
    assert (await Subscription.get(subscription.id)).events == ["contact.created"]
    gone = await client.post(f"/admin/subscriptions/{subscription.id}/delete", data={"_csrf_token": token},
                             follow_redirects=False)
    assert gone.status_code == 303 and await Subscription.find_one({}) is None


async def test_agents_cannot_open_the_screen(client_factory):
    client = await client_factory(settings=SETTINGS)
    admin = await User.find_one({})
    await client.app.state.runtime.people.create_user(admin.workspace_id, "agent@example.com", "agent password",
                                                      Role.AGENT, "Agent")
    await sign_in(client, "agent@example.com", "agent password")
    page = await client.get("/admin/subscriptions")
    assert page.status_code == 403
    assert 'href="/admin/subscriptions"' not in (await client.get("/inbox")).text
