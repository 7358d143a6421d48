"""Issue 20, the audit log: admin actions recorded with who, when, from where and what changed; a token change is
shown without the token; people's role changes with before and after; an erasure keeps no personal data; entries
past the retention are deleted. Everything goes through the product's API and pages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import utcnow
from app.domains.audit.models import AuditEntry
from app.domains.audit.services import purge
from tests.conftest import sign_in
from tests.support.inbound import deliver, envelope, make_setup, text_message

NEW_TOKEN = "-".join(("EAAG", "brand", "new", "token", "9f8e"))


@pytest.fixture
async def shop(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    setup = await make_setup(client.app.state.runtime)
    return client, setup


async def audit(client, setup, **params) -> list[dict]:
    answer = await client.get("/api/v1/audit", headers=setup.auth, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


async def test_a_token_change_is_recorded_without_the_token(shop):
    client, setup = shop
    changed = await client.patch(f"/api/v1/accounts/{setup.account.id}", headers=setup.auth,
                                 json={"access_token": NEW_TOKEN, "name": "Main line"})
    assert changed.status_code == 200, changed.text
    (entry,) = await audit(client, setup, action="number.token_changed")
    assert entry["actor"] == "API key tests (owner@example.com)" and entry["target_id"] == str(setup.account.id)
    assert entry["changes"] == {"access_token": "changed", "name": {"from": "Main", "to": "Main line"}}
    assert entry["request_id"] == changed.headers["x-request-id"] and entry["ip"]
    stored = await AuditEntry.find_all().to_list()
    assert NEW_TOKEN not in str([e.model_dump() for e in stored])
    # The admin screen shows it, without the token either.
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get("/admin/audit", params={"action": "number."})
    assert page.status_code == 200 and "number.token_changed" in page.text and "API key tests (owner@" in page.text
    assert NEW_TOKEN not in page.text and "access_token</strong>:\n        changed" in page.text


async def test_people_and_keys_with_before_and_after(shop):
    client, setup = shop
    added = await client.post("/api/v1/users", headers=setup.auth,
                              json={"email": "eve@example.com", "name": "Eve", "role": "agent",
                                    "password": "a long enough password"})
    assert added.status_code == 201, added.text
    user_id = added.json()["id"]
    assert (await client.patch(f"/api/v1/users/{user_id}", headers=setup.auth,
                               json={"role": "supervisor"})).status_code == 200
    key = await client.post("/api/v1/api-keys", headers=setup.auth, json={"name": "CRM sync", "role": "agent"})
    assert key.status_code == 201, key.text
    entries = await audit(client, setup)
    assert [e["action"] for e in entries[:3]] == ["api_key.created", "user.role_changed", "user.added"]
    assert entries[1]["changes"] == {"role": {"from": "agent", "to": "supervisor"}}
    assert entries[1]["target_name"] == "eve@example.com"
    assert len(key.json()["key"]) > 20 and key.json()["key"] not in str(entries)  # the key itself is never kept
    assert [e["action"] for e in await audit(client, setup, actor="nobody")] == []
    paged = await client.get("/api/v1/audit", headers=setup.auth, params={"limit": 2})
    rest = await client.get("/api/v1/audit", headers=setup.auth,
                            params={"limit": 2, "cursor": paged.json()["next_cursor"]})
    assert [e["id"] for e in paged.json()["data"] + rest.json()["data"]] == [e["id"] for e in entries[:4]]


async def test_an_erasure_is_recorded_by_counts_only(shop):
    client, setup = shop
    runtime = client.app.state.runtime
    await deliver(runtime, setup, envelope(messages=[text_message("My name is Zelda Quux", from_="4915100000099")],
                                           ))
    contacts = await client.get("/api/v1/contacts", headers=setup.auth, params={"q": "4915100000099"})
    contact_id = contacts.json()["data"][0]["id"]
    erased = await client.delete(f"/api/v1/contacts/{contact_id}", headers=setup.auth)
    assert erased.status_code in (200, 204), erased.text
    (entry,) = await audit(client, setup, action="contact.erased")
    assert entry["target_id"] == contact_id and entry["changes"]["messages"] == 1
    assert "Zelda" not in str(entry) and "4915100000099" not in str(entry)


async def test_entries_past_the_retention_are_deleted(shop):
    client, setup = shop
    await client.patch(f"/api/v1/accounts/{setup.account.id}", headers=setup.auth, json={"name": "Renamed"})
    old = AuditEntry(workspace_id=setup.workspace_id, action="number.changed", target_type="number",
                     at=utcnow() - timedelta(days=400))
    await old.insert()
    assert await purge(365) == 1
    # (the number was added by the test's setup, outside any request: by "the system")
    assert [(e["action"], e["actor"]) for e in await audit(client, setup)] == [
        ("number.changed", "API key tests (owner@example.com)"), ("number.added", "the system")]


async def test_bad_filters_are_refused(shop):
    client, setup = shop
    for params in ({"cursor": "yesterday"}, {"limit": 0}):
        answer = await client.get("/api/v1/audit", headers=setup.auth, params=params)
        assert answer.status_code == 400 and answer.json()["error_code"] == "FILTER_INVALID"
