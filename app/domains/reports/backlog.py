"""The open backlog over time: how many conversations were open, and pending, at the end of each bucket.

Conversations keep no history of their states that a backlog could be worked back from (a "reopened" line does not
say whether the conversation was pending or resolved before; one an agent starts has no line at all), so the worker
samples it instead, as help desks do: every quarter hour (the ``sample_backlog`` cron at :00, :15, :30 and :45, which
are the starts of local hours in every time zone) it counts each workspace's open and pending conversations by
number, and within each number by team, agent and label, into one ``BacklogSample`` per workspace and quarter hour.
Storing it is an upsert on that pair, so two workers or a retried job keep one sample.

A bucket's backlog is the last sample in its final hour (its end, to the quarter hour); the bucket under way shows its
latest sample. A bucket whose final hour has no sample (before sampling began, or while no worker ran) has none,
and the page leaves a gap rather than a guess.
Filters read the same samples: a number, or one slice (the team, agent or label a conversation had when it was
sampled, unlike the other panels, which count history by today's team, agent and labels).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.conversations.models import Conversation, ConversationStatus
from app.domains.reports import rollups
from app.domains.reports.hours import ReportHours
from app.domains.reports.models import BacklogSample
from app.domains.workspaces.models import Workspace

QUARTER = timedelta(minutes=15)
STATUSES = (ConversationStatus.OPEN.value, ConversationStatus.PENDING.value)


def quarter_of(moment: datetime) -> datetime:
    """The quarter hour ``moment`` falls in (its start)."""
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


async def count_backlog(workspace_id: PydanticObjectId) -> dict[str, int]:
    """The workspace's open and pending conversations now, as a sample's counts: one grouped read on the
    (workspace, status) index."""
    counts: Counter[str] = Counter()
    groups = Conversation.get_motor_collection().aggregate([
        {"$match": {"workspace_id": workspace_id, "status": {"$in": list(STATUSES)}}},
        {"$group": {"_id": {"status": "$status", "account_id": "$account_id", "team_id": "$team_id",
                            "assignee_id": "$assignee_id", "labels": "$labels"}, "n": {"$sum": 1}}},
    ])
    async for group in groups:
        found: dict[str, Any] = group["_id"]
        base = f"{found['status']}:{found['account_id']}"
        counts[base] += group["n"]
        for name in rollups.slices_of(found):
            counts[f"{base}:{name}"] += group["n"]
    return dict(counts)


async def sample_backlog(workspace_id: PydanticObjectId, *, now: datetime | None = None) -> dict[str, int]:
    """Count the backlog now and keep it as the sample of the current quarter hour."""
    now = now or utcnow()
    counts = await count_backlog(workspace_id)
    await BacklogSample.get_motor_collection().update_one(
        {"workspace_id": workspace_id, "at": quarter_of(now)},
        {"$set": {"taken_at": now, "counts": counts}}, upsert=True)
    return counts


async def sample_all(*, now: datetime | None = None) -> int:
    """Every workspace's sample of this quarter hour (the worker's cron). Returns how many were taken."""
    taken = 0
    for workspace_id in await Workspace.get_motor_collection().distinct("_id"):
        await sample_backlog(workspace_id, now=now)
        taken += 1
    return taken


def _sum(counts: dict[str, int], status: str, accounts: list[PydanticObjectId] | None, only: str | None) -> int:
    total = 0
    for key, count in counts.items():
        kind, _, rest = key.partition(":")
        account, _, name = rest.partition(":")
        if kind != status or name != (only or ""):
            continue
        if accounts is None or PydanticObjectId(account) in accounts:
            total += count
    return total


async def backlog_at_ends(workspace_id: PydanticObjectId, read: ReportHours, accounts: list[PydanticObjectId] | None
                          ) -> tuple[list[int | None], list[int | None]]:
    """Open and pending conversations at the end of each of the report's buckets (None: not sampled then), of
    these numbers (None: all) and of the report's slice. One indexed read of at most four samples a bucket."""
    now = utcnow()
    candidates = {end - QUARTER * k for _, end in read.bounds for k in range(1, 5)}
    candidates |= {quarter_of(now) - QUARTER * k for k in range(2)}  # the bucket under way: its latest sample
    wanted = sorted(at for at in candidates if at <= now)
    if not wanted:
        return [None] * len(read.bounds), [None] * len(read.bounds)
    found = await BacklogSample.get_motor_collection().find(
        {"workspace_id": workspace_id, "at": {"$in": wanted}}, projection={"at": 1, "counts": 1, "_id": 0}
    ).sort("at", 1).to_list(None)
    opened: list[int | None] = [None] * len(read.bounds)
    pending: list[int | None] = [None] * len(read.bounds)
    for sample in found:  # oldest first: the last one of a bucket stays
        index = read.bucket_of(sample["at"])
        if index is None:
            continue
        opened[index] = _sum(sample["counts"], STATUSES[0], accounts, read.only)
        pending[index] = _sum(sample["counts"], STATUSES[1], accounts, read.only)
    return opened, pending
