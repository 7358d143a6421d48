"""Templates through the JSON API and the service: sync (all pages), create with rules, delete, webhooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.domains.templates.drafts import ButtonDraft, TemplateDraft
from app.domains.templates.models import MessageTemplate
from app.errors import ValidationFailed
from app.whatsapp.webhook_values import TemplateCategoryUpdate, TemplateQualityUpdate, TemplateStatusUpdate
from tests.support.admin import (  # noqa: F401 (fixtures)
    AUTH,
    NUMBER,
    add_agent,
    admin_client,
    register_in_sandbox,
    sandbox,
    sandbox_server,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
GOOD = {"name": "order_update", "language": "en_US", "category": "UTILITY",
        "body": "Hi {{1}}, your order {{2}} has shipped.", "body_examples": ["Ana", "#1042"],
        "header": {"format": "TEXT", "text": "Order {{1}}", "example": "#1042"}, "footer": "Lucky Shrub",
        "buttons": [{"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}", "example": "1042"},
                    {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+1 555 010 0002"}]}


@pytest.fixture
async def account(admin_client, sandbox):
    state, _ = sandbox
    register_in_sandbox(state)
    response = await admin_client.post("/api/v1/accounts", json=NUMBER, headers=AUTH)
    return response.json()


@pytest.fixture
def published(admin_client) -> list:
    """Live events of service calls made from the test itself (the app's Redis is bound to the client's loop)."""
    events: list = []

    async def capture(ws, event, **data):
        events.append((event, data))

    admin_client.app.state.runtime.templates.live.publish = capture
    return events


def _value(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())["entry"][0]["changes"][0]["value"]


async def test_sync_reads_every_page_and_removes_deleted_ones(admin_client, sandbox, account):
    state, _ = sandbox
    for i in range(30):  # Meta pages by 25: two pages
        state.seed_template(NUMBER["waba_id"], f"promo_{i:02d}", "en_US", "MARKETING",
                            [{"type": "BODY", "text": f"Offer {i}"}])
    state.seed_template(NUMBER["waba_id"], "gone_later", "en_US", "UTILITY", [{"type": "BODY", "text": "x"}],
                        status="REJECTED")
    report = (await admin_client.post("/api/v1/templates/sync", headers=AUTH)).json()
    assert report["created"] == 31 and report["errors"] == [] and report["wabas"] == [NUMBER["waba_id"]]
    listed = (await admin_client.get("/api/v1/templates", headers=AUTH)).json()["data"]
    assert len(listed) == 31
    rejected = (await admin_client.get("/api/v1/templates?status=rejected", headers=AUTH)).json()["data"]
    assert [t["name"] for t in rejected] == ["gone_later"] and rejected[0]["rejected_reason"] is None
    state.templates.delete(NUMBER["waba_id"], "gone_later")
    again = (await admin_client.post("/api/v1/templates/sync", headers=AUTH)).json()
    assert (again["created"], again["updated"], again["removed"]) == (0, 30, 1)
    marketing = (await admin_client.get("/api/v1/templates?category=marketing&language=en_US", headers=AUTH)).json()
    assert len(marketing["data"]) == 30


async def test_sync_reports_metas_error_per_account(admin_client, sandbox):
    await admin_client.post("/api/v1/accounts", json=NUMBER, headers=AUTH)  # unknown to the sandbox
    report = (await admin_client.post("/api/v1/templates/sync", headers=AUTH)).json()
    assert report["created"] == 0 and report["errors"][0]["code"] == 190


async def test_create_submits_metas_shape_and_lists_pending(admin_client, sandbox, account):
    state, _ = sandbox
    response = await admin_client.post("/api/v1/templates", json={**GOOD, "account_id": account["id"]}, headers=AUTH)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "PENDING" and created["meta_id"]
    stored = state.templates.get(created["meta_id"])
    assert stored.name == "order_update" and stored.body_vars == ["1", "2"]
    components = {c["type"]: c for c in stored.components}
    assert components["BODY"]["example"] == {"body_text": [["Ana", "#1042"]]}
    assert components["HEADER"]["example"] == {"header_text": ["#1042"]}
    assert components["BUTTONS"]["buttons"][0]["example"] == ["https://shop.example/track/1042"]
    assert components["BUTTONS"]["buttons"][1]["phone_number"] == "+15550100002"
    duplicate = await admin_client.post("/api/v1/templates", json={**GOOD, "account_id": account["id"]}, headers=AUTH)
    assert duplicate.status_code == 409 and duplicate.json()["details"] == {"name": "Already used in this language."}


async def test_named_parameters(admin_client, account, sandbox):
    state, _ = sandbox
    body = {"account_id": account["id"], "name": "welcome", "language": "en", "category": "MARKETING",
            "body": "Hello {{first_name}}, welcome to {{shop}}!", "body_examples": {"first_name": "Ana", "shop": "Lucky"}}
    created = (await admin_client.post("/api/v1/templates", json=body, headers=AUTH)).json()
    assert created["parameter_format"] == "NAMED"
    stored = state.templates.get(created["meta_id"])
    assert stored.parameter_format == "NAMED"
    assert stored.components[0]["example"]["body_text_named_params"][0] == {"param_name": "first_name",
                                                                           "example": "Ana"}


@pytest.mark.parametrize("change,field", [
    ({"body_examples": ["Ana"]}, "body.examples"),
    ({"body_examples": ["Ana", "#1", "extra"]}, "body.examples"),
    ({"body": "{{1}} is your code {{2}}."}, "body.text"),
    ({"body": "Hi {{1}}{{2}} there."}, "body.text"),
    ({"body": "Hi {{2}} and {{1}} there."}, "body.text"),
    ({"body": "Hi {{1}} and {{name}} there."}, "body.text"),
    ({"body": "Hi {{1} there {{2}}."}, "body.text"),
    ({"body": ""}, "body.text"),
    ({"body": "x" * 1025}, "body.text"),
    ({"name": "Order Update"}, "name"),
    ({"language": "english"}, "language"),
    ({"category": "PROMO"}, "category"),
    ({"header": {"format": "TEXT", "text": "Order {{1}}"}}, "header.example"),
    ({"header": {"format": "TEXT", "text": "Order", "example": "x"}}, "header.example"),
    ({"header": {"format": "TEXT", "text": "x" * 61}}, "header.text"),
    ({"header": {"format": "IMAGE"}}, "header.sample"),
    ({"footer": "Reply {{1}}"}, "footer"),
    ({"buttons": [{"type": "URL", "text": "Go", "url": "https://x.example/{{1}}/more"}]}, "buttons[0].url"),
    ({"buttons": [{"type": "URL", "text": "Go", "url": "https://x.example/{{1}}"}]}, "buttons[0].example"),
    ({"buttons": [{"type": "PHONE_NUMBER", "text": "Call", "phone_number": "555"}]}, "buttons[0].phone_number"),
    ({"buttons": [{"type": "QUICK_REPLY", "text": "x" * 26}]}, "buttons[0].text"),
    ({"buttons": [{"type": "QUICK_REPLY", "text": f"B{i}"} for i in range(11)]}, "buttons"),
    ({"buttons": [{"type": "PHONE_NUMBER", "text": "A", "phone_number": "+15550100"},
                  {"type": "PHONE_NUMBER", "text": "B", "phone_number": "+15550101"}]}, "buttons[1].type"),
    ({"buttons": [{"type": "QUICK_REPLY", "text": "A"}, {"type": "PHONE_NUMBER", "text": "B",
                   "phone_number": "+15550100"}, {"type": "QUICK_REPLY", "text": "C"}]}, "buttons"),
])
async def test_rule_breaks_are_field_errors_before_meta_sees_them(admin_client, account, sandbox, change, field):
    state, _ = sandbox
    response = await admin_client.post("/api/v1/templates", json={**GOOD, "account_id": account["id"], **change},
                                       headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["error_code"] == "TEMPLATE_INVALID"
    assert field in response.json()["details"], response.json()["details"]
    assert state.templates.list(NUMBER["waba_id"]) == []


def test_placeholder_example_mismatch_message_says_what_is_wrong():
    draft = TemplateDraft(account_id="x", name="a", language="en", category="UTILITY",
                          body="Hi {{1}}, order {{2}} is late.", body_examples=["Ana"])
    with pytest.raises(ValidationFailed) as caught:
        draft.definition()
    assert caught.value.details["body.examples"].startswith("The body has 2 placeholder(s) ({{1}}, {{2}}) but 1")


def test_authentication_templates_use_metas_fixed_text():
    draft = TemplateDraft(name="login_code", language="en", category="AUTHENTICATION",
                          buttons=[ButtonDraft(type="OTP", text="Copy code")])
    definition = draft.definition()
    assert definition["components"][0] == {"type": "BODY", "add_security_recommendation": True}


async def test_missing_account_and_wrong_media_sample(admin_client, account, published):
    no_account = await admin_client.post("/api/v1/templates", json=GOOD, headers=AUTH)
    assert no_account.status_code == 422 and "account_id" in no_account.json()["details"]
    runtime = admin_client.app.state.runtime
    draft = TemplateDraft(account_id=account["id"], name="with_image", language="en", category="MARKETING",
                          body="See our new {{1}} today.", body_examples=["plants"], header_format="IMAGE")
    with pytest.raises(ValidationFailed) as caught:
        await runtime.templates.create(await _workspace_of(account["id"]), draft,
                                       sample=(b"%PDF-1.4", "x.pdf", "application/pdf"))
    assert "header.sample" in caught.value.details


async def _workspace_of(account_id):
    from app.domains.accounts.models import WhatsAppAccount

    return (await WhatsAppAccount.get(account_id)).workspace_id


async def test_media_header_sample_is_uploaded_as_handle(admin_client, account, sandbox, published):
    state, _ = sandbox
    runtime = admin_client.app.state.runtime
    draft = TemplateDraft(account_id=account["id"], name="with_image", language="en", category="MARKETING",
                          body="See our new {{1}} today.", body_examples=["plants"], header_format="IMAGE")
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    template = await runtime.templates.create(await _workspace_of(account["id"]), draft,
                                              sample=(png, "x.png", "image/png"))
    handle = template.components[0]["example"]["header_handle"][0]
    assert state.media.get(handle) is not None


async def test_delete_at_meta_and_here(admin_client, account, sandbox):
    state, _ = sandbox
    created = (await admin_client.post("/api/v1/templates", json={**GOOD, "account_id": account["id"]},
                                       headers=AUTH)).json()
    assert (await admin_client.delete(f"/api/v1/templates/{created['id']}", headers=AUTH)).status_code == 204
    assert state.templates.get(created["meta_id"]) is None
    assert (await admin_client.get(f"/api/v1/templates/{created['id']}", headers=AUTH)).status_code == 404
    # Already deleted at Meta: still removed here.
    again = (await admin_client.post("/api/v1/templates", json={**GOOD, "account_id": account["id"]},
                                     headers=AUTH)).json()
    state.templates.delete(NUMBER["waba_id"], "order_update")
    assert (await admin_client.delete(f"/api/v1/templates/{again['id']}", headers=AUTH)).status_code == 204


async def test_webhook_updates_status_quality_category_and_publish_live(admin_client, account, sandbox, published):
    runtime = admin_client.app.state.runtime
    workspace_id = await _workspace_of(account["id"])
    created = (await admin_client.post("/api/v1/templates", json={**GOOD, "account_id": account["id"]},
                                       headers=AUTH)).json()
    value = {**_value("template_status_rejected.json"), "message_template_id": int(created["meta_id"]),
             "message_template_name": "order_update", "message_template_language": "en_US"}
    updated = await runtime.templates.apply_status_update(workspace_id, NUMBER["waba_id"], TemplateStatusUpdate(**value))
    assert updated.status == "REJECTED" and updated.rejected_reason == "INVALID_FORMAT"
    assert "placed next to each other" in updated.rejection_detail
    approved = {**_value("template_status_approved.json"), "message_template_id": int(created["meta_id"])}
    updated = await runtime.templates.apply_status_update(workspace_id, NUMBER["waba_id"],
                                                          TemplateStatusUpdate(**approved))
    assert updated.status == "APPROVED" and updated.rejected_reason is None
    quality = {**_value("template_quality_update.json"), "message_template_id": int(created["meta_id"])}
    updated = await runtime.templates.apply_quality_update(workspace_id, NUMBER["waba_id"],
                                                           TemplateQualityUpdate(**quality))
    assert updated.quality_score == "YELLOW"
    category = {**_value("template_category_update.json"), "message_template_id": int(created["meta_id"])}
    updated = await runtime.templates.apply_category_update(workspace_id, NUMBER["waba_id"],
                                                            TemplateCategoryUpdate(**category))
    assert (updated.category, updated.previous_category) == ("MARKETING", "UTILITY")
    events = [e for e, _ in published]
    assert events.count("template.updated") == 5  # created + 4 updates
    assert published[-1][1]["template_id"] == created["id"]
    listed = (await admin_client.get("/api/v1/templates", headers=AUTH)).json()["data"][0]
    assert (listed["status"], listed["quality_score"], listed["category"]) == ("APPROVED", "YELLOW", "MARKETING")


async def test_webhook_for_template_made_elsewhere_and_deleted(admin_client, account, published):
    runtime = admin_client.app.state.runtime
    workspace_id = await _workspace_of(account["id"])
    update = TemplateStatusUpdate(**_value("template_status_approved.json"))
    stub = await runtime.templates.apply_status_update(workspace_id, NUMBER["waba_id"], update)
    assert (stub.name, stub.status, stub.category) == ("order_confirmation", "APPROVED", "UTILITY")
    again = await runtime.templates.apply_status_update(workspace_id, NUMBER["waba_id"], update)  # repeated delivery
    assert again.id == stub.id and await MessageTemplate.find_all().count() == 1
    deleted = update.model_copy(update={"event": "DELETED"})
    assert await runtime.templates.apply_status_update(workspace_id, NUMBER["waba_id"], deleted) is None
    assert await MessageTemplate.find_all().count() == 0
    assert [event for event, _ in published] == ["template.updated", "template.updated", "template.deleted"]
    # Another workspace's template with the same Meta id is untouched by this workspace's webhook.
    assert await runtime.templates.apply_quality_update(
        workspace_id, NUMBER["waba_id"], TemplateQualityUpdate(**_value("template_quality_update.json"))) is None


async def test_scoping_and_agents(admin_client, account):
    created = (await admin_client.post("/api/v1/templates", json={**GOOD, "account_id": account["id"]},
                                       headers=AUTH)).json()
    people = admin_client.app.state.runtime.people
    workspace, user = await people.create_workspace("Other", "other@example.com", "other password")
    _, key = await people.create_api_key(workspace.id, "other", "admin", user.id)
    other = {"Authorization": f"Bearer {key}"}
    assert (await admin_client.get(f"/api/v1/templates/{created['id']}", headers=other)).status_code == 404
    assert (await admin_client.delete(f"/api/v1/templates/{created['id']}", headers=other)).status_code == 404
    assert (await admin_client.get("/api/v1/templates", headers=other)).json()["data"] == []
    cross = await admin_client.post("/api/v1/templates", json={**GOOD, "account_id": account["id"]}, headers=other)
    assert cross.status_code == 422 and "account_id" in cross.json()["details"]
    agent = await add_agent(admin_client)
    _, agent_key = await people.create_api_key(agent.workspace_id, "agent", "agent", agent.id)
    for method, url in (("GET", "/api/v1/templates"), ("POST", "/api/v1/templates/sync"),
                        ("DELETE", f"/api/v1/templates/{created['id']}")):
        response = await admin_client.request(method, url, headers={"Authorization": f"Bearer {agent_key}"})
        assert response.status_code == 403


async def test_periodic_job_syncs_every_workspace(admin_client, sandbox, account, published):
    from workers import tasks
    from workers.settings import CRON_JOBS

    state, _ = sandbox
    state.seed_template(NUMBER["waba_id"], "hello_world", "en_US", "UTILITY", [{"type": "BODY", "text": "Hello"}])
    assert any(job.coroutine is tasks.sync_templates for job in CRON_JOBS)
    totals = await tasks.sync_templates({"runtime": admin_client.app.state.runtime})
    assert totals == {"workspaces": 1, "created": 1, "updated": 0, "removed": 0, "errors": 0}
    assert [t.name for t in await MessageTemplate.find_all().to_list()] == ["hello_world"]


async def test_disconnecting_the_last_number_of_a_waba_removes_its_templates(admin_client, account, sandbox):
    state, _ = sandbox
    state.seed_template(NUMBER["waba_id"], "hello_world", "en_US", "UTILITY", [{"type": "BODY", "text": "Hello"}])
    await admin_client.post("/api/v1/templates/sync", headers=AUTH)
    second = (await admin_client.post("/api/v1/accounts", json={**NUMBER, "phone_number_id": "106540352242999"},
                                      headers=AUTH)).json()
    await admin_client.delete(f"/api/v1/accounts/{second['id']}", headers=AUTH)
    assert len((await admin_client.get("/api/v1/templates", headers=AUTH)).json()["data"]) == 1  # WABA still used
    await admin_client.delete(f"/api/v1/accounts/{account['id']}", headers=AUTH)
    assert (await admin_client.get("/api/v1/templates", headers=AUTH)).json()["data"] == []
