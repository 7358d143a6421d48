"""The contacts page in Chromium, on `inbox run --demo`: a saved segment, a condition built row by
row, a bulk tag on the ticked contact, and one contact's page (typed attributes, a note, opting out
with its history, "Message" into the inbox)."""

from __future__ import annotations

from app.demo import DEMO_ADMIN
from tests.browser.inbox_support import csp_violations, demo, settled, sign_in, watch_console  # noqa: F401


def _names(page) -> list[str]:
    return sorted(page.locator("#contact-rows td:nth-child(2) a").all_inner_texts())


def test_contacts_list_segment_conditions_bulk_and_a_contacts_page(browser, screenshot, demo):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password, DEMO_ADMIN)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    page.wait_for_url(demo.base + "/contacts")
    page.locator("#contact-rows", has_text="Maria Silva").wait_for()
    assert "Omar Haddad" in _names(page)

    # The demo's saved segment: plan is pro.
    page.locator(".segments").get_by_role("link", name="Pro customers").click()
    page.locator(".bulk-bar .total", has_text="2 contacts").wait_for()
    assert _names(page) == ["Aiko Tanaka", "Maria Silva"]

    # A condition built row by row: the field decides the operators and the value's input.
    page.locator(".segments").get_by_role("link", name="All contacts").click()
    page.locator(".bulk-bar .total", has_text="6 contacts").wait_for()
    page.get_by_role("button", name="+ Add condition").click()
    page.get_by_label("Field", exact=True).wait_for()
    settled(page)
    page.get_by_label("Field", exact=True).select_option(label="Tag")
    page.get_by_label("Operator", exact=True).wait_for()
    settled(page)
    page.get_by_label("Value", exact=True).fill("lead")
    page.get_by_role("button", name="Apply").click()
    page.locator(".bulk-bar .total", has_text="2 contacts").wait_for()
    assert _names(page) == ["John Doe", "Lucía Hernández"]
    screenshot(page, "contacts-list-condition")

    # Bulk: tag the ticked contact.
    page.get_by_label("Select John Doe").check()
    page.get_by_label("Action").select_option("add_tags")
    page.get_by_label("Tags or value").fill("spring")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".bulk-bar").get_by_role("button", name="Run action").click()
    page.locator(".notice.success").wait_for()
    assert "spring" in page.locator("#contact-rows tr", has_text="John Doe").inner_text()

    # One contact's page.
    page.goto(demo.base + "/contacts")
    page.get_by_role("link", name="Maria Silva").click()
    page.get_by_role("heading", name="Maria Silva").wait_for()
    assert page.get_by_label("Plan").input_value() == "pro"
    assert page.get_by_label("Renewal date").input_value() == "2027-01-15"
    page.get_by_label("New note").fill("Orders every Monday")
    page.get_by_role("button", name="Add note").click()
    page.locator(".notes", has_text="Orders every Monday").wait_for()
    page.get_by_role("button", name="Opt out").click()
    page.locator(".consent-history", has_text="Opted out by an agent").wait_for()
    screenshot(page, "contacts-contact-page")
    page.get_by_label("Message from").select_option(index=0)
    page.get_by_role("button", name="Message", exact=True).click()
    page.wait_for_url(lambda url: "/inbox?c=" in url)
    page.locator("#thread-name", has_text="Maria Silva").wait_for()
    assert not csp_violations(seen), "\n".join(seen["errors"])
    context.close()
