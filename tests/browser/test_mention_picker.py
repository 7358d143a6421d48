"""The "@" picker in an internal note (issue 14, item 23): the active teammates whose name has a word
starting with what follows "@", at any typing speed; Enter inserts "@Full Name " and never sends;
the sent note mentions that teammate (whose tab is told). Only in note mode; names stay text."""

from __future__ import annotations

import re

import httpx

from tests.browser.inbox_support import (  # noqa: F401 - demo is a fixture
    DEMO_ADMIN,
    csp_violations,
    demo,
    sign_in,
    watch_console,
)
from tests.browser.inbox_support import (
    NOTIFICATION_RECORDER as RECORDER,
)

ODD_NAME = 'Zed <b>&amp;</b> "Q\'s"'  # HTML-special characters, shown and inserted as typed


def admin_client(demo) -> tuple[httpx.Client, dict[str, str]]:
    admin = httpx.Client(base_url=demo.base, timeout=10)
    login = admin.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', login.text).group(1)
    admin.post("/login", data={"email": DEMO_ADMIN, "password": demo.password, "_csrf_token": token})
    inbox = admin.get("/inbox")
    return admin, {"X-CSRFToken": re.search(r'"X-CSRFToken": "([^"]+)"', inbox.text).group(1), "HX-Request": "true"}


def add_teammates(demo) -> None:
    """One with an HTML-looking name, and one whose name would match but who is deactivated."""
    admin, headers = admin_client(demo)
    for email, name in (("zed@demo.wa-inbox.test", ODD_NAME), ("agatha@demo.wa-inbox.test", "Agatha Former")):
        answer = admin.post("/admin/team/users", data={"email": email, "name": name, "role": "agent"}, headers=headers)
        assert answer.status_code == 200 and email in answer.text, answer.text[:500]
    user_id = re.search(r'<tr id="user-([0-9a-f]{24})"(?:(?!</tr>).)*?agatha@demo', answer.text, re.S).group(1)
    answer = admin.post(f"/admin/team/users/{user_id}/active", data={"active": "false"}, headers=headers)
    assert answer.status_code == 200, answer.text[:500]
    admin.close()


def options(page) -> list[str]:
    return page.locator("#mention-menu .mention-item strong").all_inner_texts()


def typed(page, text: str, delay: int) -> None:
    page.fill("#composer-text", "")
    page.locator("#composer-text").click()
    page.keyboard.type(text, delay=delay)


def wait_value(page, want: str) -> None:
    page.wait_for_function("(want) => document.getElementById('composer-text').value === want", arg=want)


def test_mention_picker_inserts_the_teammate_and_the_note_mentions_them(browser, screenshot, demo):
    add_teammates(demo)
    # The mentioned agent's tab, which is told about the note.
    agent_context = browser.new_context(viewport={"width": 1280, "height": 800})
    agent_context.add_init_script(RECORDER)
    agent = agent_context.new_page()
    sign_in(agent, demo.base, demo.password)
    agent.locator("#notify-toggle").click()
    agent.wait_for_function("() => document.getElementById('notify-toggle').textContent.includes('on')")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password, email=DEMO_ADMIN)
    page.locator(".conv-row", has_text="Maria Silva").locator(".conv-link").click()
    page.locator("#thread-name", has_text="Maria Silva").wait_for()
    menu = page.locator("#mention-menu")
    sent = page.locator("#thread-items .msg-outbound, #thread-items .msg-kind-note")
    before = sent.count()

    # In reply mode "@" is just a character.
    typed(page, "@dem", 0)
    page.wait_for_timeout(200)
    assert menu.is_hidden()

    page.locator('.mode[data-mode="note"]').click()
    for delay in (200, 0):  # slowly (the list is there before Enter), then as fast as keys go
        typed(page, "Please @ag", delay)
        if delay:
            menu.wait_for()
            # "ag" starts a word of "Demo Agent" only; Agatha is deactivated.
            assert options(page) == ["Demo Agent"]
            assert page.locator("#composer-text").get_attribute("aria-activedescendant") == "mention-1"
            assert page.locator("#mention-1").get_attribute("aria-selected") == "true"
            screenshot(page, "inbox-mention-picker")
        page.keyboard.press("Enter")
        wait_value(page, "Please @Demo Agent ")
        assert menu.is_hidden()
        page.wait_for_timeout(300)  # nothing is sent meanwhile (not a timing assertion: the count below is)
        assert sent.count() == before

    # Case does not matter; arrows move the choice, Escape closes the list and Enter does not reopen it.
    typed(page, "@DE", 200)
    menu.wait_for()
    assert options(page) == ["Demo Admin", "Demo Agent"]
    page.keyboard.press("ArrowDown")
    assert page.locator("#composer-text").get_attribute("aria-activedescendant") == "mention-2"
    page.keyboard.press("Escape")
    assert menu.is_hidden()
    page.keyboard.type("mo a", delay=50)
    menu.wait_for()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    wait_value(page, "@Demo Agent ")

    # A name with HTML-special characters is listed as text and inserted as written.
    typed(page, "cc @zed", 100)
    menu.wait_for()
    assert options(page) == [ODD_NAME]
    assert menu.locator("b").count() == 0
    menu.locator(".mention-item").first.click()
    wait_value(page, f"cc @{ODD_NAME} ")

    # The "/" picker shares the keyboard handling: ArrowDown then Enter inserts a canned reply, unsent.
    typed(page, "/", 100)
    page.locator("#canned-menu .canned-item").nth(1).wait_for()
    second = page.locator("#canned-menu .canned-item").nth(1).get_attribute("data-text")
    page.keyboard.press("ArrowDown")
    assert page.locator("#composer-text").get_attribute("aria-activedescendant") == "canned-2"
    page.keyboard.press("Enter")
    wait_value(page, second)
    assert sent.count() == before

    # The note is sent with Enter once the list is closed; it mentions the Demo Agent, whose tab is told.
    typed(page, "@ag", 0)
    page.keyboard.press("Enter")
    page.keyboard.type("can you take this?")
    page.keyboard.press("Enter")
    page.locator("#thread-items .msg-kind-note", has_text="@Demo Agent can you take this?").wait_for()
    assert sent.count() == before + 1
    agent.wait_for_function("() => window.__shown.some(n => n.title === 'You were mentioned in a note: Maria Silva')")
    assert seen["dialogs"] == []
    assert not csp_violations(seen)
    page.close()
    agent_context.close()
