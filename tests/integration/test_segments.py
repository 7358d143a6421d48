"""Segments through the API: saved filters with a live count that follows the contacts, names unique
per workspace (409), filters checked when saved (422 FILTER_INVALID), the contacts of a segment
listed with ?segment=, deleting a segment never touching a contact, other workspaces' segments 404."""

from __future__ import annotations

import pytest

from app.domains.contacts.models import Contact
from tests.support.contacts_world import build_people

VIP = {"match": "all", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]}


@pytest.fixture
async def people(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 100000})
    return client, await build_people(client)


async def test_create_read_update_delete_with_a_live_count(people):
    client, p = people
    made = await client.post("/api/v1/segments", headers=p.agent_auth, json={"name": "  VIP   customers ", "filter": VIP})
    assert made.status_code == 201, made.text
    segment = made.json()
    assert segment["name"] == "VIP customers" and segment["count"] == 1
    assert segment["filter"]["conditions"] == [{"field": "tag", "op": "has", "value": "vip"}]
    assert segment["created_by"]

    # The count follows the contacts: tag Cleo, and the segment holds two.
    await client.patch(f"/api/v1/contacts/{p.ids['Cleo']}", headers=p.auth, json={"tags": ["vip"]})
    assert (await client.get(f"/api/v1/segments/{segment['id']}", headers=p.auth)).json()["count"] == 2
    listed = await client.get("/api/v1/contacts", params={"segment": segment["id"]}, headers=p.auth)
    assert p.names(listed.json()) == {"Ada", "Cleo"}
    narrowed = await client.get("/api/v1/contacts", headers=p.auth, params={
        "segment": segment["id"], "filter": '[{"field": "name", "op": "starts_with", "value": "cl"}]'})
    assert p.names(narrowed.json()) == {"Cleo"}

    renamed = await client.patch(f"/api/v1/segments/{segment['id']}", headers=p.auth, json={
        "name": "Opted out", "filter": {"conditions": [{"field": "opted_out", "op": "is", "value": True}]}})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Opted out" and renamed.json()["count"] == 1
    everything = (await client.get("/api/v1/segments", headers=p.auth)).json()
    assert [s["name"] for s in everything["data"]] == ["Opted out"] and everything["next_cursor"] is None

    contacts_before = await Contact.find({"workspace_id": p.workspace_id}).count()
    gone = await client.delete(f"/api/v1/segments/{segment['id']}", headers=p.auth)
    assert gone.status_code == 204
    assert await Contact.find({"workspace_id": p.workspace_id}).count() == contacts_before
    assert (await client.get(f"/api/v1/segments/{segment['id']}", headers=p.auth)).status_code == 404
    assert (await client.get("/api/v1/contacts", params={"segment": segment["id"]}, headers=p.auth)).status_code == 404


async def test_names_are_unique_whatever_their_case(people):
    client, p = people
    first = await client.post("/api/v1/segments", headers=p.auth, json={"name": "Wholesale", "filter": VIP})
    assert first.status_code == 201
    again = await client.post("/api/v1/segments", headers=p.auth, json={"name": "wholesale", "filter": {}})
    assert again.status_code == 409 and again.json()["error_code"] == "SEGMENT_EXISTS"
    other = await client.post("/api/v1/segments", headers=p.auth, json={"name": "Everyone", "filter": {}})
    assert other.status_code == 201 and other.json()["count"] == 3  # every person, never the group
    clash = await client.patch(f"/api/v1/segments/{other.json()['id']}", headers=p.auth, json={"name": "WHOLESALE"})
    assert clash.status_code == 409
    assert (await client.post("/api/v1/segments", headers=p.auth, json={"name": "  ", "filter": {}})).status_code == 422


@pytest.mark.parametrize("bad", [
    {"conditions": [{"field": "shoe_size", "op": "is", "value": 42}]},
    {"conditions": [{"field": "attributes.orders", "op": "contains", "value": "1"}]},
    {"conditions": [{"field": "attributes.renewal", "op": "before", "value": "tomorrow"}]},
    {"match": "most"},
    {"conditions": [{"field": "tag", "op": "has"}]},
])
async def test_a_filter_is_checked_when_saved(people, bad):
    client, p = people
    refused = await client.post("/api/v1/segments", headers=p.auth, json={"name": "Broken", "filter": bad})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error_code"] == "FILTER_INVALID"
    assert (await client.get("/api/v1/segments", headers=p.auth)).json()["data"] == []
    made = (await client.post("/api/v1/segments", headers=p.auth, json={"name": "Fine", "filter": VIP})).json()
    patched = await client.patch(f"/api/v1/segments/{made['id']}", headers=p.auth, json={"filter": bad})
    assert patched.status_code == 422 and patched.json()["error_code"] == "FILTER_INVALID"
    assert (await client.get(f"/api/v1/segments/{made['id']}", headers=p.auth)).json()["filter"]["conditions"] == \
        VIP["conditions"]


async def test_another_workspace_cannot_see_or_use_a_segment(people, client_factory):
    client, p = people
    theirs = await build_people(client)
    segment = (await client.post("/api/v1/segments", headers=theirs.auth, json={"name": "Theirs", "filter": VIP})).json()
    assert (await client.get(f"/api/v1/segments/{segment['id']}", headers=p.auth)).status_code == 404
    assert (await client.get("/api/v1/contacts", params={"segment": segment["id"]}, headers=p.auth)).status_code == 404
    assert (await client.delete(f"/api/v1/segments/{segment['id']}", headers=p.auth)).status_code == 404
    assert (await client.get("/api/v1/segments", headers=p.auth)).json()["data"] == []
    # Each workspace's count is of its own contacts.
    mine = (await client.post("/api/v1/segments", headers=p.auth, json={"name": "Theirs", "filter": VIP})).json()
    assert mine["count"] == 1 and segment["count"] == 1
