"""Agent availability: the status a user chooses, and presence from their open inbox tabs (a heartbeat in
Redis that lapses when the last tab closes), through the header control, the API and the admin screens."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from websockets.sync.client import connect

from app.domains.accounts.services import NewAccount
from app.domains.assignment.presence import Presence
from app.domains.contacts.services import ContactService
from app.domains.conversations.services import ConversationService
from app.domains.workspaces.models import Availability, Role, User
from app.main import create_app
from tests.conftest import csrf_from, sign_in
from tests.support.servers import free_port, serve

KEY = "wai_availability-test-key-0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
SETTINGS = {"admin_email": "admin@example.com", "admin_password": SecretStr("admin password"),
            "admin_api_key": SecretStr(KEY)}


async def test_presence_lapses_without_a_heartbeat(client, settings):
    _, user = await client.app.state.runtime.people.create_workspace("Shop", "a@example.com", "a long password")
    redis = Redis.from_url(settings.redis_url)
    try:
        presence = Presence(redis, timeout_seconds=0.2)
        assert not (await presence.status_of(user)).connected
        assert await presence.beat(user.workspace_id, user.id) is True  # a heartbeat starts
        assert await presence.beat(user.workspace_id, user.id) is False  # ... and is refreshed
        status = await presence.status_of(user)
        assert status.value is Availability.ONLINE and status.takes_conversations
        await asyncio.sleep(0.35)
        status = await presence.status_of(user)
        assert status.value is Availability.OFFLINE and status.inactive and not status.takes_conversations
        assert status.label == "Offline (no inbox open)"
    finally:
        await redis.aclose()


@pytest.fixture
def served(settings):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app_settings = settings.model_copy(update={"public_url": base, "presence_timeout_seconds": 0.6, **SETTINGS})
    with serve(create_app(app_settings), port=port) as url:
        yield url


def _signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    page = client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login", data={"email": "admin@example.com", "password": "admin password",
                                         "_csrf_token": token})
    assert answer.status_code in (200, 302, 303)
    return client


def _open_tab(base: str, client: httpx.Client):
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    ws = connect(base.replace("http", "ws") + "/live", additional_headers={"Cookie": cookie}, open_timeout=5, legacy=True)
    ws.send(json.dumps({"type": "hello", "since": None, "view": {"conversation": None, "filters": {}}}))
    return ws


def _until(client: httpx.Client, predicate, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = client.get("/api/v1/me/availability", headers=AUTH).json()
        if predicate(shown):
            return shown
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)


def test_an_open_inbox_tab_keeps_its_user_online_and_the_chosen_status_survives(served):
    client = _signed_in(served)
    shown = client.get("/api/v1/me/availability", headers=AUTH).json()
    assert shown["availability"] == "online" and shown["status"] == "offline" and shown["inactive"]
    ws = _open_tab(served, client)
    try:
        shown = _until(client, lambda s: s["connected"])
        assert shown["status"] == "online"
        time.sleep(0.9)  # longer than the time to live: the open tab keeps refreshing it
        assert client.get("/api/v1/me/availability", headers=AUTH).json()["status"] == "online"
    finally:
        ws.close()
    shown = _until(client, lambda s: not s["connected"])
    assert shown["status"] == "offline" and shown["inactive"] and shown["availability"] == "online"
    # Busy is the user's choice: opening the inbox brings back busy, not online.
    chosen = client.put("/api/v1/me/availability", headers=AUTH, json={"availability": "busy"})
    assert chosen.status_code == 200, chosen.text
    ws = _open_tab(served, client)
    try:
        shown = _until(client, lambda s: s["connected"])
        assert shown["status"] == "busy" and shown["availability"] == "busy"
    finally:
        ws.close()
    refused = client.put("/api/v1/me/availability", headers=AUTH, json={"availability": "sleeping"})
    assert refused.status_code == 422 and refused.json()["error_code"] == "BAD_AVAILABILITY"


async def test_header_control_team_screen_and_assignment_screen(client_factory):
    client = await client_factory(settings=SETTINGS)
    runtime = client.app.state.runtime
    admin = await User.find_one(User.email == "admin@example.com")
    ann = await runtime.people.create_user(admin.workspace_id, "ann@example.com", "agent password", Role.AGENT, "Ann")
    await runtime.presence.beat(admin.workspace_id, ann.id)
    assert (await sign_in(client, "admin@example.com", "admin password")).status_code in (302, 303)
    page = await client.get("/admin/team/")
    assert 'hx-get="/availability"' in page.text and "/admin/assignment" in page.text
    assert re.search(r'id="user-' + str(ann.id) + r'".*?Online', page.text, re.S)
    headers = {"X-CSRFToken": csrf_from(page.text), "HX-Request": "true"}
    control = await client.get("/availability")
    assert 'name="availability"' in control.text and "(no inbox open)" in control.text
    away = await client.post("/availability", data={"availability": "away"}, headers=headers)
    assert away.status_code == 200 and '<option value="away" selected>' in away.text
    assert (await User.get(admin.id)).availability is Availability.AWAY
    bad = await client.post("/availability", data={"availability": "gone"}, headers=headers)
    assert bad.status_code == 422 and "online, busy, away or offline" in bad.text
    screen = await client.get("/admin/assignment/")
    assert screen.status_code == 200 and "No rules yet" in screen.text
    added = await client.post("/admin/assignment/", headers=headers, data={
        "name": "Everyone", "method": "least_open", "enabled": "on", "max_open_per_agent": "3"})
    assert added.status_code == 200 and "Saved." in added.text and "Fewest open" in added.text
    assert re.search(r'id="presence-' + str(ann.id) + r'".*?Online', added.text, re.S)
    wrong = await client.post("/admin/assignment/", headers=headers, data={"name": "", "method": "least_open"})
    assert wrong.status_code == 422 and "Give the rule a name" in wrong.text
    # The inbox's assignee picker says who is available.
    account = await runtime.accounts.create(admin.workspace_id, NewAccount(
        name="Main", phone_number_id="5500001", waba_id="6600001", display_phone_number="+15550100001",
        access_token="EAAG-token-0001", app_secret="secret-0001"))
    contact, _ = await ContactService().upsert(admin.workspace_id, wa_id="15551230001", profile_name="Dana")
    conversation, _ = await ConversationService().open_for(admin.workspace_id, account.id, contact.id)
    thread = await client.get(f"/inbox/c/{conversation.id}")
    assert re.search(r'<option value="' + str(ann.id) + r'"[^>]*>Ann · Online</option>', thread.text)
    # Away, with no inbox tab open: others see offline.
    assert re.search(r'<option value="' + str(admin.id) + r'"[^>]*>[^<]*\(me\) · Offline</option>', thread.text)
