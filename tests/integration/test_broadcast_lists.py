"""Issue 18, item 1: a broadcast's audience from an uploaded list (a CSV of customers' numbers).

The list is imported as Contacts → Import does (new numbers become contacts, known ones are found, bad rows
are refused with their reason), each row's contact tagged with the list's tag; the broadcast goes to them once
each. Start waits for the import (409 LIST_IMPORTING); bad files and bad options are refused with a reason and
leave the draft as it was. Only Meta is simulated (the sandbox); the worker is the real one, in-process.
"""

from __future__ import annotations

import html
from typing import Any

from app.domains.broadcasts.models import Broadcast
from app.domains.contact_files.models import ContactImport
from app.domains.contacts.models import Contact
from app.domains.media.models import StoredMedia
from app.domains.messages.models import Message
from tests.conftest import csrf_from
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401
from tests.integration.test_broadcast_pages import press, signed_in, text_of
from tests.integration.test_broadcasts import draft, finished, world
from tests.support.contact_files import csv_bytes, run_import

KNOWN = "+4915112345678"
LIST = csv_bytes([["Phone", "Name", "City"],
                  ["+49 151 12345678", "Known again", "Bonn"],       # a contact already there: found, not doubled
                  ["+44 7911 123456", "Ada", "London"],
                  ["07911 123457", "Bob", "Leeds"],                  # national: the default country (GB)
                  ["call me", "Nobody", ""],                         # refused, with its reason
                  ["+44 7911 123456", "Ada", "London"]])             # the same number twice: one contact


async def upload_list(env: Any, bid: str, data: bytes = LIST, *, name: str = "spring customers.csv",
                      country: str | None = "GB") -> Any:
    return await env.client.post(f"/api/v1/broadcasts/{bid}/lists", headers=env.headers,
                                 data={"default_country": country} if country is not None else None,
                                 files={"file": (name, data, "text/csv")})


async def a_draft(env: Any, account: Any, **changes: Any) -> str:
    made = await env.client.post("/api/v1/broadcasts", headers=env.headers, json=draft(account, **changes))
    assert made.status_code == 201, made.text
    return made.json()["id"]


async def imported(import_id: str) -> ContactImport:
    async def ended() -> ContactImport | None:
        job = await ContactImport.get(import_id)
        return job if job.status not in ("uploaded", "running") else None

    return await wait_for(ended, timeout=60)


async def test_an_uploaded_list_becomes_contacts_and_each_gets_the_broadcast_once(outbound):  # noqa: F811
    env, account, _ = await world(outbound)
    known = await env.client.post("/api/v1/contacts", headers=env.headers, json={"phone": KNOWN, "name": "Known"})
    assert known.status_code == 201, known.text
    before = await Contact.find({"workspace_id": env.workspace_id}).count()
    bid = await a_draft(env, account, audience={"tags": []}, params=[{"source": "name"},
                                                                     {"source": "attribute", "value": "city",
                                                                      "fallback": "your city"}])
    answer = await upload_list(env, bid)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    listed = body["broadcast"]["audience"]["lists"]
    assert len(listed) == 1 and listed[0]["filename"] == "spring customers.csv"
    tag = listed[0]["tag"]
    assert tag.startswith("list:spring customers:")
    job = await imported(body["import"]["id"])
    assert job.status == "done" and job.counts.created == 2 and job.counts.skipped == 1

    # Two new contacts (one number listed twice), the known one found, not doubled.
    assert await Contact.find({"workspace_id": env.workspace_id}).count() == before + 2
    tagged = await Contact.find({"workspace_id": env.workspace_id, "tags": tag}).to_list()
    assert sorted(c.phone for c in tagged) == ["+447911123456", "+447911123457", KNOWN]
    counted = (await env.client.get(f"/api/v1/broadcasts/{bid}/audience", headers=env.headers)).json()
    assert counted["contacts"] == 3

    assert (await env.client.post(f"/api/v1/broadcasts/{bid}/start", headers=env.headers, json={})).status_code == 200
    done = await finished(bid)
    assert done.status == "completed" and done.total == 3
    sent = await Message.find({"broadcast.id": bid}).to_list()
    assert sorted(m.recipient for m in sent) == sorted(c.phone for c in tagged)


async def test_start_waits_for_the_list_to_be_imported(outbound):  # noqa: F811
    env, account, _ = await world(outbound, inline_worker=False)
    bid = await a_draft(env, account)
    body = (await upload_list(env, bid)).json()
    import_id = body["import"]["id"]
    refused = await env.client.post(f"/api/v1/broadcasts/{bid}/start", headers=env.headers, json={})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error_code"] == "LIST_IMPORTING"
    assert "spring customers.csv" in refused.json()["error"] and refused.json()["details"]["import_id"] == import_id
    assert (await Broadcast.get(bid)).status == "draft"
    await run_import(import_id)
    started = await env.client.post(f"/api/v1/broadcasts/{bid}/start", headers=env.headers, json={})
    assert started.status_code == 200, started.text


async def test_bad_lists_are_refused_with_their_reason_and_the_draft_is_unchanged(outbound):  # noqa: F811
    env, account, _ = await world(outbound, inline_worker=False)
    bid = await a_draft(env, account)
    imports_before = await ContactImport.find({"workspace_id": env.workspace_id}).count()
    files_before = await StoredMedia.find({"metadata.workspace_id": env.workspace_id}).count()

    no_phone = await upload_list(env, bid, csv_bytes([["Name", "City"], ["Ada", "London"]]))
    assert no_phone.status_code == 422 and no_phone.json()["error_code"] == "LIST_NO_PHONE"
    bad_country = await upload_list(env, bid, country="Germany")
    assert bad_country.status_code == 422 and bad_country.json()["error_code"] == "COUNTRY_INVALID"
    empty = await upload_list(env, bid, b"")
    assert empty.status_code == 422, empty.text
    not_multipart = await env.client.post(f"/api/v1/broadcasts/{bid}/lists", headers=env.headers, json={})
    assert not_multipart.status_code == 422 and not_multipart.json()["error_code"] == "MULTIPART_REQUIRED"
    assert (await Broadcast.get(bid)).audience.lists == []
    assert await ContactImport.find({"workspace_id": env.workspace_id}).count() == imports_before
    assert await StoredMedia.find({"metadata.workspace_id": env.workspace_id}).count() == files_before  # none left

    # A list stays through a PUT that names it, goes with one that leaves it out; another id is refused.
    listed = (await upload_list(env, bid)).json()["broadcast"]
    assert await StoredMedia.find({"metadata.workspace_id": env.workspace_id}).count() == files_before + 1
    kept = await env.client.put(f"/api/v1/broadcasts/{bid}", headers=env.headers,
                                json=draft(account, audience={"tags": ["vip"], "lists": listed["audience"]["lists"]}))
    assert kept.status_code == 200 and kept.json()["audience"]["lists"] == listed["audience"]["lists"]
    forged = await env.client.put(f"/api/v1/broadcasts/{bid}", headers=env.headers, json=draft(account, audience={
        "tags": ["vip"], "lists": [{"import_id": "0" * 24, "tag": "vip"}]}))
    assert forged.status_code == 422 and forged.json()["error_code"] == "AUDIENCE_INVALID"
    dropped = await env.client.put(f"/api/v1/broadcasts/{bid}", headers=env.headers, json=draft(account))
    assert dropped.status_code == 200 and dropped.json()["audience"]["lists"] == []

    # Not a draft any more: refused, nothing imported.
    await env.client.post(f"/api/v1/broadcasts/{bid}/start", headers=env.headers, json={})
    late = await upload_list(env, bid)
    assert late.status_code == 409 and late.json()["error_code"] == "BROADCAST_STARTED"


async def test_the_draft_page_uploads_a_list_and_shows_its_import(outbound):  # noqa: F811
    env, account, _ = await signed_in(outbound, inline_worker=False)
    bid = await a_draft(env, account)
    page = await env.client.get(f"/admin/broadcasts/{bid}")
    assert 'action="/admin/broadcasts/' + bid + '/lists"' in page.text and "Upload a list (CSV)" in page.text
    posted = await env.client.post(f"/admin/broadcasts/{bid}/lists", data={"_csrf_token": csrf_from(page.text),
                                                                          "default_country": "GB"},
                                   files={"file": ("spring customers.csv", LIST, "text/csv")}, follow_redirects=False)
    assert posted.status_code == 303, posted.text
    shown = await env.client.get(posted.headers["location"])
    words = text_of(shown.text)
    assert "List uploaded" in words and "spring customers.csv" in words and "importing" in words
    assert 'hx-trigger="every 2s"' in shown.text  # the section asks again while the import runs
    job = (await Broadcast.get(bid)).audience.lists[0]
    await run_import(job.import_id)
    section = await env.client.get(f"/admin/broadcasts/{bid}/audience")
    words = text_of(section.text)
    assert "imported: 3 new contacts, 1 row of known ones, 1 row refused" in words, words
    assert "every 2s" not in section.text
    refused = await press(env.client, bid, "start")
    assert refused.status_code == 303, refused.text  # imported: it starts
    bad = await env.client.post(f"/admin/broadcasts/{bid}/lists", data={"_csrf_token": csrf_from(page.text)},
                                files={"file": ("x.csv", b"Name\nAda\n", "text/csv")}, follow_redirects=False)
    assert bad.status_code == 409 and "has started" in html.unescape(bad.text)
