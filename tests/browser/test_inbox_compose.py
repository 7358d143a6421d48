"""The inbox in Chromium: untrusted text stays text, templates-only when the window is closed, failed
sends show Meta's reason and Retry resends, keyboard navigation, and the 390-px phone layout."""

from __future__ import annotations

from tests.browser.inbox_support import csp_violations, demo, sign_in, watch_console  # noqa: F401

XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]


def open_conversation(page, name: str, status: str | None = None) -> None:
    if status:
        page.select_option("#f-status", status)
        page.locator(".conv-row", has_text=name).wait_for()
    page.locator(".conv-row", has_text=name).locator(".conv-link").click()
    page.locator("#thread-name", has_text=name).wait_for()


def test_customer_html_renders_as_text_and_no_dialog_opens(browser, screenshot, demo):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password)
    for payload in XSS:
        demo.customer_writes("12025550188", "<img src=x onerror=alert(2)>", {"type": "text", "text": {"body": payload}})
    row = page.locator(".conv-row", has_text="onerror=alert(2)")
    row.wait_for()
    row.locator(".conv-link").click()
    page.locator("#thread-items .msg-inbound", has_text=XSS[1]).wait_for()
    texts = page.locator("#thread-items .msg-inbound .msg-text").all_inner_texts()
    assert XSS[0] in texts and XSS[1] in texts
    assert page.locator("#thread-items script, #thread-items img[src='x'], #conv-items img").count() == 0
    assert page.locator("#thread-name").inner_text() == "<img src=x onerror=alert(2)>"
    page.wait_for_timeout(300)
    assert seen["dialogs"] == []
    screenshot(page, "inbox-xss-as-text")
    assert not csp_violations(seen)
    page.close()


def test_closed_window_offers_templates_only_and_the_template_is_sent(browser, screenshot, demo):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password)
    open_conversation(page, "Peter Smith", status="resolved")
    page.locator("#template-picker .picker-item", has_text="order_update").wait_for()
    assert page.locator('.mode[data-mode="text"]').is_disabled()
    assert page.locator('.mode[data-mode="buttons"]').is_disabled()
    assert page.locator("#composer-text").is_disabled()
    assert "closed" in page.locator("#window-note").inner_text()
    page.locator("#template-picker .picker-item", has_text="order_update").click()
    page.get_by_label("Body {{1}}").fill("Peter")
    page.get_by_label("Body {{2}}").fill("#4410")
    page.get_by_label("Body {{3}}").fill("on Friday")
    assert page.locator(".tp-body").inner_text() == "Hi Peter, your order #4410 is on its way and arrives on Friday."
    screenshot(page, "inbox-window-closed-template-picker")
    page.get_by_role("button", name="Send template").click()
    bubble = page.locator("#thread-items .msg-outbound.msg-kind-template").last
    bubble.wait_for()
    page.wait_for_selector(f"#{bubble.get_attribute('id')}[data-status='read']", timeout=20000)
    assert "order_update" in bubble.inner_text() and "#4410" in bubble.inner_text()
    screenshot(page, "inbox-template-sent")
    assert not csp_violations(seen)
    page.close()


def test_failed_send_shows_the_reason_and_retry_resends(browser, screenshot, demo):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    sign_in(page, demo.base, demo.password)
    open_conversation(page, "Omar Haddad")
    demo.faults(error_rate=1.0, error_code=131026)
    try:
        page.fill("#composer-text", "This one will fail first")
        page.keyboard.press("Enter")
        bubble = page.locator("#thread-items .msg-outbound", has_text="This one will fail first").last
        bubble.wait_for()
        message = "#" + bubble.get_attribute("id")
        page.wait_for_selector(f"{message}[data-status='failed']", timeout=20000)
        reason = page.locator(f"{message} .error-reason").inner_text()
        assert "could not be delivered" in reason.lower()
        screenshot(page, "inbox-failed-with-reason")
    finally:
        demo.clear_faults()
    page.locator(f"{message} button.retry").click()
    page.wait_for_selector(f"{message}[data-status='delivered'], {message}[data-status='read']", timeout=20000)
    assert page.locator(f"{message} .msg-error").count() == 0
    screenshot(page, "inbox-retried")
    page.close()


def test_keyboard_j_k_enter_esc_and_visible_focus(browser, demo):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    sign_in(page, demo.base, demo.password)
    page.locator("body").press("j")
    first = page.evaluate("document.activeElement.closest('.conv-row').id")
    page.keyboard.press("j")
    second = page.evaluate("document.activeElement.closest('.conv-row').id")
    assert first != second
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.closest('.conv-row').id") == first
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    page.keyboard.press("Enter")
    page.locator("#thread-wrap").wait_for()
    assert page.get_attribute("#thread-wrap", "data-conv") == first.removeprefix("conv-")
    page.locator("body").click(position={"x": 5, "y": 600})
    page.keyboard.press("Escape")
    page.locator("#thread-wrap").wait_for(state="detached")
    assert page.evaluate("document.activeElement.closest('.conv-row') && document.activeElement.closest('.conv-row').id") == first
    page.close()


def test_phone_layout_390px(browser, screenshot, demo):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, demo.base, demo.password)
    assert page.locator("#conv-items").is_visible()
    assert not page.locator("#thread").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "inbox-phone-list")
    page.locator(".conv-row", has_text="Maria Silva").locator(".conv-link").click()
    page.locator("#composer-text").wait_for()
    assert not page.locator("#conv-items").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "inbox-phone-thread")
    page.get_by_label("Back to the conversation list").click()
    page.locator("#conv-items").wait_for(state="visible")
    context.close()


def test_simulate_panel_media_kinds_and_canned_responses(browser, screenshot, demo):
    """The demo's "simulate customer" panel: a photo, a voice note and a document arrive through /media."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password)
    open_conversation(page, "Maria Silva")
    page.locator("#simulate summary").click()
    page.select_option("#sim-customer", label="Maria Silva → Coffee Co sales")
    for kind, label in (("image", "Photo"), ("audio", "Voice note"), ("document", "Document")):
        page.select_option("#sim-kind", label=label)
        page.fill("#sim-text", f"Here is the {kind}")
        page.get_by_role("button", name="Send as customer").click()
        page.locator("#thread-items .msg-inbound.msg-kind-media", has_text=f"Here is the {kind}" if kind != "audio" else "Voice note").last.wait_for()
    image = page.locator("#thread-items img.media-img").last
    image.wait_for()
    page.wait_for_function("() => Array.from(document.querySelectorAll('#thread-items img.media-img')).some(i => i.complete && i.naturalWidth > 0)")
    assert image.get_attribute("src").startswith("/media/")
    page.locator("#thread-items audio[src^='/media/']").last.wait_for(state="attached")
    page.locator("#thread-items a.doc-link[href^='/media/']").last.wait_for()
    screenshot(page, "inbox-media-from-simulated-customer")
    # Canned responses: "/" opens the menu, Enter inserts the text with the contact's name filled in.
    page.locator("#composer-text").click()
    page.keyboard.type("/than")
    page.locator("#canned-menu .canned-item", has_text="/thanks").wait_for()
    page.keyboard.press("Enter")
    assert page.input_value("#composer-text") == "Thanks Maria Silva! Anything else I can help you with?"
    assert not csp_violations(seen)
    page.close()


def test_older_messages_load_when_scrolling_up(browser, demo):
    for i in range(45):
        demo.customer_writes("4915112345678", "Lena Long", {"type": "text", "text": {"body": f"Line {i:02d} of a long story"}})
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    sign_in(page, demo.base, demo.password)
    row = page.locator(".conv-row", has_text="Lena Long")
    row.wait_for()
    page.wait_for_function("() => document.querySelector('.conv-row:first-child').textContent.includes('Line 44')")
    row.locator(".conv-link").click()
    page.locator("#thread-items", has_text="Line 44 of a long story").wait_for()
    assert page.locator("#thread-items .msg").count() == 40
    assert page.locator("#older button").is_visible() or page.locator("#older button").count() == 1
    page.evaluate("document.getElementById('thread-scroll').scrollTop = 0")
    page.locator("#thread-items", has_text="Line 00 of a long story").wait_for()
    assert page.locator("#thread-items .msg").count() == 45
    assert "Start of the conversation" in page.locator("#older").inner_text()
    # The agent keeps reading where they were: the view did not jump to the very top.
    assert page.evaluate("document.getElementById('thread-scroll').scrollTop") > 0
    page.close()


def test_canned_reply_picker_works_at_any_typing_speed_and_enter_never_sends_it(browser, demo):
    """Typing "/thanks" slowly (200 ms a key) once wiped the "/" and Enter sent the bare word."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, demo.base, demo.password)
    open_conversation(page, "Maria Silva")
    before = page.locator("#thread-items .msg-outbound").count()
    expected = "Thanks Maria Silva! Anything else I can help you with?"
    for delay in (200, 0):  # slowly, then as fast as keys go (Enter before the list has arrived)
        page.fill("#composer-text", "")
        page.locator("#composer-text").click()
        page.keyboard.type("/thanks", delay=delay)
        if delay:
            page.locator("#canned-menu .canned-item", has_text="/thanks").wait_for()
            assert page.input_value("#composer-text") == "/thanks"
        page.keyboard.press("Enter")
        page.wait_for_function("(want) => document.getElementById('composer-text').value === want", arg=expected)
        page.wait_for_timeout(300)  # nothing is sent meanwhile (not a timing assertion: the count below is)
        assert page.locator("#thread-items .msg-outbound").count() == before
    page.close()


def test_a_file_over_whatsapps_limit_is_refused_in_words_before_uploading(browser, demo):
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    sign_in(page, demo.base, demo.password)
    open_conversation(page, "Maria Silva")
    before = page.locator("#thread-items .msg").count()
    uploads = []
    page.on("request", lambda r: uploads.append(r.url) if r.url.endswith("/attachments") else None)
    page.set_input_files("#attach-file", files=[{"name": "holiday.mp4", "mimeType": "video/mp4",
                                                 "buffer": b"\0" * (17 * 1024 * 1024)}])
    toast = page.locator("#toast")
    toast.wait_for(state="visible")
    assert "holiday.mp4" in toast.inner_text() and "up to 16 MB" in toast.inner_text()
    box = toast.bounding_box()  # the whole message is on screen, not half off it
    assert box and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= 1366 and box["y"] + box["height"] <= 768
    assert uploads == [] and page.locator("#thread-items .msg").count() == before
    page.close()
