"""Issue 19: the open backlog over time, from the worker's quarter-hour samples (app/domains/reports/backlog.py).

In a UTC workspace, with days D-2, D-1 and today:
  Ann, Ben and Cat write: three open conversations. Ben's goes to team Support.
  The count taken at D-2 23:45 (the last quarter hour of D-2):   open 3, pending 0 (Support: open 1)
  Ben's is set pending, Cat's resolved.
  No count is taken on D-1 (no worker ran).
  The count taken now:                                              open 1, pending 1 (Support: pending 1)
So per day: D-2 -> 3 / 0, D-1 -> none, today -> 1 / 1.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from app.db import utcnow
from app.domains.reports.backlog import quarter_of, sample_backlog
from app.domains.reports.models import BacklogSample
from tests.conftest import sign_in
from tests.integration.test_report_filters import conversation_of
from tests.support.inbound import make_setup
from workers.settings import CRON_JOBS


@pytest.fixture
async def days(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 10000})
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    auth = setup.auth
    support = (await client.post("/api/v1/teams", headers=auth, json={"name": "Support"})).json()["id"]
    ann = await conversation_of(runtime, setup, "4915100000061")
    ben = await conversation_of(runtime, setup, "4915100000062")
    cat = await conversation_of(runtime, setup, "4915100000063")
    assert (await client.patch(f"/api/v1/conversations/{ben.id}", headers=auth, json={"team_id": support})).status_code == 200
    today = utcnow().date()
    d2_end = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=1)
    workspace = setup.account.workspace_id
    assert await sample_backlog(workspace, now=d2_end - timedelta(minutes=14)) != {}  # taken at 23:46, stands for 23:45
    for conversation, status in ((ben, "pending"), (cat, "resolved")):
        answer = await client.patch(f"/api/v1/conversations/{conversation.id}", headers=auth, json={"status": status})
        assert answer.status_code == 200, answer.text
    await sample_backlog(workspace)
    params = {"from": (today - timedelta(days=2)).isoformat(), "to": today.isoformat(), "interval": "day"}
    return client, setup, support, params, ann


async def test_the_backlog_at_the_end_of_each_day_a_gap_where_nothing_was_counted(days):
    client, setup, support, params, _ = days
    answer = await client.get("/api/v1/analytics/conversations", headers=setup.auth, params=params)
    assert answer.status_code == 200, answer.text
    ends = [(b["open_at_end"], b["pending_at_end"]) for b in answer.json()["buckets"]]
    assert ends == [(3, 0), (None, None), (1, 1)]
    narrowed = await client.get("/api/v1/analytics/conversations", headers=setup.auth, params={**params, "team_id": support})
    assert [(b["open_at_end"], b["pending_at_end"]) for b in narrowed.json()["buckets"]] == [(1, 0), (None, None), (0, 1)]
    own_number = await client.get("/api/v1/analytics/conversations", headers=setup.auth,
                                  params={**params, "account_id": str(setup.account.id)})
    assert [b["open_at_end"] for b in own_number.json()["buckets"]] == [3, None, 1]


async def test_the_page_and_the_csv_show_the_backlog(days):
    client, setup, _, params, _ = days
    assert (await sign_in(client, setup.email, setup.password)).status_code in (302, 303)
    page = await client.get("/reports", params=params)
    assert page.status_code == 200
    table = page.text.split('id="r-backlog-table"', 1)[1].split("</table>", 1)[0]
    cells = [row.split("</th>", 1)[1] for row in table.split("<tr data-x")[1:]]
    assert cells[0].startswith("<td>3</td><td>0</td>") and cells[1].startswith("<td></td><td></td>")
    assert cells[2].startswith("<td>1</td><td>1</td>")
    exported = await client.get("/reports/conversations.csv", params=params)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["open_at_end"], r["pending_at_end"]) for r in rows] == [("3", "0"), ("", ""), ("1", "1")]


async def test_a_second_count_in_the_same_quarter_hour_replaces_the_first(days):
    client, setup, _, _, ann = days
    assert (await client.patch(f"/api/v1/conversations/{ann.id}", headers=setup.auth,
                               json={"status": "resolved"})).status_code == 200
    now = utcnow()
    await sample_backlog(setup.account.workspace_id, now=now)
    samples = await BacklogSample.find({"workspace_id": setup.account.workspace_id, "at": quarter_of(now)}).to_list()
    assert len(samples) == 1
    assert sum(n for key, n in samples[0].counts.items() if key.startswith("open:") and key.count(":") == 1) == 0


def test_the_worker_counts_every_quarter_hour():
    (job,) = [c for c in CRON_JOBS if c.name.endswith("sample_backlog")]
    assert job.minute == {0, 15, 30, 45} and job.unique
