"""Access by number and team, and the supervisor role (issue 14, item 22).

An agent an admin limited to some numbers sees those numbers' conversations, their teams' and
their own, everywhere: the API (every route that names a conversation or a message, from the
served OpenAPI document), the media download, the inbox's list, search and pages, and the live
feed. A supervisor sees everything and reassigns, without the admin screens.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

import app.demo
from app.db import utcnow
from app.domains.accounts.services import NewAccount
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation
from app.domains.conversations.services import ConversationService
from app.domains.media.store import MediaStore
from app.domains.messages.models import MediaRef, Message
from app.domains.workspaces.models import Role
from tests.integration.test_api_tenancy import BODIES
from tests.integration.test_inbox_live import (  # noqa: F401 - live_app is a fixture
    conversation_id,
    csrf,
    live_app,
    open_socket,
    signed_in,
    wait_for,
)
from tests.support.api_world import build_world, message


@pytest.fixture
async def shop(client_factory):
    """A workspace with two numbers. Its agent Ann sees only "Main": her team Sales's conversation
    and the one assigned to her on "Other" too, but not Other's third."""
    client = await client_factory(settings={"api_rate_limit_per_minute": 100_000})
    runtime = client.app.state.runtime
    world = await build_world(runtime, "Two numbers")
    other = await runtime.accounts.create(world.workspace_id, NewAccount(
        name="Other", phone_number_id="88000001", waba_id="88000002", display_phone_number="+15550009999",
        access_token="EAAG-other", app_secret="other-secret"))
    now = utcnow()
    made = {}
    for name in ("hidden", "team", "mine"):
        contact, _ = await ContactService().upsert(world.workspace_id, wa_id=f"4477{len(made):07d}",
                                                   profile_name=f"Zed {name.title()}")
        conversation, _ = await ConversationService().open_for(world.workspace_id, other.id, contact.id)
        await message(world, conversation, "inbound", now - timedelta(minutes=5), text=f"secret {name}")
        failed = await message(world, conversation, "outbound", now - timedelta(minutes=4), status="failed",
                               reached=("accepted", "failed"), error_code=131026)
        changes = {"last_message_at": now - timedelta(minutes=5), "window_expires_at": now + timedelta(hours=20),
                   "team_id": world.team.id if name == "team" else None,
                   "assignee_id": world.agent.id if name == "mine" else world.admin.id}
        await Conversation.get_motor_collection().update_one({"_id": conversation.id}, {"$set": changes})
        made[name] = (await Conversation.get(conversation.id), failed)
    hidden_message = made["hidden"][1]
    stored = await MediaStore().put(world.workspace_id, b"\x89PNG hidden", kind="image", content_type="image/png",
                                    message_id=hidden_message.id)
    await Message.get_motor_collection().update_one({"_id": hidden_message.id}, {"$set": {
        "media": MediaRef(stored_file_id=stored.id, state="stored", mime_type="image/png").model_dump()}})
    admin = {"Authorization": f"Bearer {world.key}"}
    answer = await client.patch(f"/api/v1/users/{world.agent.id}", headers=admin,
                                json={"all_numbers": False, "number_ids": [str(world.account.id)]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["all_numbers"] is False and answer.json()["number_ids"] == [str(world.account.id)]
    return client, world, made, str(stored.id)


async def test_an_agent_lists_only_their_numbers_teams_and_own_conversations(shop):
    client, world, made, _ = shop
    listed = {c["id"] for c in (await client.get("/api/v1/conversations?limit=100", headers=world.agent_auth)
                                ).json()["data"]}
    assert listed == {str(c.id) for c in world.conversations} | {str(made["team"][0].id), str(made["mine"][0].id)}
    everything = {c["id"] for c in (await client.get("/api/v1/conversations?limit=100", headers=world.auth)
                                    ).json()["data"]}
    assert str(made["hidden"][0].id) in everything  # the admin sees it
    by_number = await client.get(f"/api/v1/conversations?account_id={made['hidden'][0].account_id}",
                                 headers=world.agent_auth)
    assert {c["id"] for c in by_number.json()["data"]} == {str(made["team"][0].id), str(made["mine"][0].id)}


async def test_every_route_naming_a_hidden_conversation_or_message_answers_404_and_changes_nothing(shop):
    client, world, made, media_id = shop
    hidden, hidden_message = made["hidden"]
    ids = {"conversations": str(hidden.id), "messages": str(hidden_message.id)}
    document = (await client.get("/schema/openapi.json")).json()
    tried = []
    for path, item in document["paths"].items():
        segments = path.split("/")
        if not path.startswith("/api/v1/") or not any(s.startswith("{") and segments[i - 1] in ids
                                                       for i, s in enumerate(segments)):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            url = "/".join(ids[segments[i - 1]] if s.startswith("{") else s for i, s in enumerate(segments))
            kwargs: dict = {"headers": world.agent_auth}
            if operation.get("requestBody", {}).get("content"):
                kwargs["json"] = BODIES.get((method.upper(), path), {})
            answer = await client.request(method.upper(), url, **kwargs)
            assert answer.status_code == 404, (method, path, answer.status_code, answer.text[:300])
            assert answer.json()["error_code"] == "NOT_FOUND"
            tried.append((method, path))
    assert len(tried) >= 7, tried  # read, change, notes, messages, send, reaction, retry ...
    fresh = await Conversation.get(hidden.id)
    assert fresh.status.value == "open" and fresh.assignee_id == world.admin.id
    assert await Message.find(Message.conversation_id == hidden.id).count() == 2  # no note, no send, no reaction
    # Its customer's picture too; the same file is there for the admin.
    assert (await client.get(f"/media/{media_id}", headers=world.agent_auth)).status_code == 404
    assert (await client.get(f"/media/{media_id}", headers=world.auth)).status_code == 200
    # The team's and her own conversations on that number are hers to work.
    for name in ("team", "mine"):
        conversation, failed = made[name]
        answer = await client.post(f"/api/v1/conversations/{conversation.id}/notes", headers=world.agent_auth,
                                   json={"text": "on it"})
        assert answer.status_code == 201, answer.text
        assert (await client.get(f"/api/v1/messages/{failed.id}", headers=world.agent_auth)).status_code == 200


async def test_an_agent_cannot_take_another_agents_conversation_a_supervisor_can(shop):
    client, world, made, _ = shop
    runtime = client.app.state.runtime
    taken = made["team"][0]  # assigned to the admin, visible to Ann through her team
    refused = await client.patch(f"/api/v1/conversations/{taken.id}", headers=world.agent_auth,
                                 json={"assignee_id": str(world.agent.id)})
    assert refused.status_code == 403 and refused.json()["error_code"] == "REASSIGN_NOT_ALLOWED"
    assert (await Conversation.get(taken.id)).assignee_id == world.admin.id
    free = world.conversations[0]  # unassigned: anyone who sees it may take it
    took = await client.patch(f"/api/v1/conversations/{free.id}", headers=world.agent_auth,
                              json={"assignee_id": str(world.agent.id)})
    assert took.status_code == 200 and took.json()["assignee_id"] == str(world.agent.id)

    boss = await runtime.people.create_user(world.workspace_id, "boss@example.com", "boss password", Role.SUPERVISOR,
                                            "Bea Boss")
    _, key = await runtime.people.create_api_key(world.workspace_id, "boss", Role.SUPERVISOR, boss.id)
    boss_auth = {"Authorization": f"Bearer {key}"}
    listed = {c["id"] for c in (await client.get("/api/v1/conversations?limit=100", headers=boss_auth)).json()["data"]}
    assert str(made["hidden"][0].id) in listed  # a supervisor sees every number
    moved = await client.patch(f"/api/v1/conversations/{taken.id}", headers=boss_auth,
                               json={"assignee_id": str(world.agent.id)})
    assert moved.status_code == 200 and moved.json()["assignee_id"] == str(world.agent.id)
    assert (await client.get("/api/v1/users", headers=boss_auth)).status_code == 403  # no admin screens
    assert (await client.get("/api/v1/accounts", headers=boss_auth)).status_code in (200, 403)


async def test_the_admins_choice_applies_at_once(shop):
    client, world, made, _ = shop
    hidden = made["hidden"][0]
    assert (await client.get(f"/api/v1/conversations/{hidden.id}", headers=world.agent_auth)).status_code == 404
    answer = await client.patch(f"/api/v1/users/{world.agent.id}", headers=world.auth, json={"all_numbers": True})
    assert answer.status_code == 200
    assert (await client.get(f"/api/v1/conversations/{hidden.id}", headers=world.agent_auth)).status_code == 200
    refused = await client.patch(f"/api/v1/users/{world.agent.id}", headers=world.auth,
                                 json={"number_ids": ["000000000000000000000000"]})
    assert refused.status_code == 422 and "number_ids" in refused.json()["details"]


def test_the_inbox_and_the_live_feed_show_a_limited_agent_only_their_conversations(live_app):
    """Demo: the agent is limited to "Coffee Co sales". Aiko Tanaka writes to "Coffee Co support"
    (assigned to the admin): not in the agent's list, search, page or live feed; Maria Silva writes
    to sales: live, as before."""
    admin = signed_in(live_app, app.demo.DEMO_ADMIN)
    agent = signed_in(live_app)
    aiko = conversation_id(admin, "Aiko Tanaka")
    maria = conversation_id(admin, "Maria Silva")
    team_page = admin.get("/admin/team")
    agent_id = re.search(r'id="user-([0-9a-f]{24})"(?:(?!</tr>).)*agent@demo', team_page.text, re.S).group(1)
    sales = re.search(r'name="number_ids" value="([0-9a-f]{24})"[^>]*> Coffee Co sales', team_page.text).group(1)
    token = re.search(r'name="_csrf_token" value="([^"]+)"', team_page.text).group(1)
    saved = admin.post(f"/admin/team/users/{agent_id}/access",
                       data={"_csrf_token": token, "numbers": "chosen", "number_ids": [sales]})
    assert saved.status_code == 200 and "Sees 1 of 2 numbers" in saved.text

    rows = agent.get("/inbox/conversations?status=all", headers={"HX-Request": "true"}).text
    assert "Maria Silva" in rows and "Aiko Tanaka" not in rows
    assert "Aiko" not in agent.get("/inbox/conversations?status=all&q=Aiko", headers={"HX-Request": "true"}).text
    assert agent.get(f"/inbox/c/{aiko}").status_code == 404

    ws = open_socket(live_app, agent, None)
    try:
        headers = csrf(admin)
        for who in (aiko, maria):
            answer = admin.post("/inbox/simulate", data={"customer": who, "kind": "text", "text": f"hello {who}"},
                                headers=headers)
            assert answer.status_code == 200, answer.text
            time.sleep(0.3)  # Aiko's event first (not a timing assertion: only the order of the frames matters)
        frames: list[str] = []
        wait_for(ws, lambda f: frames.append(f) or f'id="conv-{maria}"' in f)
        assert not any(aiko in f or "Aiko" in f for f in frames), frames
    finally:
        ws.close()


async def test_an_agents_figures_cover_the_numbers_they_see(shop):
    client, world, made, _ = shop
    mine = (await client.get("/api/v1/analytics/summary", headers=world.agent_auth)).json()
    everything = (await client.get("/api/v1/analytics/summary", headers=world.auth)).json()
    assert (mine["messages_in"], everything["messages_in"]) == (6, 9)  # Main's 6; Other's 3 are not hers whole
    other = made["hidden"][0].account_id
    assert (await client.get(f"/api/v1/analytics/summary?account_id={other}", headers=world.agent_auth)
            ).json()["messages_in"] == 0
