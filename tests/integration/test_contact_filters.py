"""The contacts list's filter language through the API: every field and operator against real
contacts, typed attribute values, segments and filters together, keyset pages in each sort stable
while contacts are added and edited, bad filters answered 422 FILTER_INVALID (never 500), and
WhatsApp groups never listed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from tests.support.contacts_world import BOB_USER_ID, as_filter, build_people

PEOPLE = {"Ada", "Bob", "Cleo"}


@pytest.fixture
async def people(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 100000})
    return client, await build_people(client)


async def listed(client, people, *conditions, match="all", **params) -> set[str]:
    if conditions:
        params["filter"] = as_filter(*conditions, match=match)
    answer = await client.get("/api/v1/contacts", params={"limit": 200, **params}, headers=people.auth)
    assert answer.status_code == 200, answer.text
    return people.names(answer.json())


CASES = [
    # name: the name agents gave, or else the WhatsApp profile name; case- and position-insensitive where asked
    (("name", "contains", "LOVE"), {"Ada"}),
    (("name", "is", "bob marley"), {"Bob"}),
    (("name", "starts_with", "cl"), {"Cleo"}),
    (("name", "is_not", "Ada Lovelace"), {"Bob", "Cleo"}),
    (("name", "is_set", None), PEOPLE),
    (("name", "is_unset", None), set()),
    # phone: by digits, whatever the formatting typed
    (("phone", "is", "+44 20 7946 0958"), {"Ada"}),
    (("phone", "is_not", "442079460958"), {"Bob", "Cleo"}),
    (("phone", "contains", "1234"), {"Cleo"}),
    (("phone", "starts_with", "+1"), {"Bob"}),
    (("phone", "is_set", None), PEOPLE),
    # email: stored lower-case, matched whatever the case typed
    (("email", "is", "ADA@example.com"), {"Ada"}),
    (("email", "is_not", "ada@example.com"), {"Bob", "Cleo"}),
    (("email", "contains", "example"), {"Ada"}),
    (("email", "starts_with", "ada@"), {"Ada"}),
    (("email", "is_set", None), {"Ada"}),
    (("email", "is_unset", None), {"Bob", "Cleo"}),
    (("user_id", "is", BOB_USER_ID), {"Bob"}),
    (("user_id", "is_not", BOB_USER_ID), {"Ada", "Cleo"}),
    (("user_id", "starts_with", "us.1349"), {"Bob"}),
    (("user_id", "contains", "1208655"), {"Bob"}),
    (("user_id", "is_set", None), {"Bob"}),
    (("user_id", "is_unset", None), {"Ada", "Cleo"}),
    (("username", "is", "@BobM"), {"Bob"}),
    (("username", "contains", "ob"), {"Bob"}),
    (("username", "starts_with", "x"), set()),
    (("username", "is_not", "bobm"), {"Ada", "Cleo"}),
    (("username", "is_unset", None), {"Ada", "Cleo"}),
    # tags: one, or any of several
    (("tag", "has", "vip"), {"Ada"}),
    (("tag", "has", ["wholesale", "beta"]), {"Ada", "Bob"}),
    (("tag", "has_not", "vip"), {"Bob", "Cleo"}),
    (("tag", "is_set", None), {"Ada", "Bob"}),
    (("tag", "is_unset", None), {"Cleo"}),
    (("opted_out", "is", True), {"Bob"}),
    (("opted_out", "is", False), {"Ada", "Cleo"}),
    (("opted_out", "is_not", True), {"Ada", "Cleo"}),
    # dates: whole days in UTC, or a moment
    (("created_at", "before", "2024-07-15"), {"Ada"}),
    (("created_at", "after", "2024-07-15"), {"Cleo"}),
    (("created_at", "on", "2024-07-15"), {"Bob"}),
    (("created_at", "after", "2024-07-15T09:00:00Z"), {"Bob", "Cleo"}),
    (("created_at", "is_set", None), PEOPLE),
    (("last_inbound_at", "on", "2025-01-10"), {"Bob"}),
    (("last_inbound_at", "before", "2025-01-11"), {"Bob"}),
    (("last_inbound_at", "is_unset", None), {"Ada", "Cleo"}),
    (("last_inbound_at", "is_set", None), {"Bob"}),
    # attributes, compared by their type
    (("attributes.plan", "is", "PRO"), {"Ada"}),
    (("attributes.plan", "is_not", "Pro"), {"Bob", "Cleo"}),
    (("attributes.plan", "contains", "as"), {"Bob"}),
    (("attributes.orders", "gt", 10), {"Ada"}),
    (("attributes.orders", "gt", "1.5"), {"Ada", "Bob"}),
    (("attributes.orders", "lt", 12), {"Bob"}),
    (("attributes.orders", "is", "12"), {"Ada"}),
    (("attributes.orders", "is_not", 12), {"Bob", "Cleo"}),
    (("attributes.renewal", "before", "2025-01-01"), {"Bob"}),
    (("attributes.renewal", "after", "2024-12-31"), {"Ada"}),
    (("attributes.renewal", "on", "2025-03-01"), {"Ada"}),
    (("attributes.last_order", "on", "2025-03-01"), {"Ada"}),
    (("attributes.last_order", "after", "2025-03-01T14:00:00Z"), {"Ada"}),
    (("attributes.last_order", "before", "2025-03-01T14:00:00+00:00"), {"Bob"}),
    (("attributes.newsletter", "is", True), {"Ada"}),
    (("attributes.newsletter", "is", "no"), {"Bob"}),
    (("attributes.newsletter", "is_not", True), {"Bob", "Cleo"}),
    (("attributes.city", "is", "london"), {"Ada"}),
    (("attributes.city", "contains", "ond"), {"Ada"}),
    (("attributes.city", "starts_with", "Lon"), {"Ada"}),
    (("attributes.city", "is_set", None), {"Ada"}),
    (("attributes.city", "is_unset", None), {"Bob", "Cleo"}),
    (("attributes.undefined_key", "is_unset", None), PEOPLE),
]


async def test_every_field_and_operator_against_real_contacts(people):
    client, p = people
    for condition, expected in CASES:
        assert await listed(client, p, condition) == expected, condition
    # label: a label on any of their conversations
    assert await listed(client, p, ("label", "has", p.label_id)) == {"Cleo"}
    assert await listed(client, p, ("label", "has_not", p.label_id)) == {"Ada", "Bob"}
    assert await listed(client, p, ("label", "is_set", None)) == {"Cleo"}
    # all / any, and the older q and tag parameters on top
    assert await listed(client, p, ("tag", "has", "vip"), ("opted_out", "is", True)) == set()
    assert await listed(client, p, ("tag", "has", "vip"), ("opted_out", "is", True), match="any") == {"Ada", "Bob"}
    assert await listed(client, p, ("opted_out", "is", False), q="cleo") == {"Cleo"}
    assert await listed(client, p, q="7946") == {"Ada"}
    assert await listed(client, p, q="ada@exa") == {"Ada"}
    assert await listed(client, p, q="lond") == {"Ada"}  # part of a text attribute's value
    assert await listed(client, p, q=BOB_USER_ID) == {"Bob"}
    assert await listed(client, p, ("name", "contains", "o"), tag="wholesale") == {"Bob"}
    # a bare list of conditions means all of them
    bare = await client.get("/api/v1/contacts", params={"filter": '[{"field": "tag", "op": "has", "value": "beta"}]'},
                            headers=p.auth)
    assert p.names(bare.json()) == {"Ada"}


async def test_typed_attributes_come_back_typed_and_wrong_types_are_refused(people):
    client, p = people
    ada = (await client.get(f"/api/v1/contacts/{p.ids['Ada']}", headers=p.auth)).json()
    assert ada["attributes"] == {"plan": "Pro", "orders": 12, "renewal": "2025-03-01T00:00:00Z",
                                 "last_order": "2025-03-01T14:30:00Z", "newsletter": True, "city": "London"}
    assert ada["email"] == "ada@example.com" and ada["created_at"].startswith("2024-06-01")
    bob = (await client.get(f"/api/v1/contacts/{p.ids['Bob']}", headers=p.auth)).json()
    assert bob["last_inbound_at"].startswith("2025-01-10T09:00:00")
    assert [(c["opted_out"], c["source"]) for c in bob["consent"]] == [(True, "api")] and bob["consent"][0]["by"]
    for attributes, named in (({"orders": "a dozen"}, "Orders must be a number"),
                              ({"renewal": "01/03/2025"}, "Renewal must be a date"),
                              ({"newsletter": "maybe"}, "Newsletter must be yes or no"),
                              ({"plan": "Gold"}, "Plan must be one of the choices"),
                              ({"city": "x" * 501}, "City must be text")):
        refused = await client.patch(f"/api/v1/contacts/{p.ids['Ada']}", headers=p.auth,
                                     json={"attributes": {"city": "Paris", **attributes}})
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["error_code"] == "ATTRIBUTE_INVALID" and body["error"].startswith(named)
        assert set(attributes) <= set(body["details"])
    # nothing was half-applied: the valid city in the same request was not stored either
    assert (await client.get(f"/api/v1/contacts/{p.ids['Ada']}", headers=p.auth)).json()["attributes"]["city"] == "London"
    bad_email = await client.patch(f"/api/v1/contacts/{p.ids['Ada']}", headers=p.auth, json={"email": "not an email"})
    assert bad_email.status_code == 422 and bad_email.json()["error_code"] == "EMAIL_INVALID"
    removed = await client.patch(f"/api/v1/contacts/{p.ids['Ada']}", headers=p.auth,
                                 json={"email": None, "attributes": {"orders": None, "newsletter": False}})
    assert removed.status_code == 200, removed.text
    assert removed.json()["email"] is None and "orders" not in removed.json()["attributes"]
    assert removed.json()["attributes"]["newsletter"] is False


@pytest.mark.parametrize("raw,where", [
    ("{not json", "filter"),
    ('{"conditions": "tag"}', "conditions"),
    ('{"match": "some", "conditions": []}', "match"),
    (as_filter(("colour", "is", "red")), "conditions[0].field"),
    (as_filter(("attributes.2bad", "is", "x")), "conditions[0].field"),
    (as_filter(("tag", "before", "2024-01-01")), "conditions[0].op"),
    (as_filter(("name", "is", None)), "conditions[0].value"),
    (as_filter(("name", "is", {"$ne": None})), "conditions[0].value"),
    (as_filter(("created_at", "after", "last week")), "conditions[0].value"),
    (as_filter(("opted_out", "is", "perhaps")), "conditions[0].value"),
    (as_filter(("tag", "has", "ok"), ("phone", "is", "call me")), "conditions[1].value"),
    (as_filter(("attributes.orders", "contains", "1")), "conditions[0].op"),
    (as_filter(("attributes.orders", "gt", "many")), "conditions[0].value"),
    (as_filter(("attributes.renewal", "before", "soon")), "conditions[0].value"),
    (as_filter(("attributes.plan", "is", "Gold")), "conditions[0].value"),
    (as_filter(("attributes.newsletter", "gt", 1)), "conditions[0].op"),
    (as_filter(*[("tag", "has", "x")] * 21), "conditions"),
    ("[1, 2]", "conditions[0]"),
    ('"just text"', "filter"),
])
async def test_bad_filters_are_refused_with_where_not_a_500(people, raw, where):
    client, p = people
    answer = await client.get("/api/v1/contacts", params={"filter": raw}, headers=p.auth)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error_code"] == "FILTER_INVALID"
    assert any(key.startswith(where) for key in body["details"]), body["details"]
    searched = await client.post("/api/v1/contacts/search", headers=p.auth, json={"filter": raw})
    assert searched.status_code in (400, 422) and searched.status_code != 500


async def test_other_bad_list_parameters(people):
    client, p = people
    assert (await client.get("/api/v1/contacts", params={"sort": "age"}, headers=p.auth)).status_code == 400
    missing = await client.get("/api/v1/contacts", params={"segment": str(PydanticObjectId())}, headers=p.auth)
    assert missing.status_code == 404
    assert (await client.get("/api/v1/contacts", params={"segment": "nope"}, headers=p.auth)).status_code == 404
    cursor = (await client.get("/api/v1/contacts", params={"limit": 1, "sort": "name"}, headers=p.auth)
              ).json()["next_cursor"]
    other_sort = await client.get("/api/v1/contacts", params={"cursor": cursor, "sort": "created"}, headers=p.auth)
    assert other_sort.status_code == 400 and other_sort.json()["error_code"] == "INVALID_CURSOR"


async def test_a_long_filter_goes_in_a_body(people):
    client, p = people
    body = {"filter": {"match": "any", "conditions": [{"field": "tag", "op": "has", "value": f"t{i}"}
                                                      for i in range(19)] + [{"field": "name", "op": "contains",
                                                                              "value": "ada"}]},
            "sort": "name", "limit": 1}
    first = await client.post("/api/v1/contacts/search", headers=p.auth, json=body)
    assert first.status_code == 200, first.text
    assert p.names(first.json()) == {"Ada"} and first.json()["next_cursor"] is None
    both = await client.post("/api/v1/contacts/search", headers=p.auth,
                             json={"filter": {"conditions": [{"field": "tag", "op": "is_set"}]}, "q": "bob"})
    assert p.names(both.json()) == {"Bob"}
    wrong = await client.post("/api/v1/contacts/search", headers=p.auth, json={"filter": {}, "offset": 3})
    assert wrong.status_code in (400, 422)


async def test_groups_are_never_listed(people):
    client, p = people
    everyone = await listed(client, p)
    assert everyone == PEOPLE and "Group" not in everyone
    assert "Group" not in await listed(client, p, ("tag", "has", "vip"))  # the group carries the tag
    assert "Group" not in await listed(client, p, ("name", "contains", "team"), match="any")
    assert "Group" not in await listed(client, p, q="team")
    segment = await client.post("/api/v1/segments", headers=p.auth,
                                json={"name": "VIPs", "filter": {"conditions": [{"field": "tag", "op": "has",
                                                                                 "value": "vip"}]}})
    assert segment.json()["count"] == 1


def _ordered(names_in_order: list[str], sort: str, contacts: dict[str, Contact]) -> bool:
    from app.domains.contacts.filters import SORTS

    field, descending = SORTS[sort]
    keys = [(getattr(contacts[n], field), contacts[n].id) for n in names_in_order]
    missing_last = [k for k in keys if k[0] is None]
    present = [k for k in keys if k[0] is not None]
    if descending:
        return present == sorted(present, reverse=True) and keys[len(present):] == missing_last
    return present == sorted(present) and keys[:len(missing_last)] == missing_last


@pytest.mark.parametrize("sort", ["created", "updated", "last_inbound", "name"])
async def test_keyset_pages_in_each_sort_are_stable_while_contacts_change(people, sort):
    client, p = people
    service = ContactService()
    for i in range(7):
        await service.upsert(p.workspace_id, wa_id=f"4930{i:07d}", profile_name=f"Zed {chr(65 + i)}",
                             wrote_at=None if i % 3 == 0 else utcnow() - timedelta(minutes=i))
    before = {str(c.id) for c in await Contact.find({"workspace_id": p.workspace_id, "kind": {"$ne": "group"}}).to_list()}
    seen: list[str] = []
    cursor = None
    for page_number in range(30):
        params = {"limit": 2, "sort": sort, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/contacts", params=params, headers=p.auth)
        assert page.status_code == 200, page.text
        seen += [c["id"] for c in page.json()["data"]]
        # Meanwhile contacts are added, and a contact already seen is renamed and writes again.
        await service.upsert(p.workspace_id, wa_id=f"3360{page_number:07d}", profile_name=f"New {page_number}")
        if seen:
            await client.patch(f"/api/v1/contacts/{seen[0]}", headers=p.auth, json={"name": f"Aaa {page_number}"})
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)), "a contact was listed twice"
    assert before <= set(seen), "a contact present from the start was skipped"
    # Without changes in between, one walk is in the sort's order.
    walk, cursor = [], None
    while True:
        page = (await client.get("/api/v1/contacts", params={"limit": 3, "sort": sort, **(
            {"cursor": cursor} if cursor else {})}, headers=p.auth)).json()
        walk += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    stored = {str(c.id): c for c in await Contact.find({"workspace_id": p.workspace_id}).to_list()}
    assert len(walk) == len(stored) - 1  # all but the group
    assert _ordered(walk, sort, stored)
