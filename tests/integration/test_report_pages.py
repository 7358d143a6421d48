"""Issue 19, the reports page as a browser without JavaScript gets it: the period form, the messages panel's
figures with their change against the period before, its table (what the chart is drawn from), failures, types
and charges, and the panel's CSV; bad dates are said on the page, never an error page; agents see their numbers.
The fixtures and their hand-worked figures are test_report_messages.py's."""

from __future__ import annotations

import csv
import html
import io
import re

from app.domains.reports.rows import CONVERSATION_COLUMNS, MESSAGE_COLUMNS
from tests.conftest import sign_in
from tests.integration.test_report_messages import shop  # noqa: F401

DAYS = {"range": "custom", "from": "2026-03-28", "to": "2026-03-30"}


def words(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


async def test_the_messages_panel_its_table_and_its_csv(shop):  # noqa: F811
    client, world = shop
    assert (await client.get("/reports", follow_redirects=False)).status_code in (302, 303, 401)
    assert (await sign_in(client, world.admin.email, "owner password")).status_code in (302, 303)
    page = await client.get("/reports", params=DAYS)
    assert page.status_code == 200, page.text
    text = words(page.text)
    assert "28 Mar 2026 – 30 Mar 2026 (28 Mar 2026 – 30 Mar 2026, Europe/Berlin), compared with 25 Mar – 27 Mar 2026" in text
    assert 'href="/reports" aria-current="page">Reports</a>' in page.text
    for panel in ("conversations", "responses", "agents", "messages", "templates"):  # each panel's CSV, this period
        assert f'href="/reports/{panel}.csv?range=custom&amp;interval=day&amp;from=2026-03-28&amp;to=2026-03-30"' in page.text
    assert re.search(r'data-figure="inbound">2<', page.text) and re.search(r'data-figure="outbound">3<', page.text)
    assert "From customers 2 +100 % (was 1)" in text and "Ours 3 +200 % (was 1)" in text
    assert "Delivered 66.7 % 2 of ours (was 0.0 %)" in text and "Failed 33.3 % 1 of ours" in text
    table = re.search(r'id="r-messages-table">(.*?)</table>', page.text, re.S).group(1)
    rows = re.findall(r'<tr data-x="(\d+)"><th scope="row">([^<]+)</th>((?:<td>\d+</td>)+)</tr>', table)
    assert [(label, re.findall(r"\d+", cells)) for _, label, cells in rows] == [
        ("Sat 28 Mar", ["1", "0", "0", "0", "0"]), ("Sun 29 Mar", ["1", "2", "2", "1", "0"]),
        ("Mon 30 Mar", ["0", "1", "0", "0", "1"])]
    assert int(rows[1][0]) == 1774738800  # 28 March 23:00 UTC: Berlin's midnight
    assert "131026" in text and "Marketing 1" in text and "text 2 3" in text
    assert "Busiest: Saturday 23:00–00:00 (1 message from customers over the period, Europe/Berlin time)" in text
    sunday = re.search(r'<th scope="row">Sun</th>(.*?)</tr>', page.text).group(1)
    assert re.findall(r'title="Sunday (\d\d):00: (\d+)"', sunday)[0] == ("00", "1")

    # Every row of the period: the five messages (not the reaction nor the note), and their one conversation.
    every = list(csv.reader(io.StringIO((await client.get("/reports/all-messages.csv", params=DAYS)).text)))
    assert every[0][:5] == ["time", "direction", "type", "status", "number"]
    assert [(r[0], r[1], r[3]) for r in every[1:]] == [
        ("2026-03-28T23:30:00+01:00", "inbound", "received"), ("2026-03-29T00:30:00+01:00", "inbound", "received"),
        ("2026-03-29T12:00:00+02:00", "outbound", "read"), ("2026-03-29T23:30:00+02:00", "outbound", "delivered"),
        ("2026-03-30T00:10:00+02:00", "outbound", "failed")]
    assert every[5][MESSAGE_COLUMNS.index("error_code")] == "131026"
    talks = list(csv.reader(io.StringIO((await client.get("/reports/all-conversations.csv", params=DAYS)).text)))
    assert len(talks) == 2 and talks[1][CONVERSATION_COLUMNS.index("customer")] == "4915200000001"

    exported = await client.get("/reports/messages.csv", params=DAYS)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert 'filename="messages-2026-03-28-2026-03-30-day.csv"' in exported.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table == [["start", "end", "inbound", "outbound", "delivered", "read", "failed"],
                     ["2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", "1", "0", "0", "0", "0"],
                     ["2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", "1", "2", "2", "1", "0"],
                     ["2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00", "0", "1", "0", "0", "1"]]


async def test_bad_dates_are_said_on_the_page_and_agents_see_their_numbers(shop):  # noqa: F811
    client, world = shop
    assert (await sign_in(client, world.admin.email, "owner password")).status_code in (302, 303)
    for params in ({"from": "28/03/2026", "to": "2026-03-30"}, {"from": "2026-03-30", "to": "2026-03-01"},
                   {"range": "forever"}, {"from": "2024-01-01", "to": "2026-03-01"}):
        page = await client.get("/reports", params=params)
        assert page.status_code == 200, (params, page.text[:300])
        assert "The last 30 days are shown." in words(page.text), params
    assert (await client.get("/reports/messages.csv", params={"from": "nope", "to": "2026-03-30"})).status_code == 400
    await client.post("/logout")
    assert (await sign_in(client, world.agent.email, "agent password")).status_code in (302, 303)
    page = await client.get("/reports", params=DAYS)
    assert page.status_code == 200 and re.search(r'data-figure="outbound">3<', page.text)
