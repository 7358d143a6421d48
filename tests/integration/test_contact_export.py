"""Issue 16, item 4: contacts out as CSV, streamed for the list as filtered, by a worker when large.

Every attribute is a column (defined ones, and keys contacts carry without a definition), shown as the
page shows it; identities, tags and consent are in; a cell a spreadsheet would run (``=HYPERLINK``, a
phone's ``+``) starts with an apostrophe, and the import reads such a file back unchanged. Groups are
never exported.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from beanie import PydanticObjectId

from app.domains.contact_files import api as contact_files_api
from app.domains.contact_files import controllers as contact_files_pages
from app.domains.contact_files.export_jobs import ContactExports
from app.domains.contact_files.models import ContactExport
from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from app.domains.media.models import StoredMedia
from tests.conftest import sign_in
from tests.support.contact_files import AGENT_EMAIL, AGENT_PASSWORD, define, imported, make_env, run_export


@pytest.fixture
async def env(client_factory):
    env = await make_env(client_factory)
    await define(env, "plan", "Plan", "list", ["Basic", "Pro"])
    await define(env, "renewal", "Renewal", "date")
    await define(env, "vip", "VIP", "boolean")
    service = ContactService()
    ada, _ = await service.upsert(env.workspace_id, wa_id="447911123456", user_id="GB.1111", profile_name="Ada")
    await Contact.get_motor_collection().update_one({"_id": ada.id}, {"$set": {
        "name": '=HYPERLINK("http://evil.example","click")', "email": "ada@example.com", "tags": ["vip", "beta"],
        "attributes": {"plan": "Pro", "renewal": datetime(2025, 3, 1, tzinfo=UTC), "vip": True, "legacy": "-5 kg"}}})
    await service.set_marketing_opt_out(env.workspace_id, ada.id, True, source="api", by="integration")
    bob, _ = await service.upsert(env.workspace_id, wa_id="447911123457", profile_name="Bob")
    await service.group(env.workspace_id, "120363040000000001", subject="Team chat")
    env.ada, env.bob = ada, bob
    return env


def parse(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with its byte-order mark
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


async def test_export_streams_every_attribute_identities_consent_and_escapes_formulas(env):
    answer = await env.client.get("/api/v1/contacts/export.csv", headers=env.agent_auth)  # agents may export
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith('attachment; filename="contacts-')
    rows = parse(answer.content)
    assert [r["wa_id"] for r in rows] == ["447911123456", "447911123457"]  # the group is not a contact to export
    ada = rows[0]
    assert list(ada)[:3] == ["id", "phone", "wa_id"] and {"plan", "renewal", "vip", "legacy"} <= set(ada)
    assert ada["name"] == "'=HYPERLINK(\"http://evil.example\",\"click\")"  # a spreadsheet shows it, never runs it
    assert ada["phone"] == "'+447911123456" and ada["legacy"] == "'-5 kg"
    assert (ada["plan"], ada["renewal"], ada["vip"]) == ("Pro", "2025-03-01", "yes")
    assert ada["tags"] == "vip, beta" and ada["email"] == "ada@example.com" and ada["user_id"] == "GB.1111"
    assert ada["identities"] == "wa:447911123456 user:GB.1111"
    assert (ada["opted_out_marketing"], ada["consent_source"]) == ("yes", "api") and ada["consent_changed_at"]
    assert rows[1]["opted_out_marketing"] == "no" and rows[1]["plan"] == ""


async def test_export_follows_the_filter_the_search_and_the_list_page(env):
    tagged = json.dumps({"conditions": [{"field": "tag", "op": "has", "value": "vip"}]})
    answer = await env.client.get("/api/v1/contacts/export.csv", params={"filter": tagged}, headers=env.auth)
    assert [r["wa_id"] for r in parse(answer.content)] == ["447911123456"]
    searched = await env.client.get("/api/v1/contacts/export.csv", params={"q": "bob"}, headers=env.auth)
    assert [r["wa_id"] for r in parse(searched.content)] == ["447911123457"]
    bad = await env.client.get("/api/v1/contacts/export.csv", params={"filter": "{nope"}, headers=env.auth)
    assert bad.status_code == 422 and bad.json()["error_code"] == "FILTER_INVALID"
    unknown = await env.client.get("/api/v1/contacts/export.csv", params={"offset": "1"}, headers=env.auth)
    assert unknown.status_code == 400
    # The page exports what its list shows, from the same query string (the list's "Export CSV" link).
    await sign_in(env.client, AGENT_EMAIL, AGENT_PASSWORD)
    page = await env.client.get("/contacts/export.csv", params=[("field", "opted_out"), ("op", "is"),
                                                                 ("value", "true")])
    assert page.status_code == 200 and [r["wa_id"] for r in parse(page.content)] == ["447911123456"]
    chosen = await env.client.get("/contacts/export.csv", params=[("id", str(env.bob.id))])  # the ticked rows
    assert [r["wa_id"] for r in parse(chosen.content)] == ["447911123457"]
    assert (await env.client.get("/contacts/import")).status_code == 403  # importing is for admins


async def test_an_exported_file_imports_back_unchanged(env):
    answer = await env.client.get("/api/v1/contacts/export.csv", headers=env.auth)
    before = {c.id: c.model_dump() for c in await Contact.find(Contact.workspace_id == env.workspace_id).to_list()}
    job = await imported(env, answer.content)
    assert job.counts.model_dump() == {"done": 2, "created": 0, "updated": 0, "unchanged": 2, "skipped": 0}
    after = {c.id: c.model_dump() for c in await Contact.find(Contact.workspace_id == env.workspace_id).to_list()}
    assert after == before


async def test_a_large_export_is_prepared_by_a_worker_in_parts_and_downloaded_whole(env, monkeypatch):
    service = ContactService()
    for i in range(9):
        await service.upsert(env.workspace_id, wa_id=f"4479111000{i:02d}", profile_name=f"Extra {i}")
    monkeypatch.setattr(contact_files_api, "STREAM_LIMIT", 5)
    too_many = await env.client.get("/api/v1/contacts/export.csv", headers=env.auth)
    assert too_many.status_code == 422 and too_many.json()["error_code"] == "EXPORT_TOO_LARGE"
    made = await env.client.post("/api/v1/contacts/exports", headers=env.agent_auth, json={})
    assert made.status_code == 202, made.text
    assert made.json()["status"] == "running" and made.json()["download_url"] is None
    export_id = made.json()["id"]
    # Slices of no time at all, pages of 4: one part per page, each slice queuing the next.
    job = await run_export(export_id, ContactExports(slice_seconds=0, page=4))
    assert job.status == "done" and job.rows == 11 and job.total == 11 and len(job.parts) == 3
    shown = (await env.client.get(f"/api/v1/contacts/exports/{export_id}", headers=env.auth)).json()
    assert shown["download_url"] == f"/api/v1/contacts/exports/{export_id}/download"
    download = await env.client.get(shown["download_url"], headers=env.auth)
    assert download.status_code == 200 and int(download.headers["content-length"]) == len(download.content)
    rows = parse(download.content)
    assert len(rows) == 11 and len({r["id"] for r in rows}) == 11  # one header, one BOM, every contact once
    assert download.content.count(b"\xef\xbb\xbf") == 1 and download.content.count(b"id,phone,wa_id") == 1
    assert await StoredMedia.find({"metadata.kind": "contacts-export"}).count() == 3
    filtered = await env.client.post("/api/v1/contacts/exports", headers=env.auth, json={
        "filter": {"conditions": [{"field": "tag", "op": "has", "value": "beta"}]}})
    job = await run_export(filtered.json()["id"])
    assert job.rows == 1
    bad = await env.client.post("/api/v1/contacts/exports", headers=env.auth, json={"segment": "nope"})
    assert bad.status_code == 404
    other = await env.client.get("/api/v1/contacts/exports/000000000000000000000000", headers=env.auth)
    assert other.status_code == 404

    # The page: above the limit it offers the background export, then shows its progress and the link.
    monkeypatch.setattr(contact_files_pages, "STREAM_LIMIT", 5)
    await sign_in(env.client, AGENT_EMAIL, AGENT_PASSWORD)
    offer = await env.client.get("/contacts/export.csv")
    assert offer.status_code == 200 and "Prepare the export" in offer.text
    from tests.conftest import csrf_from

    started = await env.client.post("/contacts/exports", data={"_csrf_token": csrf_from(offer.text), "filter": "",
                                                               "q": "", "segment": ""}, follow_redirects=False)
    assert started.status_code == 303
    url = started.headers["location"]
    waiting = await env.client.get(url)
    assert 'hx-trigger="every 1s"' in waiting.text
    await run_export(url.rsplit("/", 1)[1])
    ready = await env.client.get(f"{url}/progress")
    assert "hx-trigger" not in ready.text and f'href="{url}/download"' in ready.text
    assert len(parse((await env.client.get(f"{url}/download")).content)) == 11
    assert await ContactExport.find_all().count() == 3


async def test_files_of_old_imports_and_exports_are_deleted_and_say_so(env):
    """Past INBOX_CONTACT_FILES_KEEP_DAYS, the upload, the refusals report and the export's parts are gone
    from the store; the import keeps its counts, its report and the export answer 410 with why; recent
    ones are untouched."""
    from app.domains.contact_files.models import ContactImport
    from app.domains.contact_files.retention import delete_old_files
    from tests.support.contact_files import csv_bytes, upload

    rows = [["phone", "name"], ["+447911123999", "Cy"], ["not a number", "Dee"]]
    old = await imported(env, csv_bytes(rows))
    recent = await imported(env, csv_bytes(rows))
    never_started = (await upload(env, csv_bytes(rows))).json()["id"]
    export = await run_export((await env.client.post("/api/v1/contacts/exports", headers=env.auth, json={})).json()["id"])
    assert old.report_file_id is not None and export.status == "done"
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    await ContactImport.get_motor_collection().update_many(
        {"_id": {"$in": [old.id, PydanticObjectId(never_started)]}},
        {"$set": {"finished_at": long_ago, "created_at": long_ago}})
    await ContactExport.get_motor_collection().update_one({"_id": export.id}, {"$set": {"finished_at": long_ago}})
    files_before = await StoredMedia.find_all().count()

    assert await delete_old_files(30) == (2, 1)
    assert await delete_old_files(30) == (0, 0)  # once
    # The old upload, its report, the never-started upload and the export's part are gone.
    assert await StoredMedia.find_all().count() == files_before - 4
    report = await env.client.get(f"/api/v1/contacts/imports/{old.id}/report.csv", headers=env.auth)
    assert report.status_code == 410 and report.json()["error_code"] == "REPORT_DELETED"
    shown = (await env.client.get(f"/api/v1/contacts/imports/{old.id}", headers=env.auth)).json()
    assert shown["counts"]["created"] == 1 and shown["counts"]["skipped"] == 1 and shown["files_deleted_at"]
    assert (await env.client.get(f"/api/v1/contacts/imports/{never_started}", headers=env.auth)).json()[
        "status"] == "cancelled"
    kept = await env.client.get(f"/api/v1/contacts/imports/{recent.id}/report.csv", headers=env.auth)
    assert kept.status_code == 200 and "not a number" in kept.text
    download = await env.client.get(f"/api/v1/contacts/exports/{export.id}/download", headers=env.auth)
    assert download.status_code == 410 and download.json()["error_code"] == "EXPORT_EXPIRED"
    assert (await env.client.get(f"/api/v1/contacts/exports/{export.id}", headers=env.auth)).json()[
        "status"] == "expired"
    await sign_in(env.client, env.setup.email, env.setup.password)
    page = await env.client.get(f"/contacts/import/{old.id}")
    assert "the report of skipped rows were deleted on" in page.text and "report.csv" not in page.text
    await sign_in(env.client, AGENT_EMAIL, AGENT_PASSWORD)
    page = await env.client.get(f"/contacts/exports/{export.id}")
    assert "Export the list again" in page.text
