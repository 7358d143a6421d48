"""API v1 for integrations: contacts (search, cursor, create, edit, export, GDPR erase), conversations
(filters, get, update, notes), reactions, analytics; pagination stays stable under concurrent inserts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import utcnow
from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation
from app.domains.media.models import MediaChunk, StoredMedia
from app.domains.messages.models import Message
from tests.support.api_world import build_world


@pytest.fixture
async def world(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    return client, await build_world(client.app.state.runtime)


async def test_contacts_create_read_search_edit(world):
    client, w = world
    made = await client.post("/api/v1/contacts", headers=w.auth, json={
        "phone": "+44 20 7946 0958", "name": "Ada", "attributes": {"plan": "pro"}, "tags": ["vip"]})
    assert made.status_code == 201, made.text
    contact = made.json()
    assert contact["wa_id"] == "442079460958" and contact["phone"] == "+442079460958"
    assert contact["name"] == "Ada" and contact["attributes"] == {"plan": "pro"} and contact["tags"] == ["vip"]
    again = await client.post("/api/v1/contacts", headers=w.auth, json={"phone": "442079460958"})
    assert again.status_code == 409 and again.json()["details"]["id"] == contact["id"]
    bad = await client.post("/api/v1/contacts", headers=w.auth, json={"phone": "call me"})
    assert bad.status_code == 422 and bad.json()["error_code"] == "PHONE_INVALID"

    assert (await client.get(f"/api/v1/contacts/{contact['id']}", headers=w.auth)).json() == contact
    by_name = (await client.get("/api/v1/contacts", params={"q": "ada"}, headers=w.auth)).json()
    assert [c["id"] for c in by_name["data"]] == [contact["id"]] and by_name["next_cursor"] is None
    by_digits = (await client.get("/api/v1/contacts", params={"q": "7946"}, headers=w.auth)).json()
    assert [c["id"] for c in by_digits["data"]] == [contact["id"]]
    by_tag = (await client.get("/api/v1/contacts", params={"tag": "vip"}, headers=w.auth)).json()
    assert [c["id"] for c in by_tag["data"]] == [contact["id"]]

    edited = await client.patch(f"/api/v1/contacts/{contact['id']}", headers=w.agent_auth, json={
        "name": "Ada L.", "attributes": {"plan": None, "city": "London"}, "tags": ["vip", "beta"],
        "opted_out_marketing": True})
    assert edited.status_code == 200, edited.text
    e = edited.json()
    assert e["name"] == "Ada L." and e["attributes"] == {"city": "London"} and e["tags"] == ["vip", "beta"]
    assert e["opted_out_marketing"] is True
    nothing = await client.patch(f"/api/v1/contacts/{contact['id']}", headers=w.auth, json={})
    assert nothing.status_code == 422
    bad_key = await client.patch(f"/api/v1/contacts/{contact['id']}", headers=w.auth, json={"attributes": {"1x": "a"}})
    assert bad_key.status_code == 422 and bad_key.json()["error_code"] == "BAD_ATTRIBUTE"
    # Agents may edit, but erasing and exporting a person's data is for admins.
    assert (await client.delete(f"/api/v1/contacts/{contact['id']}", headers=w.agent_auth)).status_code == 403
    assert (await client.get(f"/api/v1/contacts/{contact['id']}/export", headers=w.agent_auth)).status_code == 403


async def test_contact_pages_are_stable_under_concurrent_inserts(world):
    client, w = world
    for i in range(7):
        await ContactService().upsert(w.workspace_id, wa_id=f"4930{i:07d}")
    before = {str(c.id) for c in await Contact.find(Contact.workspace_id == w.workspace_id).to_list()}
    seen: list[str] = []
    cursor = None
    for page_number in range(20):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/contacts", params=params, headers=w.auth)).json()
        seen += [c["id"] for c in page["data"]]
        # Someone adds contacts between our pages: they must not shift or repeat what we page through.
        await ContactService().upsert(w.workspace_id, wa_id=f"3360{page_number:07d}")
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and before <= set(seen)
    bad = await client.get("/api/v1/contacts", params={"cursor": "garbage!"}, headers=w.auth)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_CURSOR"


async def test_conversation_pages_are_stable_under_concurrent_inserts(world):
    client, w = world
    seen: list[str] = []
    cursor = None
    for i in range(10):
        answer = await client.get("/api/v1/conversations", params={"limit": 1, **({"cursor": cursor} if cursor else {})},
                                  headers=w.auth)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [c["id"] for c in page["data"]]
        contact, _ = await ContactService().upsert(w.workspace_id, wa_id=f"4420{i:07d}")
        await Conversation(workspace_id=w.workspace_id, account_id=w.account.id, contact_id=contact.id,
                           last_message_at=utcnow()).insert()
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [str(c.id) for c in sorted(w.conversations, key=lambda c: c.last_message_at, reverse=True)]


async def test_export_then_erase_removes_messages_media_and_conversations(world):
    client, w = world
    contact = w.contacts[0]
    export = await client.get(f"/api/v1/contacts/{contact.id}/export", headers=w.auth)
    assert export.status_code == 200
    data = export.json()
    assert data["contact"]["id"] == str(contact.id) and len(data["conversations"]) == 1
    assert len(data["messages"]) == 4 and data["messages"][0]["content"] == {"body": "question 0"}
    assert await StoredMedia.find({"metadata.workspace_id": w.workspace_id}).count() == 1

    erased = await client.delete(f"/api/v1/contacts/{contact.id}", headers=w.auth)
    assert erased.status_code == 200, erased.text
    assert erased.json() | {} == {"erased": True, "messages": 4, "media_files": 1, "conversations": 1, "events": 0,
                                  "webhook_bodies": 0}
    assert await Message.find(Message.contact_id == contact.id).count() == 0
    assert await Conversation.find(Conversation.contact_id == contact.id).count() == 0
    assert await StoredMedia.find({"metadata.workspace_id": w.workspace_id}).count() == 0
    assert await MediaChunk.count() == 0
    assert (await client.get(f"/api/v1/contacts/{contact.id}", headers=w.auth)).status_code == 404
    assert await Message.find(Message.contact_id == w.contacts[1].id).count() == 4  # others untouched


async def test_conversation_filters_get_update_and_notes(world):
    client, w = world
    first, second, _ = w.conversations
    base = f"/api/v1/conversations/{first.id}"
    one = await client.get(base, headers=w.agent_auth)
    assert one.status_code == 200 and one.json()["id"] == str(first.id) and one.json()["labels"] == []

    mark = utcnow()
    changed = await client.patch(base, headers=w.agent_auth, json={
        "assignee_id": str(w.agent.id), "team_id": str(w.team.id), "labels": [str(w.label.id)], "status": "pending"})
    assert changed.status_code == 200, changed.text
    c = changed.json()
    assert c["assignee_id"] == str(w.agent.id) and c["team_id"] == str(w.team.id)
    assert c["labels"] == [str(w.label.id)] and c["status"] == "pending"

    async def ids(**params):
        answer = await client.get("/api/v1/conversations", params=params, headers=w.auth)
        assert answer.status_code == 200, answer.text
        return [x["id"] for x in answer.json()["data"]]

    assert await ids(assignee_id=str(w.agent.id)) == [str(first.id)]
    assert str(first.id) not in await ids(assignee_id="none")
    assert await ids(label=str(w.label.id)) == [str(first.id)]
    assert await ids(team_id=str(w.team.id)) == [str(first.id)]
    assert await ids(status="pending") == [str(first.id)]
    assert await ids(updated_since=mark.isoformat()) == [str(first.id)]
    assert (await client.get("/api/v1/conversations", params={"assignee_id": "x"}, headers=w.auth)).status_code == 400

    until = (utcnow() + timedelta(hours=3)).isoformat()
    snoozed = await client.patch(f"/api/v1/conversations/{second.id}", headers=w.auth, json={"snoozed_until": until})
    assert snoozed.json()["status"] == "snoozed" and snoozed.json()["snoozed_until"]
    resolved = await client.patch(f"/api/v1/conversations/{second.id}", headers=w.auth, json={"status": "resolved"})
    assert resolved.json()["status"] == "resolved" and resolved.json()["snoozed_until"] is None
    unassigned = await client.patch(base, headers=w.auth, json={"assignee_id": None, "team_id": None, "labels": []})
    assert unassigned.json()["assignee_id"] is None and unassigned.json()["labels"] == []
    for body, code in [({"labels": ["nope"]}, "UNKNOWN_LABEL"), ({"status": "snoozed"}, "SNOOZE_NEEDS_TIME"),
                       ({"snoozed_until": "2001-01-01T00:00:00Z"}, "SNOOZE_IN_PAST"), ({}, "VALIDATION_ERROR")]:
        refused = await client.patch(base, headers=w.auth, json=body)
        assert refused.status_code == 422 and refused.json()["error_code"] == code, (body, refused.text)
    assert (await client.patch(base, headers=w.auth, json={"team_id": "0" * 24})).status_code == 404

    note = await client.post(f"{base}/notes", headers=w.agent_auth, json={"text": "Called them back"})
    assert note.status_code == 201 and note.json()["direction"] == "internal" and note.json()["type"] == "note"
    assert (await client.post(f"{base}/notes", headers=w.auth, json={"text": ""})).status_code in (400, 422)
    thread = (await client.get(f"{base}/messages", headers=w.auth)).json()["data"]
    kinds = {m["content"].get("kind") for m in thread if m["type"] == "event"}
    assert {"assigned", "team", "labels", "pending"} <= kinds


async def test_react_to_a_message_queues_a_reaction(world):
    client, w = world
    target = w.messages[0]
    answer = await client.post(f"/api/v1/messages/{target.id}/reactions", headers=w.auth, json={"emoji": "👍"})
    assert answer.status_code == 202, answer.text
    reaction = answer.json()
    assert reaction["type"] == "reaction" and reaction["content"] == {"message_id": target.wamid, "emoji": "👍"}
    assert reaction["status"] == "queued" and reaction["conversation_id"] == str(target.conversation_id)
    assert (await client.post("/api/v1/messages/0123/reactions", headers=w.auth, json={"emoji": "x"})).status_code == 404


async def test_analytics_summary(world):
    client, w = world
    answer = await client.get("/api/v1/analytics/summary", headers=w.agent_auth)
    assert answer.status_code == 200, answer.text
    s = answer.json()
    assert s["messages_in"] == 6 and s["messages_out"] == 6 and s["failed"] == 3
    assert s["delivered_rate"] == 0.5 and s["read_rate"] == 0.5
    assert s["failures_by_code"] == [{"code": 131047, "title": "Error 131047", "count": 2},
                                     {"code": 131026, "title": "Error 131026", "count": 1}]
    # Replies came 60, 120, 180 s after the first question, and 60 s after the second.
    assert s["first_response"] == {"count": 6, "average_seconds": 90.0, "median_seconds": 60.0}
    narrow = await client.get("/api/v1/analytics/summary", headers=w.auth, params={
        "from": (utcnow() - timedelta(minutes=10)).isoformat(), "to": utcnow().isoformat()})
    assert narrow.json()["messages_in"] == 0 and narrow.json()["delivered_rate"] is None
    other_number = await client.get("/api/v1/analytics/summary", headers=w.auth, params={"account_id": "0" * 24})
    assert other_number.json()["messages_out"] == 0
    for params in ({"from": "2025-01-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"},
                   {"from": "2020-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, {"from": "yesterday"},
                   {"account_id": "x"}):
        assert (await client.get("/api/v1/analytics/summary", headers=w.auth, params=params)).status_code == 400
