"""The contacts panel: the workspace's new contacts, returning customers, and marketing opt-outs and opt-ins, per
bucket of a period and over it, with the period compared with.

- **New contacts**: contacts created in the bucket, however they came (their first message, an import, the API,
  an agent). A contact erased or merged into another since is not counted.
- **Returning customers**: each time a customer wrote into a conversation that was resolved (it reopened it).
- **Opted out** / **opted in**: changes of a contact's marketing consent in the bucket, by source (the STOP /
  START words, an agent, the API, an import, Meta's preferences, a send Meta refused with 131050, a merge).

Contacts belong to the workspace, not to a number: new contacts and consent count for every number, whichever is
chosen; returning customers follow the number. Admins and supervisors see this panel; agents do not (their
reports are their own work, and the workspace's contacts are not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from beanie import PydanticObjectId

from app.domains.access.scope import Scope, scope_of
from app.domains.reports import rollups
from app.domains.reports.hours import ReportHours, read_hours
from app.domains.reports.periods import Interval, Period
from app.domains.workspaces.models import Role
from app.errors import Forbidden

COUNTS = ("new", "returning", "opt_out", "opt_in")
SOURCES = (("keyword", "STOP / START from the customer"), ("agent", "An agent"), ("api", "The API"),
           ("import", "An import"), ("meta", "WhatsApp's marketing preferences"),
           ("failed_send", "A marketing send WhatsApp refused (131050)"), ("merge", "A merge of contacts"))
"""Where a consent change came from (contacts.models.ConsentSource), in words."""


@dataclass
class ContactBucket:
    start: datetime
    end: datetime
    new: int = 0
    returning: int = 0
    opt_out: int = 0
    opt_in: int = 0


@dataclass
class ContactFigures:
    buckets: list[ContactBucket]
    totals: dict[str, int] = field(default_factory=dict)
    previous: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    """opt_out / opt_in -> source -> changes in the period (sources with none left out)."""


def not_for_agents() -> Forbidden:
    return Forbidden("The contacts report covers the whole workspace: admins and supervisors see it.",
                     error_code="REPORT_NOT_ALLOWED")


def may_see(role: Role) -> bool:
    return role is not Role.AGENT


async def contact_figures(who: PydanticObjectId | Scope, period: Period, interval: Interval, *,
                          account_id: PydanticObjectId | None = None, read: ReportHours | None = None
                          ) -> ContactFigures:
    scope = scope_of(who)
    read = read or await read_hours(scope, period, interval, account_id=account_id)
    buckets = [ContactBucket(start, end) for start, end in read.bounds]
    for i, returning in enumerate(read.per_bucket("reopened:customer")):
        buckets[i].returning = returning
    by_source: dict[str, dict[str, int]] = {"opt_out": {}, "opt_in": {}}
    for row in await rollups.contact_hours(scope.workspace_id, period.start, period.end):
        index = read.bucket_of(row["hour"])
        if index is None:
            continue
        counts = row.get("counts") or {}
        for name in ("new", "opt_out", "opt_in"):
            setattr(buckets[index], name, getattr(buckets[index], name) + counts.get(name, 0))
        for key, count in counts.items():
            word, _, source = key.partition(":")
            if source and word in by_source:
                by_source[word][source] = by_source[word].get(source, 0) + count
    before = period.previous()
    previous = {name: 0 for name in COUNTS}
    previous["returning"] = read.previous.get("reopened:customer", 0)
    for row in await rollups.contact_hours(scope.workspace_id, before.start, before.end):
        for name in ("new", "opt_out", "opt_in"):
            previous[name] += (row.get("counts") or {}).get(name, 0)
    return ContactFigures(buckets=buckets, totals={name: sum(getattr(b, name) for b in buckets) for name in COUNTS},
                          previous=previous, by_source=by_source)
