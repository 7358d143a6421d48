"""The workflow editor in Chromium, on `inbox run --demo`: a workflow built from its forms (a keyword trigger,
a text, a condition whose branch sends another text), a mistake shown next to its field, saved, read back
after a reload, and a dry run for a demo customer that lists what each step would send."""

from __future__ import annotations

import re

from app.demo import DEMO_ADMIN
from tests.browser.inbox_support import csp_violations, demo, sign_in, watch_console  # noqa: F401


def test_build_save_reload_and_dry_run_a_workflow(browser, screenshot, demo):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password, DEMO_ADMIN)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
    page.wait_for_url(demo.base + "/admin/workflows")
    page.get_by_role("link", name="New workflow").click()
    page.wait_for_url(demo.base + "/admin/workflows/new")

    page.get_by_label("Name", exact=True).fill("Refund helper")
    page.get_by_label("Starts when").select_option(label="A customer's message arrives")
    page.get_by_label("Which messages").select_option(label="Contains one of these words")
    page.get_by_label("Words").fill("refund, money back")

    # Step 1: a text.
    page.get_by_role("button", name="Add a step to the workflow").click()
    first = page.locator(".wf-steps > .wf-step").nth(0)
    assert first.get_by_label("Type").input_value() == "send_text"
    first.get_by_label("Text").fill("Thanks {{contact.name}}, we read your message.")

    # Step 2: a condition with a branch "refund" that sends a second text.
    page.get_by_role("button", name="Add a step after step 1").click()
    second = page.locator("#wf-editor .wf-steps-box > .wf-step-list > .wf-steps > .wf-step").nth(1)
    second.locator(".wf-step-head").get_by_label("Type").select_option(label="Condition")
    branch = second.locator(".wf-branch").first
    branch.get_by_label("Branch name").fill("refund")
    branch.get_by_role("button", name="Add condition").click()
    assert branch.get_by_label("Field").input_value() == "message.text"
    branch.get_by_label("Operator").select_option(label="has one of the words")
    branch.get_by_label("Value").fill("refund")
    branch.get_by_role("button", name=re.compile("^Add a step to")).click()
    nested = branch.locator(".wf-step")
    assert nested.count() == 1 and "Step 1" in nested.locator(".wf-step-num").inner_text()

    # Saved with the branch's text left empty: refused, the message next to that text, the rest kept.
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator("#wf-problems").wait_for()
    assert "Not saved" in page.locator("#wf-problems").inner_text()
    nested_field = page.locator(".wf-branch .wf-step .field.has-error")
    assert "write something" in nested_field.inner_text()
    assert nested_field.locator("textarea").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Name", exact=True).input_value() == "Refund helper"
    screenshot(page, "workflow-editor-refused")
    page.locator(".wf-branch .wf-step").get_by_label("Text").fill("Here is the refund form: https://example.com/r")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/workflows/[0-9a-f]{24}\?saved=1$"))
    page.get_by_text("Saved.", exact=True).wait_for()

    # Read back after a reload.
    page.reload()
    assert page.get_by_role("heading", name="Edit workflow “Refund helper”").is_visible()
    assert page.get_by_label("Words").input_value() == "refund, money back"
    assert page.locator(".wf-steps > .wf-step").nth(0).get_by_label("Text").input_value() == \
        "Thanks {{contact.name}}, we read your message."
    assert page.locator(".wf-branch").first.get_by_label("Branch name").input_value() == "refund"
    assert page.locator(".wf-branch .wf-step").get_by_label("Text").input_value() == \
        "Here is the refund form: https://example.com/r"

    # The dry run for Maria Silva, who wrote a few minutes ago (the 24-hour window is open).
    maria = page.locator("#dry-contact option", has_text="Maria Silva").get_attribute("value")
    page.get_by_label("Contact", exact=True).select_option(maria)
    page.get_by_label("The customer's message").fill("Hello, I want a refund please")
    page.get_by_role("button", name="Dry run").click()
    result = page.locator("#dry-run-result")
    result.locator("li", has_text="would send “Here is the refund form").wait_for()
    lines = result.locator("li").all_inner_texts()
    assert "Trigger: matches" in result.inner_text()
    assert any("DONE" in line.upper() and "would send “Thanks Maria Silva, we read your message.”" in line
               for line in lines), lines
    assert any("takes branch “refund”" in line for line in lines), lines
    screenshot(page, "workflow-editor-dry-run")

    # A message without the words: it would not start.
    page.get_by_label("The customer's message").fill("Just saying hi")
    page.get_by_role("button", name="Dry run").click()
    result.locator("li", has_text="would not start").wait_for()
    assert "Trigger: does not match" in result.inner_text()

    # The list says it in words.
    page.get_by_role("link", name="Workflows", exact=True).first.click()
    row = page.locator("tr", has_text="Refund helper")
    assert "Message contains: refund, money back" in row.inner_text()
    assert not csp_violations(seen), "\n".join(seen["errors"])
    script_errors = [e for e in seen["errors"] if "Failed to load resource" not in e]  # favicon, the 422 page
    assert not script_errors, script_errors
    context.close()


def test_every_trigger_and_step_type_shows_its_form(browser, demo):  # noqa: F811
    """Each trigger type and each step type renders its own labelled fields, without a script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password, DEMO_ADMIN)
    page.goto(demo.base + "/admin/workflows/new")
    trigger = page.get_by_label("Starts when")
    expected = {"date_reached": "Date attribute key", "segment_entered": "Segment", "no_agent_reply": "After how many minutes",
                "tag_added": "Tag", "webhook": "Save the workflow to get its secret URL."}
    for value in trigger.locator("option").evaluate_all("options => options.map(o => o.value)"):
        trigger.select_option(value)
        if value in expected:
            page.locator(".wf-trigger", has_text=expected[value]).wait_for()
    page.get_by_role("button", name="Add a step to the workflow").click()
    step_type = page.locator(".wf-steps > .wf-step").first.get_by_label("Type")
    fields = {"assign": "Assign to", "wait": "Wait", "http": "URL", "ask": "Question", "send_template": "Template name",
              "jump": "Go to", "start_workflow": "Workflow", "set_attribute": "Attribute key"}
    for value in step_type.locator("option").evaluate_all("options => options.map(o => o.value)"):
        step_type.select_option(value)
        card = page.locator(".wf-steps > .wf-step").first
        if value in fields:
            assert card.get_by_label(fields[value], exact=True).count() >= 1, value
        step_type = card.get_by_label("Type").first
    assert not [e for e in seen["errors"] if "Failed to load resource" not in e], seen["errors"]
    context.close()
