"""Team, invitations, deactivation, password resets, teams of agents, API keys, and the vocabularies' API."""

from __future__ import annotations

import re

from bson import ObjectId

from app.domains.conversations.models import Conversation
from app.domains.workspaces.models import ApiKey, User
from tests.conftest import csrf_from, sign_in
from tests.support.admin import (  # noqa: F401 (fixtures)
    ADMIN_KEY,
    AGENT_EMAIL,
    AGENT_PASSWORD,
    AUTH,
    add_agent,
    admin_client,
    sandbox,
    sandbox_server,
)


async def _htmx(client, url: str, data: dict | None = None):
    token = csrf_from((await client.get("/admin/team")).text)
    return await client.post(url, data=data or {}, headers={"HX-Request": "true", "X-CSRFToken": token})


async def test_users_api_create_invite_update_and_bad_input(admin_client):
    created = await admin_client.post("/api/v1/users", json={"email": "Ana@Example.com", "name": "Ana", "role": "agent",
                                                             "password": "ana password"}, headers=AUTH)
    assert created.status_code == 201 and created.json()["email"] == "ana@example.com"
    assert created.json()["invite_url"] is None and "password" not in created.text
    invited = await admin_client.post("/api/v1/users", json={"email": "bo@example.com", "role": "admin"}, headers=AUTH)
    assert invited.status_code == 201 and invited.json()["invite_url"].startswith("http://testserver.local/invite/")
    for body, field in (({"email": "nope", "role": "agent", "password": "long enough"}, "email"),
                        ({"email": "c@example.com", "role": "owner"}, "role"),
                        ({"email": "c@example.com", "role": "agent", "password": "short"}, "password")):
        response = await admin_client.post("/api/v1/users", json=body, headers=AUTH)
        assert response.status_code == 422 and field in response.json()["details"], response.text
    duplicate = await admin_client.post("/api/v1/users", json={"email": "ana@example.com", "role": "agent"},
                                        headers=AUTH)
    assert duplicate.status_code == 409
    ana = created.json()["id"]
    renamed = await admin_client.patch(f"/api/v1/users/{ana}", json={"name": "Ana B", "role": "admin"}, headers=AUTH)
    assert renamed.json()["name"] == "Ana B" and renamed.json()["role"] == "admin"
    assert (await admin_client.patch(f"/api/v1/users/{ana}", json={}, headers=AUTH)).status_code == 422
    users = (await admin_client.get("/api/v1/users", headers=AUTH)).json()["data"]
    assert {u["email"] for u in users} == {"admin@example.com", "ana@example.com", "bo@example.com"}
    assert all("password_hash" not in u for u in users)


async def test_invitation_link_sets_password_and_signs_in_once(admin_client, client_factory):
    invited = (await admin_client.post("/api/v1/users", json={"email": "bo@example.com", "name": "Bo"},
                                       headers=AUTH)).json()
    path = invited["invite_url"].removeprefix("http://testserver.local")
    page = await admin_client.get(path)
    assert page.status_code == 200 and "bo@example.com" in page.text
    mismatch = await admin_client.post(path, data={"password": "bo password 1", "password_again": "other",
                                                   "_csrf_token": csrf_from(page.text)})
    assert mismatch.status_code == 422 and "Type the same password twice." in mismatch.text
    accepted = await admin_client.post(path, data={"password": "bo password 1", "password_again": "bo password 1",
                                                   "_csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/inbox"
    assert (await admin_client.get("/inbox")).status_code == 200
    assert (await admin_client.get(path)).status_code == 404  # spent
    assert (await admin_client.get("/invite/not-a-real-token")).status_code == 404
    await admin_client.post("/logout", data={"_csrf_token": csrf_from((await admin_client.get("/inbox")).text)})
    assert (await sign_in(admin_client, "bo@example.com", "bo password 1")).status_code == 303


async def test_deactivated_users_session_and_api_key_stop_at_once(admin_client, client_factory):
    agent = await add_agent(admin_client)
    people = admin_client.app.state.runtime.people
    _, agent_key = await people.create_api_key(agent.workspace_id, "agent tool", "agent", agent.id)
    # This client becomes the agent's browser; the admin acts through its API key.
    agent_browser = admin_client
    agent_browser.cookies.clear()
    await sign_in(agent_browser, AGENT_EMAIL, AGENT_PASSWORD)
    assert (await agent_browser.get("/inbox")).status_code == 200
    bearer = {"Authorization": f"Bearer {agent_key}"}
    assert (await agent_browser.get("/api/v1/me", headers=bearer)).status_code == 200
    response = await admin_client.patch(f"/api/v1/users/{agent.id}", json={"active": False}, headers=AUTH)
    assert response.status_code == 200 and response.json()["active"] is False
    after = await agent_browser.get("/inbox", follow_redirects=False)
    assert after.status_code in (302, 303) and after.headers["location"].startswith("/login")
    api = await agent_browser.get("/api/v1/me", headers=bearer)
    assert api.status_code == 401 and api.json()["error_code"] == "INVALID_API_KEY"
    again = await sign_in(agent_browser, AGENT_EMAIL, AGENT_PASSWORD)
    assert again.status_code == 401
    await admin_client.patch(f"/api/v1/users/{agent.id}", json={"active": True}, headers=AUTH)
    assert (await agent_browser.get("/api/v1/me", headers=bearer)).status_code == 200


async def test_last_admin_and_self_protection(admin_client):
    admin = await User.find_one(User.email == "admin@example.com")
    demote = await admin_client.patch(f"/api/v1/users/{admin.id}", json={"role": "agent"}, headers=AUTH)
    assert demote.status_code == 409 and demote.json()["error_code"] == "LAST_ADMIN"
    myself = await admin_client.patch(f"/api/v1/users/{admin.id}", json={"active": False}, headers=AUTH)
    assert myself.status_code == 409 and myself.json()["error_code"] == "SELF_DEACTIVATION"


async def test_demoted_admin_keys_lose_admin_rights(admin_client):
    second = (await admin_client.post("/api/v1/users", json={"email": "two@example.com", "role": "admin",
                                                             "password": "two password"}, headers=AUTH)).json()
    people = admin_client.app.state.runtime.people
    user = await User.get(second["id"])
    _, key = await people.create_api_key(user.workspace_id, "two's key", "admin", user.id)
    headers = {"Authorization": f"Bearer {key}"}
    assert (await admin_client.get("/api/v1/users", headers=headers)).status_code == 200
    await admin_client.patch(f"/api/v1/users/{second['id']}", json={"role": "agent"}, headers=AUTH)
    assert (await admin_client.get("/api/v1/users", headers=headers)).status_code == 403


async def test_password_reset_link_and_admin_set_password(admin_client):
    agent = await add_agent(admin_client)
    reset = await admin_client.post(f"/api/v1/users/{agent.id}/reset-password", headers=AUTH)
    path = reset.json()["reset_url"].removeprefix("http://testserver.local")
    page = await admin_client.get(path)
    assert "Choose a new password" in page.text
    await admin_client.post(path, data={"password": "brand new pass", "password_again": "brand new pass",
                                        "_csrf_token": csrf_from(page.text)})
    await admin_client.post("/logout", data={"_csrf_token": csrf_from((await admin_client.get("/inbox")).text)})
    assert (await sign_in(admin_client, AGENT_EMAIL, "brand new pass")).status_code == 303
    await admin_client.post("/logout", data={"_csrf_token": csrf_from((await admin_client.get("/inbox")).text)})
    set_now = await admin_client.patch(f"/api/v1/users/{agent.id}", json={"password": "set by admin 1"}, headers=AUTH)
    assert set_now.status_code == 200
    assert (await sign_in(admin_client, AGENT_EMAIL, "set by admin 1")).status_code == 303


async def test_team_page_invite_deactivate_reset_and_teams(admin_client):
    page = await admin_client.get("/admin/team")
    assert page.status_code == 200 and "admin@example.com" in page.text
    invited = await _htmx(admin_client, "/admin/team/users", {"email": "cy@example.com", "name": "Cy", "role": "agent",
                                                              "mode": "invite"})
    assert invited.status_code == 200 and 'id="one-time-link"' in invited.text and "/invite/" in invited.text
    assert 'id="teams" aria-labelledby="teams-title" hx-swap-oob="true"' in invited.text  # new member choice
    assert "cy@example.com</span></label>" in invited.text
    no_password = await _htmx(admin_client, "/admin/team/users", {"email": "dee@example.com", "role": "agent",
                                                                  "mode": "password", "password": ""})
    assert no_password.status_code == 422 and "Enter a password" in no_password.text
    cy = await User.find_one(User.email == "cy@example.com")
    deactivated = await _htmx(admin_client, f"/admin/team/users/{cy.id}/active", {"active": "false"})
    assert "Deactivated" in deactivated.text and (await User.get(cy.id)).active is False
    reset_inactive = await _htmx(admin_client, f"/admin/team/users/{cy.id}/reset")
    assert reset_inactive.status_code == 409
    await _htmx(admin_client, f"/admin/team/users/{cy.id}/active", {"active": "true"})
    reset = await _htmx(admin_client, f"/admin/team/users/{cy.id}/reset")
    assert "Password reset link" in reset.text
    admin = await User.find_one(User.email == "admin@example.com")
    last = await _htmx(admin_client, f"/admin/team/users/{admin.id}", {"name": "Boss", "role": "agent"})
    assert last.status_code == 409 and "at least one active admin" in last.text
    empty_team = await _htmx(admin_client, "/admin/team/teams", {"name": ""})
    assert empty_team.status_code == 422
    team = await _htmx(admin_client, "/admin/team/teams", {"name": "Support", "member_ids": str(cy.id)})
    assert team.status_code == 200 and 'value="Support"' in team.text
    team_id = re.search(r'id="team-([0-9a-f]+)"', team.text).group(1)
    await Conversation.get_motor_collection().insert_one({"workspace_id": cy.workspace_id, "team_id": ObjectId(team_id)})
    deleted = await _htmx(admin_client, f"/admin/team/teams/{team_id}/delete")
    assert f'id="team-{team_id}"' not in deleted.text
    assert (await Conversation.get_motor_collection().find_one({}))["team_id"] is None


async def test_teams_api(admin_client):
    agent = await add_agent(admin_client)
    made = await admin_client.post("/api/v1/teams", json={"name": "Billing", "member_ids": [str(agent.id)]},
                                   headers=AUTH)
    assert made.status_code == 201 and made.json()["member_ids"] == [str(agent.id)]
    unknown = await admin_client.post("/api/v1/teams", json={"name": "X", "member_ids": ["6b0000000000000000000000"]},
                                      headers=AUTH)
    assert unknown.status_code == 422
    dup = await admin_client.post("/api/v1/teams", json={"name": "Billing"}, headers=AUTH)
    assert dup.status_code == 409
    team_id = made.json()["id"]
    renamed = await admin_client.patch(f"/api/v1/teams/{team_id}", json={"name": "Invoices"}, headers=AUTH)
    assert renamed.json()["name"] == "Invoices" and renamed.json()["member_ids"] == [str(agent.id)]
    assert (await admin_client.delete(f"/api/v1/teams/{team_id}", headers=AUTH)).status_code == 204
    assert (await admin_client.get("/api/v1/teams", headers=AUTH)).json()["data"] == []


async def test_api_keys_api_shown_once_last_used_and_revoke(admin_client, caplog):
    created = await admin_client.post("/api/v1/api-keys", json={"name": "CRM", "role": "agent"}, headers=AUTH)
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("wai_") and created.json()["prefix"] == key[:8]
    listed = (await admin_client.get("/api/v1/api-keys", headers=AUTH)).json()["data"]
    assert key not in str(listed) and ADMIN_KEY not in str(listed)
    crm = next(k for k in listed if k["name"] == "CRM")
    assert crm["last_used_at"] is None
    assert (await admin_client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})).status_code == 200
    crm = next(k for k in (await admin_client.get("/api/v1/api-keys", headers=AUTH)).json()["data"]
               if k["name"] == "CRM")
    assert crm["last_used_at"] is not None
    assert (await admin_client.post("/api/v1/api-keys", json={"name": "", "role": "agent"},
                                    headers=AUTH)).status_code == 422
    assert (await admin_client.post("/api/v1/api-keys", json={"name": "x", "role": "root"},
                                    headers=AUTH)).status_code == 422
    assert (await admin_client.delete(f"/api/v1/api-keys/{crm['id']}", headers=AUTH)).status_code == 204
    revoked = await admin_client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert revoked.status_code == 401
    assert key not in caplog.text
    record = await ApiKey.get(crm["id"])
    assert record.user_id is not None  # tied to the admin who made it: stops if they are deactivated


async def test_api_keys_page_shows_new_key_once(admin_client):
    page = await admin_client.get("/admin/api-keys")
    assert page.status_code == 200 and "Create a key" in page.text
    made = await _htmx(admin_client, "/admin/api-keys", {"name": "Zapier", "role": "admin"})
    key = re.search(r'<code id="new-api-key"[^>]*>(wai_[^<]+)</code>', made.text).group(1)
    assert 'data-copy="new-api-key"' in made.text
    again = await admin_client.get("/admin/api-keys")
    assert key not in again.text and "Zapier" in again.text and key[:8] in again.text
    key_id = re.search(r'id="key-([0-9a-f]+)"', again.text).group(1)
    revoked = await _htmx(admin_client, f"/admin/api-keys/{key_id}/revoke")
    assert "Revoked" in revoked.text
    assert (await admin_client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})).status_code == 401
    bad = await _htmx(admin_client, "/admin/api-keys", {"name": "", "role": "agent"})
    assert bad.status_code == 422


async def test_catalog_api_rules_and_scoping(admin_client):
    attr = await admin_client.post("/api/v1/attributes", json={"name": "Customer tier", "type": "list",
                                                               "options": ["gold", "silver", "gold"]}, headers=AUTH)
    assert attr.status_code == 201 and attr.json()["key"] == "customer_tier" and attr.json()["options"] == ["gold",
                                                                                                            "silver"]
    for body in ({"name": "Phone", "key": "phone"}, {"name": "X", "type": "colour"}, {"name": "L", "type": "list"}):
        assert (await admin_client.post("/api/v1/attributes", json=body, headers=AUTH)).status_code == 422
    canned = await admin_client.post("/api/v1/canned-responses", json={
        "shortcut": "/Tier", "text": "Hi {{contact.name}}, you are {{ contact.customer_tier }}."}, headers=AUTH)
    assert canned.status_code == 201 and canned.json()["shortcut"] == "tier"
    unknown = await admin_client.post("/api/v1/canned-responses", json={"shortcut": "x", "text": "{{order.id}}"},
                                      headers=AUTH)
    assert unknown.status_code == 422 and "Unknown variable {{order.id}}" in unknown.json()["details"]["text"]
    label = await admin_client.post("/api/v1/labels", json={"name": "VIP", "colour": "#AA0000"}, headers=AUTH)
    assert label.status_code == 201 and label.json()["colour"] == "#aa0000"
    assert (await admin_client.post("/api/v1/labels", json={"name": "VIP"}, headers=AUTH)).status_code == 409
    label_id = label.json()["id"]
    patched = await admin_client.patch(f"/api/v1/labels/{label_id}", json={"name": "Gold"}, headers=AUTH)
    assert patched.json()["name"] == "Gold" and patched.json()["colour"] == "#aa0000"
    admin = await User.find_one(User.email == "admin@example.com")
    await Conversation.get_motor_collection().insert_one({"workspace_id": admin.workspace_id, "labels": [label_id]})
    assert (await admin_client.delete(f"/api/v1/labels/{label_id}", headers=AUTH)).status_code == 204
    assert (await Conversation.get_motor_collection().find_one({}))["labels"] == []
    people = admin_client.app.state.runtime.people
    workspace, user = await people.create_workspace("Other", "other@example.com", "other password")
    _, key = await people.create_api_key(workspace.id, "other", "admin", user.id)
    other = {"Authorization": f"Bearer {key}"}
    for url in (f"/api/v1/attributes/{attr.json()['id']}", f"/api/v1/canned-responses/{canned.json()['id']}"):
        assert (await admin_client.get(url, headers=other)).status_code == 404
        assert (await admin_client.patch(url, json={"name": "x"} if "attributes" in url else {"text": "x"},
                                         headers=other)).status_code == 404
        assert (await admin_client.delete(url, headers=other)).status_code == 404
    for path in ("teams", "canned-responses", "labels", "attributes"):
        assert (await admin_client.get(f"/api/v1/{path}", headers=other)).json()["data"] == [], path
    theirs = await admin_client.get("/api/v1/users", headers=other)
    assert [u["email"] for u in theirs.json()["data"]] == ["other@example.com"]
    their_keys = await admin_client.get("/api/v1/api-keys", headers=other)
    assert [k["name"] for k in their_keys.json()["data"]] == ["other"]
    admin_user = await User.find_one(User.email == "admin@example.com")
    assert (await admin_client.patch(f"/api/v1/users/{admin_user.id}", json={"name": "x"},
                                     headers=other)).status_code == 404
    agent = await add_agent(admin_client)
    _, agent_key = await people.create_api_key(agent.workspace_id, "agent", "agent", agent.id)
    for path in ("users", "teams", "api-keys", "canned-responses", "labels", "attributes"):
        response = await admin_client.get(f"/api/v1/{path}", headers={"Authorization": f"Bearer {agent_key}"})
        assert response.status_code == 403, path
