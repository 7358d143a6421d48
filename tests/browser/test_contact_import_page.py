"""An admin imports a CSV of contacts in the browser: uploads it, checks the preview and the guessed
mapping, starts it, and watches the progress bar move to the end with no reload (the page polls its
progress fragment), then downloads the report of refused rows; a reload mid-way shows where it is.

Runs the real `inbox run --sandbox` (its worker runs the import through arq) and Chromium.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import expect

from tests.integration.test_cli import ADMIN_ENV
from tests.support.process import inbox_process

ROWS = 1500


def contacts_file() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(["Téléphone", "Nom", "E-mail", "Tags"])
    for i in range(ROWS):
        writer.writerow([f"07911 1{i:05d}", f"Client {i}", f"client{i}@example.com", "salon"])
    writer.writerow(["not a number", "Broken", "", ""])
    return buffer.getvalue().encode("cp1252")


def test_an_admin_imports_a_csv_and_watches_it_finish_live(browser, screenshot, tmp_path):
    with inbox_process("run", "--sandbox", env=ADMIN_ENV, data_dir=tmp_path) as (_, base):
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        errors: list[str] = []
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(base + "/login")
        page.get_by_label("Email").fill("ops@example.com")
        page.get_by_label("Password").fill("deploy password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/inbox")

        page.goto(base + "/contacts/import")
        page.get_by_label("CSV file").set_input_files(
            files=[{"name": "clients.csv", "mimeType": "text/csv", "buffer": contacts_file()}])
        page.get_by_role("button", name="Upload and preview").click()
        page.wait_for_url(re.compile(r"/contacts/import/[0-9a-f]{24}$"))
        expect(page.get_by_text("1,501 rows")).to_be_visible()
        expect(page.get_by_text("Windows-1252")).to_be_visible()  # not UTF-8: recognised, and said
        table = page.get_by_role("table", name="The file's first rows")
        expect(table).to_contain_text("Client 0")
        expect(page.get_by_label("Field for E-mail")).to_have_value("email")  # guessed from the header
        page.get_by_label("Field for Téléphone").select_option("phone")  # not guessed (French): chosen here
        page.get_by_label("Field for Nom").select_option("name")
        page.get_by_label("Default country").fill("GB")
        page.get_by_label("Tags to add").fill("imported")
        screenshot(page, "contacts-import-preview")
        page.get_by_role("button", name="Start the import").click()

        progress = page.locator("#import-progress")
        expect(progress.get_by_role("heading")).to_have_text(re.compile("Waiting for a worker|Importing|Done"))
        page.reload()  # the page shows where the import is, and goes on polling
        expect(progress.get_by_role("heading")).to_have_text("Done", timeout=60_000)
        expect(progress.locator('[data-count="created"]')).to_have_text("1,500")
        expect(progress.locator('[data-count="skipped"]')).to_have_text("1")
        expect(page.locator("#import-bar")).to_have_attribute("value", str(ROWS + 1))
        screenshot(page, "contacts-import-done")
        with page.expect_download() as download:
            progress.get_by_role("link", name=re.compile("skipped rows")).click()
        report = download.value.path().read_text(encoding="utf-8-sig")
        assert "not a number" in report and "is not a phone number" in report
        assert errors == []  # no request of the page failed (the progress polls included)
