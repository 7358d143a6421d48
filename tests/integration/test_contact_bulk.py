"""Bulk actions on contacts through the API: tags added and removed on every contact a filter or a
segment matches, an attribute set (refused by its type before anything changes), opt out / in with
the consent history, delete for admins only (the GDPR erase of each), ids capped, groups untouched."""

from __future__ import annotations

import pytest
from beanie import PydanticObjectId

from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation
from tests.support.contacts_world import build_people

EVERYONE: dict = {"conditions": []}


@pytest.fixture
async def people(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 100000})
    return client, await build_people(client)


async def tags_of(p) -> dict[str, list[str]]:
    by_id = {v: k for k, v in p.ids.items()}
    return {by_id[str(c.id)]: c.tags for c in await Contact.find({"workspace_id": p.workspace_id}).to_list()}


async def bulk(client, p, auth=None, **body):
    return await client.post("/api/v1/contacts/bulk", headers=auth or p.auth, json=body)


async def test_tags_added_and_removed_on_a_filter(people):
    client, p = people
    no_vip = {"conditions": [{"field": "tag", "op": "has_not", "value": "vip"}]}
    added = await bulk(client, p, p.agent_auth, action="add_tags", tags=["VIP", "spring"], filter=no_vip)
    assert added.status_code == 200, added.text
    assert added.json() == {"action": "add_tags", "matched": 2, "changed": 2}
    tags = await tags_of(p)
    # The workspace's spelling wins ("VIP" typed, "vip" in use); the group is never touched.
    assert tags["Bob"] == ["wholesale", "vip", "spring"] and tags["Cleo"] == ["vip", "spring"]
    assert tags["Ada"] == ["vip", "beta"] and tags["Group"] == ["vip"]
    again = await bulk(client, p, action="add_tags", tags=["spring"], filter=EVERYONE)
    assert again.json() == {"action": "add_tags", "matched": 3, "changed": 1}  # only Ada lacked it

    removed = await bulk(client, p, action="remove_tags", tags=["Spring", "beta"],
                         filter={"conditions": [{"field": "name", "op": "contains", "value": "a"}]})
    assert removed.json() == {"action": "remove_tags", "matched": 2, "changed": 2}  # Ada, Bob Marley
    tags = await tags_of(p)
    assert tags["Ada"] == ["vip"] and tags["Bob"] == ["wholesale", "vip"] and tags["Cleo"] == ["vip", "spring"]

    by_segment = (await client.post("/api/v1/segments", headers=p.auth, json={"name": "Wholesale", "filter": {
        "conditions": [{"field": "tag", "op": "has", "value": "wholesale"}]}})).json()
    tagged = await bulk(client, p, action="add_tags", tags=["b2b"], segment=by_segment["id"])
    assert tagged.json()["changed"] == 1 and (await tags_of(p))["Bob"][-1] == "b2b"
    bad = await bulk(client, p, action="add_tags", tags=["no<html>"], filter=EVERYONE)
    assert bad.status_code == 422 and bad.json()["error_code"] == "BAD_TAG"


async def test_set_attribute_is_typed_and_a_refused_value_changes_nothing(people):
    client, p = people
    refused = await bulk(client, p, action="set_attribute", key="orders", value="plenty", filter=EVERYONE)
    assert refused.status_code == 422 and refused.json()["error_code"] == "ATTRIBUTE_INVALID"
    assert "Orders must be a number" in refused.json()["error"]
    orders = {c.id: c.attributes.get("orders") for c in await Contact.find({"workspace_id": p.workspace_id}).to_list()}
    assert sorted(v for v in orders.values() if v is not None) == [2, 12]

    done = await bulk(client, p, action="set_attribute", key="renewal", value="2026-01-31",
                      ids=[p.ids["Ada"], p.ids["Cleo"]])
    assert done.json() == {"action": "set_attribute", "matched": 2, "changed": 2}
    renewal_2026 = await client.get("/api/v1/contacts", headers=p.auth, params={
        "filter": '[{"field": "attributes.renewal", "op": "on", "value": "2026-01-31"}]'})
    assert p.names(renewal_2026.json()) == {"Ada", "Cleo"}
    unset = await bulk(client, p, action="set_attribute", key="renewal", value=None, filter=EVERYONE)
    assert unset.json()["changed"] == 3
    assert all("renewal" not in c.attributes for c in await Contact.find({"workspace_id": p.workspace_id}).to_list())


async def test_opt_out_and_in_keep_the_consent_history(people):
    client, p = people
    out = await bulk(client, p, action="opt_out", filter=EVERYONE)
    assert out.json() == {"action": "opt_out", "matched": 3, "changed": 2}  # Bob was already
    ada = (await client.get(f"/api/v1/contacts/{p.ids['Ada']}", headers=p.auth)).json()
    assert ada["opted_out_marketing"] is True
    assert [(c["opted_out"], c["source"]) for c in ada["consent"]] == [(True, "api")] and ada["consent"][0]["by"]
    back = await bulk(client, p, action="opt_in", ids=[p.ids["Ada"], p.ids["Group"]])
    assert back.json() == {"action": "opt_in", "matched": 1, "changed": 1}  # a group is never chosen
    ada = (await client.get(f"/api/v1/contacts/{p.ids['Ada']}", headers=p.auth)).json()
    assert ada["opted_out_marketing"] is False and [c["opted_out"] for c in ada["consent"]] == [True, False]


async def test_delete_is_for_admins_and_erases_each_contact(people):
    client, p = people
    opted_out = {"conditions": [{"field": "opted_out", "op": "is", "value": True}]}
    refused = await bulk(client, p, p.agent_auth, action="delete", filter=opted_out)
    assert refused.status_code == 403
    assert await Contact.find({"_id": PydanticObjectId(p.ids["Bob"])}).count() == 1

    doomed = [p.ids["Ada"], p.ids["Cleo"]]
    erased = await bulk(client, p, action="delete", ids=doomed)
    assert erased.json() == {"action": "delete", "matched": 2, "changed": 2}
    assert await Contact.find({"workspace_id": p.workspace_id}).count() == 2  # Bob and the group
    assert await Conversation.find({"contact_id": {"$in": [PydanticObjectId(i) for i in doomed]}}).count() == 0
    assert (await client.get(f"/api/v1/contacts/{p.ids['Ada']}", headers=p.auth)).status_code == 404


async def test_choosing_the_contacts_is_checked(people):
    client, p = people
    nothing = await bulk(client, p, action="opt_out")
    assert nothing.status_code == 422 and nothing.json()["error_code"] == "NOTHING_SELECTED"
    both = await bulk(client, p, action="opt_out", ids=[p.ids["Ada"]], filter=EVERYONE)
    assert both.status_code == 422
    too_many = await bulk(client, p, action="opt_out", ids=[str(PydanticObjectId()) for _ in range(1001)])
    assert too_many.status_code in (400, 422)
    not_an_id = await bulk(client, p, action="opt_out", ids=["nope"])
    assert not_an_id.status_code == 422 and not_an_id.json()["error_code"] == "ID_INVALID"
    bad_filter = await bulk(client, p, action="opt_out", filter={"conditions": [{"field": "x", "op": "is"}]})
    assert bad_filter.status_code == 422 and bad_filter.json()["error_code"] == "FILTER_INVALID"
    unknown = await bulk(client, p, action="explode", filter=EVERYONE)
    assert unknown.status_code in (400, 422)
    # Another workspace's contact ids are simply not matched.
    other, _ = await ContactService().upsert(PydanticObjectId(), wa_id="15550009999")
    foreign = await bulk(client, p, action="add_tags", tags=["x"], ids=[str(other.id)])
    assert foreign.json() == {"action": "add_tags", "matched": 0, "changed": 0}
    assert (await Contact.get(other.id)).tags == []


async def test_a_filter_walks_every_matching_contact_in_batches(people, monkeypatch):
    from app.domains.contacts import bulk as bulk_module

    monkeypatch.setattr(bulk_module, "BATCH", 3)
    client, p = people
    for i in range(8):
        await ContactService().upsert(p.workspace_id, wa_id=f"4930{i:07d}", profile_name=f"Batch {i}")
    # The action moves contacts out of the filter as it goes: each is still counted once.
    untagged = {"conditions": [{"field": "tag", "op": "has_not", "value": "seen"}]}
    done = await bulk(client, p, action="add_tags", tags=["seen"], filter=untagged)
    assert done.json() == {"action": "add_tags", "matched": 11, "changed": 11}
    assert (await tags_of_all(p)) == 11


async def tags_of_all(p) -> int:
    return await Contact.find({"workspace_id": p.workspace_id, "tags": "seen"}).count()


async def test_open_inboxes_hear_of_a_bulk_change_to_their_customers(people):
    """A tag added in bulk reaches the inbox as one contact's edit does: a live update for each of the
    changed contacts' conversations still in play, none for a resolved one or an unchanged contact."""
    client, p = people
    heard: list[str] = []

    async def listener(workspace_id, event, data):
        if event == "conversation.updated":
            heard.append(data["conversation_id"])

    client.app.state.runtime.live.listeners.append(listener)
    cleo = await Conversation.find_one(Conversation.contact_id == PydanticObjectId(p.ids["Cleo"]))
    ada = await Conversation.find_one(Conversation.contact_id == PydanticObjectId(p.ids["Ada"]))
    await Conversation.find_one(Conversation.id == ada.id).update({"$set": {"status": "resolved"}})
    answer = await bulk(client, p, action="add_tags", tags=["autumn"], filter=EVERYONE)
    assert answer.json()["changed"] == 3
    assert heard == [str(cleo.id)]  # Ada's conversation is resolved; Bob has none
    heard.clear()
    again = await bulk(client, p, action="add_tags", tags=["autumn"], filter=EVERYONE)
    assert again.json()["changed"] == 0 and heard == []  # nothing changed: nothing to show
