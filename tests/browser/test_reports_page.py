"""The reports page in Chromium, on `inbox run --demo` (whose history has messages on recent days): reached from
the main navigation, its conversations and messages charts drawn from the table beside it (uPlot, no CSP violation), another
period and interval chosen in the form, and the panel's CSV downloaded."""

from __future__ import annotations

from app.demo import DEMO_ADMIN
from tests.browser.inbox_support import csp_violations, demo, sign_in, watch_console  # noqa: F401


def test_the_messages_chart_is_drawn_from_its_table_and_follows_the_form(browser, screenshot, demo):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    seen = watch_console(page)
    sign_in(page, demo.base, demo.password, DEMO_ADMIN)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    page.wait_for_url(demo.base + "/reports")
    assert "Last 30 days" in page.locator(".report-period").inner_text()
    messages = page.get_by_role("region", name="Messages")
    figure = messages.locator("figure.chart")
    figure.locator("canvas").wait_for()
    assert figure.get_attribute("data-drawn") == "30"  # one point per day
    # The conversations panel has its chart too, and the heat map says when customers write.
    conversations = page.get_by_role("region", name="Conversations")
    conversations.locator("figure.chart canvas").first.wait_for()
    assert conversations.locator("figure.chart").first.get_attribute("data-drawn") == "30"
    assert "New from customers" in conversations.locator(".u-legend").first.inner_text()
    # The open backlog: counted at the demo's start (then every quarter hour), so today has a point.
    backlog = conversations.get_by_role("figure", name="Open backlog at the end of each day")
    assert backlog.get_attribute("data-drawn") == "30" and "Pending" in backlog.locator(".u-legend").inner_text()
    assert backlog.locator("tbody tr").last.locator("td").first.inner_text() == str(
        int(page.locator("[data-figure=open-now]").inner_text().replace(",", "")))
    assert "Busiest:" in page.get_by_role("region", name="When customers write").inner_text()
    rows = page.locator("#r-messages-table tbody tr")
    assert rows.count() == 30
    counted = sum(int(rows.nth(i).locator("td").nth(0).inner_text()) for i in range(30))
    assert counted == int(page.locator("[data-figure=inbound]").inner_text().replace(",", "")) and counted > 0
    # The legend names each series; the drawing is hidden from screen readers, the table is not.
    legend = figure.locator(".u-legend").inner_text()
    assert "From customers" in legend and "Ours" in legend
    assert figure.locator(".chart-plot").get_attribute("aria-hidden") == "true"
    screenshot(page, "reports-30-days")

    page.get_by_label("Period", exact=True).select_option("last_7_days")
    page.get_by_label("Per", exact=True).select_option("hour")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(lambda url: "interval=hour" in url)
    messages.locator("figure.chart canvas").wait_for()
    assert "Last 7 days" in page.locator(".report-period").inner_text()
    hours = page.locator("#r-messages-table tbody tr").count()
    assert 7 * 24 - 1 <= hours <= 7 * 24 + 1  # a DST change in the week adds or takes one
    assert messages.locator("figure.chart").get_attribute("data-drawn") == str(hours)

    with page.expect_download() as download:
        messages.get_by_role("link", name="CSV").click()
    saved = download.value
    assert saved.suggested_filename.startswith("messages-") and saved.suggested_filename.endswith("-hour.csv")
    lines = open(saved.path(), encoding="utf-8").read().splitlines()
    assert lines[0] == "start,end,inbound,outbound,delivered,read,failed" and len(lines) == hours + 1

    assert not csp_violations(seen), "\n".join(seen["errors"])
    assert not [e for e in seen["errors"] if "Failed to load resource" not in e], seen["errors"]
