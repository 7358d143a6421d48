"""The templates panel: per template, our messages sent with it over the period and how they fared (counted in the
hour each was sent, like the messages panel), beside the template's approval status now and its status changes
in the period (Meta's review and quality webhooks, as received).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from beanie import PydanticObjectId

from app.domains.access.scope import Scope, scope_of
from app.domains.reports.hours import ReportHours, read_hours
from app.domains.reports.periods import Interval, Period
from app.domains.templates.models import MessageTemplate
from app.domains.webhooks.models import TemplateStatusEvent

OUTCOMES = ("sent", "delivered", "read", "failed", "replied")


@dataclass
class StatusChange:
    at: datetime
    status: str
    reason: str | None


@dataclass
class TemplateRow:
    name: str
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    replied: int = 0
    """Sends the customer answered: their next message in the conversation, within a day (Message.replied_at)."""
    status: str = "unknown"
    """Its approval status now (the languages' statuses joined when they differ); "deleted" when gone."""
    changes: list[StatusChange] = field(default_factory=list)


async def template_figures(who: PydanticObjectId | Scope, period: Period, interval: Interval, *,
                           account_id: PydanticObjectId | None = None, read: ReportHours | None = None
                           ) -> list[TemplateRow]:
    """Every template with a send in the period or a status change in it, most sent first."""
    scope = scope_of(who)
    read = read or await read_hours(scope, period, interval, account_id=account_id)
    rows: dict[str, TemplateRow] = {}
    for hour in read.hours:
        for key, count in hour.counts.items():
            if key.startswith("tpl:"):
                name, _, outcome = key[4:].rpartition(":")
                row = rows.setdefault(name, TemplateRow(name))
                setattr(row, outcome, getattr(row, outcome) + count)
    changes = await TemplateStatusEvent.find(
        {"workspace_id": scope.workspace_id, "field": "message_template_status_update",
         "created_at": {"$gte": period.start, "$lt": period.end}}).sort("created_at").to_list()
    for change in changes:
        if change.name and change.event:
            rows.setdefault(change.name, TemplateRow(change.name)).changes.append(
                StatusChange(change.occurred_at or change.created_at, change.event, change.reason))
    if rows:
        stored = await MessageTemplate.find({"workspace_id": scope.workspace_id, "name": {"$in": sorted(rows)}}).to_list()
        statuses: dict[str, set[str]] = {}
        for template in stored:
            statuses.setdefault(template.name, set()).add(template.status)
        for name, row in rows.items():
            row.status = " / ".join(sorted(statuses[name])) if name in statuses else "deleted"
    return sorted(rows.values(), key=lambda r: (-r.sent, r.name))
