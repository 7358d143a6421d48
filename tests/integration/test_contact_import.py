"""Issue 16, item 3 and "Bad input": CSV import of contacts, on the real embedded database.

A file is uploaded (streamed to disk, refused at 20 MB before the rest is read), read through once
(encoding, delimiter, rows) and kept in GridFS; a worker imports it in batches from there. Each bad
input gives a clear per-file (422 / 413) or per-row error (the report), and nothing stored is
corrupted. A file imported twice changes nothing the second time; a worker killed mid-file resumes
from its checkpoint without duplicating a contact.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from app.domains.contact_files import importing
from app.domains.contact_files.importing import ContactImporter
from app.domains.contact_files.models import ContactImport, ImportRefusal
from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from tests.conftest import csrf_from, sign_in
from tests.integration.outbound_env import ThreadWorker, wait_for
from tests.integration.test_large_uploads import BOUNDARY, MULTIPART, Body
from tests.support.contact_files import (
    csv_bytes,
    define,
    imported,
    make_env,
    no_queue,
    run_import,
    start,
    upload,
)

MB = 1024 * 1024


@pytest.fixture
async def env(client_factory):
    return await make_env(client_factory)


async def contacts_of(env) -> list[Contact]:
    return await Contact.find(Contact.workspace_id == env.workspace_id).sort("+created_at").to_list()


async def report_rows(env, import_id: str) -> list[list[str]]:
    answer = await env.client.get(f"/api/v1/contacts/imports/{import_id}/report.csv", headers=env.auth)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


async def test_a_semicolon_file_with_bom_quoted_newlines_typed_attributes_and_consent(env):
    await define(env, "orders", "Orders", "number")
    await define(env, "renewal", "Renewal date", "date")
    await define(env, "plan", "Plan", "list", ["Basic", "Pro"])
    await define(env, "notes", "Notes", "text")
    rows = [
        ["Mobile", "Full name", "E-mail", "Tags", "Marketing consent", "Orders", "Renewal date", "plan", "notes"],
        ["+44 7911 123456", "Ada Lovelace", "ADA@Example.com", "vip; beta", "yes", "12", "2025-03-01", "pro",
         "line one\nline two"],
        ["07911 123457", "Bob", "", "", "no", "3.5", "", "", ""],            # national: the default country (GB)
        ["+1 202-555-0143", "=HYPERLINK(\"http://evil\")", "", "", "", "", "", "", ""],  # a formula is data here
        ["12345", "Too short", "", "", "", "", "", "", ""],
        ["call me", "Letters", "", "", "", "", "", "", ""],
        ["+44 7911 123458", "Bad date", "", "", "", "", "soon", "", ""],
        ["+44 7911 123459", "Bad plan", "", "", "", "", "", "Gold", ""],
        ["+44 7911 123460", "x" * 10_000, "", "", "", "", "", "", ""],      # a 10,000-character cell
        ["4.47911E+11", "Excel ate it", "", "", "", "", "", "", ""],
        ["", "No phone", "nobody@example.com", "", "", "", "", "", ""],
        ["+44 7911 123456", "Ada Lovelace", "ada@example.com", "vip", "yes", "12", "2025-03-01", "Pro",
         "line one\nline two"],                                             # the first row again
        ["", "", "", "", "", "", "", "", ""],                               # blank: not a row
    ]
    data = b"\xef\xbb\xbf" + csv_bytes(rows, delimiter=";", newline="\r\n")
    made = await upload(env, data)
    assert made.status_code == 201, made.text
    preview = made.json()
    assert preview["status"] == "uploaded" and preview["rows"] == 11
    assert preview["encoding"].startswith("UTF-8") and preview["delimiter"] == ";"
    assert preview["mapping"] == {"Mobile": "phone", "Full name": "name", "E-mail": "email", "Tags": "tags",
                                  "Marketing consent": "consent", "Orders": "attributes.orders",
                                  "Renewal date": "attributes.renewal", "plan": "attributes.plan",
                                  "notes": "attributes.notes"}
    assert preview["preview"][0][8] == "line one\nline two" and len(preview["preview"]) == 5

    started = await start(env, preview["id"], mode="upsert", tags=["fair 2025"], default_country="GB")
    assert started.status_code == 202, started.text
    job = await run_import(preview["id"])
    assert job.status == "done" and job.error == ""
    assert job.counts.model_dump() == {"done": 11, "created": 3, "updated": 0, "unchanged": 1, "skipped": 7}

    by_phone = {c.phone: c for c in await contacts_of(env)}
    ada, bob, formula = by_phone["+447911123456"], by_phone["+447911123457"], by_phone["+12025550143"]
    assert (ada.phone, ada.wa_id, ada.name, ada.email) == ("+447911123456", "447911123456", "Ada Lovelace",
                                                           "ada@example.com")
    assert ada.identities == ["wa:447911123456"] and ada.tags == ["vip", "beta", "fair 2025"]
    assert ada.attributes == {"orders": 12, "renewal": datetime(2025, 3, 1, tzinfo=UTC), "plan": "Pro",
                              "notes": "line one\nline two"}
    assert ada.opted_out_marketing is False and [(c.source, c.by, c.opted_out) for c in ada.consent] == [
        ("import", preview["id"], False)]
    assert (bob.phone, bob.opted_out_marketing, bob.attributes) == ("+447911123457", True, {"orders": 3.5})
    assert formula.name == '=HYPERLINK("http://evil")' and formula.phone == "+12025550143"
    assert "ada" in ada.search_tokens and ada.sort_name == "ada lovelace"

    report = await report_rows(env, preview["id"])
    assert report[0] == ["row", "reason", "Mobile", "Full name", "E-mail", "Tags", "Marketing consent", "Orders",
                         "Renewal date", "plan", "notes"]
    reasons = {int(r[0]): r[1] for r in report[1:]}
    assert set(reasons) == {5, 6, 7, 8, 9, 10, 11}  # the header is row 1, a quoted newline does not make a row
    assert reasons[5] == "phone '12345' is not a valid number for GB"
    assert "not a phone number" in reasons[6]
    assert "Renewal date must be a date (YYYY-MM-DD); got 'soon'" in reasons[7]
    assert "Plan must be one of the choices" in reasons[8]
    assert "names are at most 120 characters, this one has 10000" in reasons[9]
    assert "scientific notation" in reasons[10]
    assert "a new contact needs a phone number" in reasons[11]
    assert await ImportRefusal.find_all().count() == 0  # gathered while running, kept only in the report


async def test_bad_files_are_refused_whole_with_their_reason(env):
    cases = {
        b"": "FILE_EMPTY",
        b"\xef\xbb\xbf\r\n  \n": "FILE_EMPTY",
        b"phone,name\r\n": "NO_ROWS",
        b"PK\x03\x04\x14\x00\x06\x00rest of a workbook": "NOT_CSV",
        b"\x00\x01\x02\x03\x04binary\x00\xff\xfe\x00\x00": "NOT_CSV",
    }
    for data, code in cases.items():
        answer = await upload(env, data)
        assert answer.status_code == 422 and answer.json()["error_code"] == code, (data[:20], answer.text)
    over = ("phone\n" + "+447911123456\n" * 100_001).encode()
    answer = await upload(env, over)
    assert answer.status_code == 422 and answer.json()["error_code"] == "TOO_MANY_ROWS"
    assert "more than 100,000 rows" in answer.json()["error"]
    assert await ContactImport.find_all().count() == 0

    def endless():  # 200 MB of rows, produced as they are sent
        block = b"+447911123456,Someone\n" * 3000
        for _ in range(200 * MB // len(block)):
            yield block

    body = Body(endless(), "huge.csv")
    refused = await env.client.post("/api/v1/contacts/imports", headers={**env.auth, **MULTIPART}, content=body)
    assert refused.status_code == 413 and refused.json()["error_code"] == "FILE_TOO_LARGE"
    assert "larger than 20 MB" in refused.json()["error"]
    assert body.sent < 21 * MB  # refused as it passed 20 MB: the rest never read
    no_file = await env.client.post("/api/v1/contacts/imports", headers={**env.auth, **MULTIPART},
                                    content=f"--{BOUNDARY}--\r\n".encode())
    assert no_file.status_code == 422


async def test_latin_1_and_utf_16_files_are_recognised_and_said(env):
    rows = [["phone", "name"], ["+33 6 12 34 56 78", "Zoë Ærø Müller"], ["+49 1512 3456789", "Jürgen Größe"]]
    latin = await upload(env, csv_bytes(rows, encoding="latin-1"))
    assert latin.status_code == 201, latin.text
    assert latin.json()["encoding"].startswith("Windows-1252") and "detected" in latin.json()["encoding"]
    assert latin.json()["preview"][0][1] == "Zoë Ærø Müller"
    utf16 = await upload(env, csv_bytes(rows, encoding="utf-16", delimiter="\t"))
    assert utf16.status_code == 201 and utf16.json()["encoding"].startswith("UTF-16")
    assert utf16.json()["delimiter"] == "\t" and utf16.json()["preview"][1] == ["+49 1512 3456789", "Jürgen Größe"]
    await start(env, utf16.json()["id"])
    job = await run_import(utf16.json()["id"])
    assert job.counts.created == 2
    assert sorted(c.name for c in await contacts_of(env)) == ["Jürgen Größe", "Zoë Ærø Müller"]


async def test_the_same_file_twice_changes_nothing_and_a_duplicated_row_is_unchanged(env):
    rows = [["phone", "name", "email", "tags", "opted_out"]] + [
        [f"+4479111{i:05d}", f"Person {i}", f"p{i}@example.com", "a, b", "no" if i % 2 else "yes"] for i in range(40)]
    rows.append(rows[5])  # duplicated
    data = csv_bytes(rows)
    first = await imported(env, data)
    assert first.counts.model_dump() == {"done": 41, "created": 40, "updated": 0, "unchanged": 1, "skipped": 0}
    before = {c.id: c.model_dump() for c in await contacts_of(env)}
    second = await imported(env, data)
    assert second.counts.model_dump() == {"done": 41, "created": 0, "updated": 0, "unchanged": 41, "skipped": 0}
    after = {c.id: c.model_dump() for c in await contacts_of(env)}
    assert after == before  # not even updated_at moved
    assert second.report_file_id is None
    answer = await env.client.get(f"/api/v1/contacts/imports/{second.id}/report.csv", headers=env.auth)
    assert answer.status_code == 404 and answer.json()["error_code"] == "NO_REPORT"


async def test_modes_create_only_update_only_and_both(env):
    service = ContactService()
    existing, _ = await service.upsert(env.workspace_id, wa_id="447911000001", profile_name="Known")
    rows = [["phone", "name"], ["+447911000001", "Renamed"], ["+447911000002", "New"]]
    create = await imported(env, csv_bytes(rows), mode="create")
    assert (create.counts.created, create.counts.skipped) == (1, 1)
    assert (await Contact.get(existing.id)).name == ""  # left as it was
    rows[2][1] = "New again"
    update = await imported(env, csv_bytes(rows + [["+447911000003", "Unknown"]]), mode="update")
    assert (update.counts.updated, update.counts.skipped) == (2, 1)
    assert (await Contact.get(existing.id)).name == "Renamed"
    assert await Contact.find(Contact.wa_id == "447911000003").count() == 0
    both = await imported(env, csv_bytes(rows + [["+447911000003", "Third"]]), mode="upsert", tags=["x"])
    assert both.counts.model_dump() == {"done": 3, "created": 1, "updated": 2, "unchanged": 0, "skipped": 0}
    by_user = await imported(env, csv_bytes([["user id", "email"], ["US.1234567890", "a@b.co"]]), mode="update")
    assert by_user.counts.skipped == 1  # nobody has that user id; it cannot create without a number
    assert len(await contacts_of(env)) == 3


async def test_a_number_held_only_in_identities_updates_that_contact(env):
    """A merged contact keeps its second number in ``identities`` only (its ``phone`` is the first): the
    batch's read by phone misses it, its insert fails on the unique index, and the row is planned again
    by identity: the contact is updated, never doubled."""
    merged, _ = await ContactService().upsert(env.workspace_id, wa_id="447911000001")
    await Contact.get_motor_collection().update_one(
        {"_id": merged.id}, {"$addToSet": {"identities": "wa:447911000009"}})
    job = await imported(env, csv_bytes([["phone", "name"], ["+447911000009", "Second number"],
                                         ["+447911000002", "Someone else"]]))
    assert job.counts.model_dump() == {"done": 2, "created": 1, "updated": 1, "unchanged": 0, "skipped": 0}
    assert (await Contact.get(merged.id)).name == "Second number"
    assert await Contact.find(Contact.workspace_id == env.workspace_id).count() == 2


async def test_a_worker_killed_mid_file_resumes_without_duplicates(client_factory, monkeypatch):
    """A real worker (arq, its own loop and connections) killed dead in the middle of a file: the lease
    it held lapses, the next worker's sweeper queues the import again, and it ends with every row once."""
    monkeypatch.setattr(importing, "LEASE", timedelta(seconds=5))
    env = await make_env(client_factory)
    total = 3000
    rows = [["phone", "name", "consent"]] + [[f"+4479112{i:05d}", f"P{i}", "yes"] for i in range(total)]
    made = await upload(env, csv_bytes(rows), options={})  # started: queued for a worker
    import_id = made.json()["id"]
    settings, database = env.runtime.settings, env.runtime.db
    victim = ThreadWorker(settings, database).start()

    async def some_written() -> bool:
        job = await ContactImport.get(import_id)
        return job.counts.done >= 500 or job.status != "running"

    await wait_for(some_written, timeout=120)
    victim.kill()
    job = await ContactImport.get(import_id)
    assert job.status == "running" and 0 < job.counts.done < total  # killed in the middle of the file
    survivor = ThreadWorker(settings, database).start()
    try:
        async def ended() -> ContactImport | None:
            found = await ContactImport.get(import_id)
            return found if found.status != "running" else None

        job = await wait_for(ended, timeout=240)
    finally:
        survivor.kill()
    assert job.status == "done" and job.restarts >= 1
    assert job.counts.model_dump() == {"done": total, "created": total, "updated": 0, "unchanged": 0, "skipped": 0}
    contacts = await contacts_of(env)
    assert len(contacts) == total and len({c.wa_id for c in contacts}) == total
    assert all(len(c.consent) == 1 for c in contacts)  # no consent change recorded twice


async def test_an_import_that_keeps_dying_fails_in_words_and_a_lost_job_is_queued_again(env):
    data = csv_bytes([["phone"], ["+447911123456"]])
    dying = (await upload(env, data, options={})).json()["id"]
    lost = (await upload(env, data, options={})).json()["id"]
    past = datetime(2020, 1, 1, tzinfo=UTC)
    await ContactImport.get_motor_collection().update_one(
        {"_id": (await ContactImport.get(dying)).id},
        {"$set": {"lease_until": past, "restarts": 5, "error": "MemoryError: "}})
    await ContactImport.get_motor_collection().update_one(  # queued, but Redis lost its job
        {"_id": (await ContactImport.get(lost)).id}, {"$set": {"queued_at": past}})
    queued: list[tuple[str, int]] = []

    async def remember(i: str, generation: int) -> None:
        queued.append((i, generation))

    assert await ContactImporter().sweep(remember) == 1 and queued == [(lost, 1)]
    failed = await ContactImport.get(dying)
    assert failed.status == "failed" and failed.error.startswith("Stopped 5 times before the end (last: MemoryError")
    shown = (await env.client.get(f"/api/v1/contacts/imports/{dying}", headers=env.auth)).json()
    assert shown["status"] == "failed" and "upload the file again" in shown["error"]
    assert (await run_import(lost)).counts.created == 1
    assert (await ContactImport.get(lost)).restarts == 0  # a lost job is not a crash


async def test_the_page_previews_maps_starts_and_shows_progress_then_the_report(env):
    await define(env, "city", "City", "text")
    client = env.client
    assert (await sign_in(client, env.setup.email, env.setup.password)).status_code in (302, 303)
    page = await client.get("/contacts/import")
    assert page.status_code == 200 and 'type="file"' in page.text
    headers = {"X-CSRFToken": csrf_from(page.text), "HX-Request": "true"}
    data = csv_bytes([["Nom", "Téléphone", "Ville"], ["Ana", "06 12 34 56 78", "Lyon"], ["Bea", "nope", "Paris"]])
    answer = await client.post("/contacts/import", headers=headers, files={"file": ("clients.csv", data, "text/csv")})
    assert answer.status_code == 200 and answer.headers.get("hx-redirect", "").startswith("/contacts/import/")
    url = answer.headers["hx-redirect"]
    # Without JavaScript: a classic form (its CSRF token a field), and a bad file shown in words on the page.
    classic = await client.post("/contacts/import", data={"_csrf_token": csrf_from(page.text)},
                                files={"file": ("same.csv", data, "text/csv")}, follow_redirects=False)
    assert classic.status_code == 303 and classic.headers["location"].startswith("/contacts/import/")
    empty = await client.post("/contacts/import", data={"_csrf_token": csrf_from(page.text)},
                              files={"file": ("empty.csv", b"", "text/csv")})
    assert empty.status_code == 422 and "The file is empty." in empty.text
    shown = await client.get(url)
    assert "Lyon" in shown.text and 'name="map"' in shown.text and "Attribute: City" in shown.text
    # The mapping is chosen on the page (nothing was guessed from these French names but "Ville" → skip).
    form = {"_csrf_token": csrf_from(shown.text), "map": ["name", "phone", "attributes.city"], "mode": "upsert",
            "tags": "salon", "default_country": "FR"}
    started = await client.post(url, data=form, follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"] == url
    running = await client.get(url)
    assert 'hx-trigger="every 1s"' in running.text and "<progress" in running.text  # polls while it runs
    await run_import(url.rsplit("/", 1)[1])
    fragment = await client.get(f"{url}/progress", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "hx-trigger" not in fragment.text  # polling stops at the end
    assert 'data-count="created">1<' in fragment.text and 'data-count="skipped">1<' in fragment.text
    assert f'href="{url}/report.csv"' in fragment.text
    report = await client.get(f"{url}/report.csv")
    lines = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert lines[1][:2] == ["3", "phone 'nope' is not a phone number (only digits, spaces, + - . ( ) allowed)"]
    ana = (await contacts_of(env))[0]
    assert (ana.name, ana.phone, ana.attributes, ana.tags) == ("Ana", "+33612345678", {"city": "Lyon"}, ["salon"])
    again = await client.post(url, data=form, follow_redirects=False)
    assert again.status_code == 409 or "started already" in again.text


async def test_imports_are_for_admins_and_bad_options_are_422(env):
    data = csv_bytes([["phone"], ["+447911123456"]])
    assert (await upload(env, data, headers=env.agent_auth)).status_code == 403
    made = (await upload(env, data)).json()
    assert (await env.client.get(f"/api/v1/contacts/imports/{made['id']}", headers=env.agent_auth)).status_code == 403
    for options, code in (({"mapping": {"phone": "nonsense"}}, "MAPPING_INVALID"),
                          ({"mapping": {"nope": "phone"}}, "MAPPING_INVALID"),
                          ({"mapping": {"phone": ""}}, "MAPPING_INVALID"),
                          ({"default_country": "XX"}, "COUNTRY_INVALID"),
                          ({"tags": ["bad,tag"]}, "BAD_TAG")):
        answer = await start(env, made["id"], **options)
        assert answer.status_code == 422 and answer.json()["error_code"] == code, (options, answer.text)
    bad_json = await upload(env, data, options=None)
    assert bad_json.status_code == 201
    answer = await env.client.post("/api/v1/contacts/imports", headers=env.auth, data={"options": "{not json"},
                                   files={"file": ("c.csv", data, "text/csv")})
    assert answer.status_code == 422 and answer.json()["error_code"] == "OPTIONS_INVALID"
    assert (await start(env, made["id"])).status_code == 202
    assert (await start(env, made["id"])).status_code == 409
    assert (await env.client.get("/api/v1/contacts/imports/000000000000000000000000", headers=env.auth)
            ).status_code == 404
