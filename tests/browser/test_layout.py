"""What fits on a laptop (1366×768) and a phone (390×844): issue 14, item 15."""

from __future__ import annotations

import pytest

from tests.browser.inbox_support import DEMO_ADMIN, demo, sign_in  # noqa: F401

LONG_NAME = "Maximiliana Konstantinopoulou-Vanderbergh de la Fuente"
LONG_TEXT = "Hello! " + "I would like to know more about the very long product description " * 4


def inside(box, right: float, bottom: float) -> bool:
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= right + 0.5 \
        and box["y"] + box["height"] <= bottom + 0.5


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)])
def test_unread_rows_and_the_send_button_stay_on_screen(browser, demo, width, height):
    demo.customer_writes("447700900999", LONG_NAME, {"type": "text", "text": {"body": LONG_TEXT}})
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    sign_in(page, demo.base, demo.password)
    row = page.locator(".conv-row", has_text=LONG_NAME)
    row.wait_for()
    column = page.locator("#conv-items").bounding_box()
    for part in (".unread-badge", ".conv-time"):
        box = row.locator(part).bounding_box()
        assert inside(box, min(width, column["x"] + column["width"]), height), (part, box, column)
    row.locator(".conv-link").click()
    page.locator("#thread-name", has_text=LONG_NAME).wait_for()
    send = page.locator("#composer button.send")
    send.wait_for()
    assert inside(send.bounding_box(), width, height), send.bounding_box()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


def test_admin_pages_fit_a_phone(browser, demo):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, demo.base, demo.password, DEMO_ADMIN)
    page.goto(demo.base + "/admin/numbers")
    number = page.locator("a[href^='/admin/numbers/']").first.get_attribute("href")
    for path in ("/admin/numbers", number, "/admin/templates", "/admin/team", "/admin/assignment", "/admin/api-keys", "/admin/canned",
                 "/admin/labels", "/admin/attributes", "/admin/subscriptions", "/profile"):
        page.goto(demo.base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide on a 390-px phone"
    context.close()
