"""WhatsApp numbers through the JSON API: connect, 409, test connection, edit, rotate, health, profile."""

from __future__ import annotations

import io
import logging

from PIL import Image

from app.domains.accounts.models import WhatsAppAccount
from tests.support.admin import (  # noqa: F401 (fixtures)
    APP_SECRET,
    AUTH,
    NUMBER,
    TOKEN,
    add_agent,
    admin_client,
    register_in_sandbox,
    sandbox,
    sandbox_server,
)


def _png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (18, 140, 126)).save(out, format="PNG")
    return out.getvalue()


async def _connect(client, **overrides) -> dict:
    response = await client.post("/api/v1/accounts", json={**NUMBER, **overrides}, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()


async def test_connect_number_returns_webhook_details_and_no_secret(admin_client, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    created = await _connect(admin_client)
    assert created["webhook_url"].startswith("http://testserver.local/webhooks/whatsapp/")
    assert len(created["verify_token"]) >= 24
    assert created["mps"] == 80 and created["enabled"] is True and created["sandbox"] is True
    assert created["access_token_last4"] == TOKEN[-4:] and created["app_secret_last4"] == APP_SECRET[-4:]
    assert created["health"]["token_state"] == "unknown"
    listed = await admin_client.get("/api/v1/accounts", headers=AUTH)
    one = await admin_client.get(f"/api/v1/accounts/{created['id']}", headers=AUTH)
    printed = capfd.readouterr()  # log lines are in caplog (tests/support/logs.py); stdout and stderr in case
    for text in (str(created), listed.text, one.text, caplog.text, printed.out, printed.err):
        assert TOKEN not in text and APP_SECRET not in text
    stored = await WhatsAppAccount.get(created["id"])
    raw = stored.model_dump_json()
    assert TOKEN not in raw and APP_SECRET not in raw  # encrypted at rest
    runtime = admin_client.app.state.runtime
    assert runtime.accounts.access_token(stored) == TOKEN and runtime.accounts.app_secret(stored) == APP_SECRET


async def test_duplicate_number_is_409_even_from_another_workspace(admin_client):
    await _connect(admin_client)
    again = await admin_client.post("/api/v1/accounts", json={**NUMBER, "name": "Again"}, headers=AUTH)
    assert again.status_code == 409 and again.json()["error_code"] == "NUMBER_ALREADY_CONNECTED"
    people = admin_client.app.state.runtime.people
    workspace, user = await people.create_workspace("Other", "other@example.com", "other password")
    _, key = await people.create_api_key(workspace.id, "other", "admin", user.id)
    other = await admin_client.post("/api/v1/accounts", json=NUMBER, headers={"Authorization": f"Bearer {key}"})
    assert other.status_code == 409


async def test_bad_input_gives_field_errors(admin_client):
    response = await admin_client.post("/api/v1/accounts", json={**NUMBER, "waba_id": "abc", "name": " ",
                                                                  "mps": 5000}, headers=AUTH)
    assert response.status_code == 422
    assert set(response.json()["details"]) == {"waba_id", "name", "mps"}
    typo = await admin_client.post("/api/v1/accounts", json={**NUMBER, "tokn": "x"}, headers=AUTH)
    assert typo.status_code in (400, 422) and typo.json()["error_code"] == "VALIDATION_ERROR"
    bad_type = await admin_client.post("/api/v1/accounts", json={**NUMBER, "mps": "fast"}, headers=AUTH)
    assert bad_type.status_code in (400, 422)


async def test_the_display_number_must_be_a_phone_number(admin_client):
    for typed in ("call me maybe", "12", "+1 555 010 2000 ext. 7"):
        answer = await admin_client.post("/api/v1/accounts", json={**NUMBER, "display_phone_number": typed},
                                         headers=AUTH)
        assert answer.status_code == 422, typed
        assert "country code" in answer.json()["details"]["display_phone_number"]
    created = await _connect(admin_client)
    edit = await admin_client.patch(f"/api/v1/accounts/{created['id']}", json={"display_phone_number": "call me"},
                                    headers=AUTH)
    assert edit.status_code == 422 and set(edit.json()["details"]) == {"display_phone_number"}
    ok = await admin_client.patch(f"/api/v1/accounts/{created['id']}", json={"display_phone_number": "+44 20 7946 0958"},
                                  headers=AUTH)
    assert ok.status_code == 200 and ok.json()["display_phone_number"] == "+44 20 7946 0958"


async def test_test_connection_reports_meta_view_and_updates_health(admin_client, sandbox):
    state, _ = sandbox
    register_in_sandbox(state, verified_name="Lucky Shrub", quality_rating="YELLOW", messaging_limit_tier="TIER_2K")
    created = await _connect(admin_client)
    result = await admin_client.post(f"/api/v1/accounts/{created['id']}/test", headers=AUTH)
    assert result.status_code == 200
    body = result.json()
    assert body["ok"] is True and body["phone_number"]["verified_name"] == "Lucky Shrub"
    assert body["phone_number"]["quality_rating"] == "YELLOW"
    assert body["phone_number"]["messaging_limit_tier"] == "TIER_2K"
    assert body["phone_number"]["throughput"] == "STANDARD" and body["phone_number"]["status"] == "CONNECTED"
    health = (await admin_client.get(f"/api/v1/accounts/{created['id']}", headers=AUTH)).json()["health"]
    assert health["token_state"] == "ok" and health["quality_rating"] == "YELLOW" and health["last_checked_at"]


async def test_wrong_token_gives_metas_error_in_words_not_500(admin_client, sandbox, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    state, _ = sandbox
    register_in_sandbox(state)
    created = await _connect(admin_client, access_token="EAAG-wrong-token-000000000000-NOPE")
    result = await admin_client.post(f"/api/v1/accounts/{created['id']}/test", headers=AUTH)
    assert result.status_code == 200
    body = result.json()
    assert body["ok"] is False and body["error"]["code"] == 190
    assert "access token" in body["message"] and "new one" in body["message"]
    assert body["error"]["meta_message"]  # Meta's own words are shown too
    account = (await admin_client.get(f"/api/v1/accounts/{created['id']}", headers=AUTH)).json()
    assert account["health"]["token_state"] == "invalid" and account["health"]["last_check_error"]
    printed = capfd.readouterr()
    for text in (caplog.text, result.text, printed.out, printed.err):
        assert "EAAG-wrong-token" not in text


async def test_unreachable_graph_api_is_explained(client_factory, sandbox):
    from tests.support.admin import ADMIN

    client = await client_factory(settings={**ADMIN, "graph_api_url": "http://127.0.0.1:9/sandbox/graph"})
    created = (await client.post("/api/v1/accounts", json=NUMBER, headers=AUTH)).json()
    body = (await client.post(f"/api/v1/accounts/{created['id']}/test", headers=AUTH)).json()
    assert body["ok"] is False and "Could not reach the Graph API" in body["message"]


async def test_edit_rotate_disable_enable_and_delete(admin_client, sandbox):
    state, _ = sandbox
    created = await _connect(admin_client, access_token="EAAG-old-token-0000000000000-OLD1")
    url = f"/api/v1/accounts/{created['id']}"
    empty = await admin_client.patch(url, json={}, headers=AUTH)
    assert empty.status_code == 422
    edited = (await admin_client.patch(url, json={"name": "Sales", "mps": 20}, headers=AUTH)).json()
    assert (edited["name"], edited["mps"], edited["webhook_url"]) == ("Sales", 20, created["webhook_url"])
    register_in_sandbox(state)  # Meta only knows the new token
    assert (await admin_client.post(f"{url}/test", headers=AUTH)).json()["ok"] is False
    rotated = (await admin_client.patch(url, json={"access_token": TOKEN}, headers=AUTH)).json()
    assert rotated["access_token_last4"] == TOKEN[-4:] and rotated["health"]["token_state"] == "unknown"
    assert (await admin_client.post(f"{url}/test", headers=AUTH)).json()["ok"] is True
    assert (await admin_client.patch(url, json={"enabled": False}, headers=AUTH)).json()["enabled"] is False
    assert (await admin_client.patch(url, json={"enabled": True}, headers=AUTH)).json()["enabled"] is True
    for loose in (0, 1, "false", "no"):  # booleans are booleans: 0 is not false
        refused = await admin_client.patch(url, json={"enabled": loose}, headers=AUTH)
        assert refused.status_code == 422 and "enabled" in refused.text, (loose, refused.text)
    assert (await admin_client.get(url, headers=AUTH)).json()["enabled"] is True
    second = await _connect(admin_client, phone_number_id="106540352242999", name="Second")
    assert len((await admin_client.get("/api/v1/accounts", headers=AUTH)).json()["data"]) == 2
    assert (await admin_client.delete(f"/api/v1/accounts/{second['id']}", headers=AUTH)).status_code == 204
    assert (await admin_client.get(f"/api/v1/accounts/{second['id']}", headers=AUTH)).status_code == 404


async def test_rotation_listener_is_told(admin_client):
    seen = []

    async def listener(account):
        seen.append(account.id)

    admin_client.app.state.runtime.accounts.credentials_listeners.append(listener)
    created = await _connect(admin_client)
    await admin_client.patch(f"/api/v1/accounts/{created['id']}", json={"app_secret": "new-app-secret-0000000-9999"},
                             headers=AUTH)
    assert [str(i) for i in seen] == [created["id"]]


async def test_other_workspace_ids_are_404_and_agents_403(admin_client):
    created = await _connect(admin_client)
    people = admin_client.app.state.runtime.people
    workspace, user = await people.create_workspace("Other", "other@example.com", "other password")
    _, key = await people.create_api_key(workspace.id, "other", "admin", user.id)
    other = {"Authorization": f"Bearer {key}"}
    url = f"/api/v1/accounts/{created['id']}"
    assert (await admin_client.get(url, headers=other)).status_code == 404
    assert (await admin_client.patch(url, json={"name": "x"}, headers=other)).status_code == 404
    assert (await admin_client.post(f"{url}/test", headers=other)).status_code == 404
    assert (await admin_client.delete(url, headers=other)).status_code == 404
    assert (await admin_client.get("/api/v1/accounts/not-an-id", headers=AUTH)).status_code == 404
    assert (await admin_client.get("/api/v1/accounts", headers=other)).json()["data"] == []
    agent = await add_agent(admin_client)
    _, agent_key = await people.create_api_key(agent.workspace_id, "agent", "agent", agent.id)
    forbidden = await admin_client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {agent_key}"})
    assert forbidden.status_code == 403 and forbidden.json()["error_code"] == "ADMIN_REQUIRED"


async def test_business_profile_view_edit_and_photo(admin_client, sandbox):
    state, _ = sandbox
    register_in_sandbox(state)
    created = await _connect(admin_client)
    url = f"/api/v1/accounts/{created['id']}/profile"
    assert (await admin_client.get(url, headers=AUTH)).json()["vertical"] == "UNDEFINED"
    saved = await admin_client.patch(url, json={"about": "Succulents, shipped", "email": "hi@luckyshrub.com",
                                                "websites": ["https://luckyshrub.com"], "vertical": "RETAIL",
                                                "address": "1 Main St", "description": "Plants"}, headers=AUTH)
    assert saved.status_code == 200, saved.text
    assert saved.json()["about"] == "Succulents, shipped" and saved.json()["websites"] == ["https://luckyshrub.com"]
    bad = await admin_client.patch(url, json={"email": "nope", "websites": ["ftp://x", "a", "b"],
                                              "vertical": "SPACESHIPS", "about": "x" * 140}, headers=AUTH)
    assert bad.status_code == 422 and {"email", "websites", "vertical", "about"} <= set(bad.json()["details"])
    photo = await admin_client.post(f"{url}/photo", files={"photo": ("me.png", _png(640), "image/png")}, headers=AUTH)
    assert photo.status_code == 200 and photo.json()["profile_picture_url"]


async def test_profile_photo_checks_size_type_and_dimensions(admin_client, sandbox):
    state, _ = sandbox
    register_in_sandbox(state)
    created = await _connect(admin_client)
    url = f"/api/v1/accounts/{created['id']}/profile/photo"
    big = _png(640) + b"\0" * (5 * 1024 * 1024)
    oversize = await admin_client.post(url, files={"photo": ("big.png", big, "image/png")}, headers=AUTH)
    assert oversize.status_code == 413 and oversize.json()["error_code"] == "PHOTO_TOO_LARGE"
    fake = await admin_client.post(url, files={"photo": ("me.png", b"GIF89a not really", "image/png")}, headers=AUTH)
    assert fake.status_code == 422 and fake.json()["error_code"] == "PHOTO_TYPE"
    small = await admin_client.post(url, files={"photo": ("s.png", _png(64), "image/png")}, headers=AUTH)
    assert small.status_code == 422 and small.json()["error_code"] == "PHOTO_TOO_SMALL"
    missing = await admin_client.post(url, files={"other": ("s.png", b"x", "image/png")}, headers=AUTH)
    assert missing.status_code == 422
    assert not state.media._items  # refused before anything was uploaded to Meta


async def test_profile_errors_from_meta_are_words(admin_client, sandbox):
    created = await _connect(admin_client)  # not registered in the sandbox: Meta does not know the token
    response = await admin_client.get(f"/api/v1/accounts/{created['id']}/profile", headers=AUTH)
    assert response.status_code == 502 and response.json()["error_code"] == "META_ERROR"
    assert "access token" in response.json()["error"]

