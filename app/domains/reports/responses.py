"""The responses panel: how long customers waited for a person's answer, per bucket of a period and over it.

The rules (the README says them to users):

- A customer **waits** from their first message nobody has answered yet (a second message while waiting does
  not restart the clock).
- An **answer** is a message a person sends: an agent in the inbox, the API, or someone in the WhatsApp Business
  app on the same number. A broadcast's or a workflow's message (business-hours replies included) is not an
  answer: the customer is still waiting for a person. Reactions are not answers.
- The **first response** of a conversation is the answer to its first wait since it was started or reopened;
  **response time** counts every answer to a waiting customer (the first included).
- All hours count, snoozed and closed hours included: it is how long the customer waited. The same waits are
  also given in **business time**: only the seconds the business was open (Settings → Business hours: a
  question asked on Friday evening and answered at 09:05 on Monday waited 5 minutes of business time); with
  business hours off, both agree.
- **Answers per conversation**: every answer over the first responses, i.e. per conversation (started or
  reopened) that got an answer.
- Each wait is counted in the bucket of the answer. Medians and 90th percentiles are exact (rollups keep
  every wait, in whole seconds): the median of an even count is the mean of the middle two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from beanie import PydanticObjectId

from app.domains.access.scope import Scope
from app.domains.reports.hours import ReportHours, read_hours
from app.domains.reports.periods import Interval, Period
from app.domains.reports.waits import Waits

KINDS = ("first", "reply")
BUSINESS = tuple(f"{kind}_business" for kind in KINDS)
ALL = (*KINDS, *BUSINESS)


@dataclass
class ResponseBucket:
    start: datetime
    end: datetime
    first: Waits
    reply: Waits
    first_business: Waits
    reply_business: Waits


@dataclass
class ResponseFigures:
    buckets: list[ResponseBucket]
    totals: dict[str, Waits] = field(default_factory=dict)
    previous: dict[str, Waits] = field(default_factory=dict)

    @staticmethod
    def per_conversation(answers: Waits, first: Waits) -> float | None:
        """Answers per answered conversation: every answer over the first responses (one per conversation
        started or reopened and answered)."""
        return round(answers.count / first.count, 2) if first.count else None

    @property
    def answers_per_conversation(self) -> float | None:
        return self.per_conversation(self.totals["reply"], self.totals["first"])

    @property
    def previous_answers_per_conversation(self) -> float | None:
        return self.per_conversation(self.previous["reply"], self.previous["first"])


async def response_figures(who: PydanticObjectId | Scope, period: Period, interval: Interval, *,
                           account_id: PydanticObjectId | None = None, read: ReportHours | None = None
                           ) -> ResponseFigures:
    read = read or await read_hours(who, period, interval, account_id=account_id)
    per_bucket: list[dict[str, list[int]]] = [{kind: [] for kind in ALL} for _ in read.bounds]
    for hour in read.hours:
        for kind in ALL:
            per_bucket[hour.bucket][kind].extend(hour.waits.get(kind, []))
    buckets = [ResponseBucket(start, end, **{kind: Waits.of(per_bucket[i][kind]) for kind in ALL})
               for i, (start, end) in enumerate(read.bounds)]
    totals = {kind: Waits.of([w for b in per_bucket for w in b[kind]]) for kind in ALL}
    previous = {kind: Waits.of(read.previous_waits.get(kind, [])) for kind in ALL}
    return ResponseFigures(buckets=buckets, totals=totals, previous=previous)
