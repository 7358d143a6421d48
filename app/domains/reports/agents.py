"""The agents' leaderboard: per person of the workspace, over a period, what they sent, how fast they answered and
what they resolved, from the same rollups (the per-agent counters and waits of rollups.py).

- **Messages sent**: messages they sent to customers (the inbox, or the API with their key).
- **Answers** / **first response** / **response time**: their answers to waiting customers (the responses
  panel's rules), with exact medians.
- **Resolved** / **time to resolution**: the conversations they resolved, and how long those had been open.
- **Time in the inbox**: the minutes in the period in which they had an inbox tab open (the presence heartbeat,
  whatever status they chose; assignment/presence.py), whichever number or filter is chosen.

Everyone active in the workspace is listed, those with nothing in the period too (an empty row says as much as a
full one). Agents see their own row; admins and supervisors see everyone's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, timedelta

from beanie import PydanticObjectId

from app.domains.access.scope import Scope, scope_of
from app.domains.assignment.models import InboxMinutes
from app.domains.reports.hours import ReportHours, read_hours
from app.domains.reports.periods import Interval, Period
from app.domains.reports.waits import Waits
from app.domains.workspaces.models import User


@dataclass
class AgentRow:
    user_id: PydanticObjectId
    name: str
    sent: int = 0
    resolved: int = 0
    first: Waits = field(default_factory=Waits)
    reply: Waits = field(default_factory=Waits)
    resolution: Waits = field(default_factory=Waits)
    inbox_minutes: int = 0


async def agent_figures(who: PydanticObjectId | Scope, period: Period, interval: Interval, *,
                        account_id: PydanticObjectId | None = None, read: ReportHours | None = None,
                        only: PydanticObjectId | None = None) -> list[AgentRow]:
    """One row per active person (``only``: that person's alone), most resolved first."""
    scope = scope_of(who)
    read = read or await read_hours(scope, period, interval, account_id=account_id)
    query: dict = {"workspace_id": scope.workspace_id, "active": True}
    if only is not None:
        query["_id"] = only
    people = await User.find(query).to_list()
    counts: dict[str, int] = {}
    waits: dict[str, list[int]] = {}
    for hour in read.hours:
        for key, count in hour.counts.items():
            if key.startswith("agent:"):
                counts[key] = counts.get(key, 0) + count
        for key, values in hour.waits.items():
            if ":" in key:
                waits.setdefault(key, []).extend(values)
    rows = [AgentRow(user_id=person.id, name=person.name or person.email,
                     sent=counts.get(f"agent:{person.id}:sent", 0), resolved=counts.get(f"agent:{person.id}:resolved", 0),
                     first=Waits.of(waits.get(f"first:{person.id}", [])),
                     reply=Waits.of(waits.get(f"reply:{person.id}", [])),
                     resolution=Waits.of(waits.get(f"resolution:{person.id}", [])))
            for person in people if person.id is not None]
    minutes = await inbox_minutes(scope.workspace_id, period, [r.user_id for r in rows])
    for row in rows:
        row.inbox_minutes = minutes.get(row.user_id, 0)
    rows.sort(key=lambda r: (-r.resolved, -r.reply.count, -r.sent, r.name.lower()))
    return rows


async def inbox_minutes(workspace_id: PydanticObjectId, period: Period, people: list[PydanticObjectId]
                        ) -> dict[PydanticObjectId, int]:
    """Each person's minutes with an inbox open within the period (to the minute: a local day of a half-hour
    zone starts inside a UTC hour)."""
    found: dict[PydanticObjectId, int] = {}
    cursor = InboxMinutes.get_motor_collection().find(
        {"workspace_id": workspace_id, "hour": {"$gte": period.start - timedelta(hours=1), "$lt": period.end},
         "user_id": {"$in": people}}, projection={"user_id": 1, "hour": 1, "minutes": 1, "_id": 0})
    async for doc in cursor:
        hour = doc["hour"].replace(tzinfo=UTC) if doc["hour"].tzinfo is None else doc["hour"]
        inside = sum(1 for m in doc.get("minutes") or [] if period.start <= hour + timedelta(minutes=m) < period.end)
        found[doc["user_id"]] = found.get(doc["user_id"], 0) + inside
    return found
