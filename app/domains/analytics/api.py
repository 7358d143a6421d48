"""JSON API v1: the analytics summary for a date range."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter, QueryParameter
from pydantic import BaseModel, Field

from app.auth import requires_login
from app.db import parse_object_id, utcnow
from app.domains.analytics.services import Analytics, first_response_stats
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.runtime import Runtime


class FailureOut(BaseModel):
    code: int | None = Field(None, description="WhatsApp's error code", examples=[131047])
    title: str = ""
    count: int


class FirstResponse(BaseModel):
    count: int = Field(description="Customer turns answered in the range")
    average_seconds: float | None = None
    median_seconds: float | None = None


class BusinessFirstResponse(FirstResponse):
    """The same turns as ``first_response``, each wait counting only its seconds inside business hours."""

    business_hours: bool = Field(description="Business hours are on: only seconds inside them count (the weekly "
                                             "hours in the workspace's time zone, holidays closed); false: every "
                                             "second counts, as in first_response")


class AnalyticsSummary(BaseModel):
    start: datetime = Field(description="The range's start (the `from` parameter)")
    end: datetime = Field(description="The range's end, exclusive (the `to` parameter)")
    account_id: str | None = None
    messages_in: int = Field(description="Messages customers sent")
    messages_out: int = Field(description="Messages we sent (reactions not counted)")
    delivered_rate: float | None = Field(None, description="Share of sent messages that reached the phone",
                                         examples=[0.97])
    read_rate: float | None = Field(None, description="Share of sent messages the customer read", examples=[0.81])
    failed: int
    failures_by_code: list[FailureOut]
    first_response: FirstResponse = Field(description="Time to the first answer of each customer turn, in all hours")
    first_response_business: BusinessFirstResponse = Field(
        description="The same turns in business time: a question asked on Friday evening and answered on Monday "
                    "morning counts the minutes the business was open, not the weekend")


class AnalyticsApi(Controller):
    path = "/api/v1/analytics"
    guards = [requires_login]
    tags = ["analytics"]

    @get("/summary", summary="Messages in/out, delivered and read rates, failures by code, first-response time")
    async def summary(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime],
                      since: Annotated[datetime | None, QueryParameter(
                          name="from", description="Start (ISO 8601); default 7 days before `to`")] = None,
                      until: Annotated[datetime | None, QueryParameter(
                          name="to", description="End, exclusive (ISO 8601); default now")] = None,
                      account_id: str | None = Parameter(default=None, description="Only this number")
                      ) -> AnalyticsSummary:
        until = until or utcnow()
        since = since or until - timedelta(days=7)
        if since.tzinfo is None or until.tzinfo is None:
            raise ValidationFailed("Give times with a time zone, e.g. 2025-01-31T00:00:00Z.",
                                   details={"from": "needs a time zone"}, status_code=400)
        account = parse_object_id(account_id) if account_id is not None else None
        if account_id is not None and account is None:
            raise ValidationFailed("account_id is not an id.", details={"account_id": "not an id"}, status_code=400)
        hours = await runtime.business_hours.cached(principal.workspace_id)
        s = await Analytics().summary(principal.scope, since, until, account, hours=hours)
        return AnalyticsSummary(
            start=s.since, end=s.until, account_id=account_id, messages_in=s.messages_in, messages_out=s.messages_out,
            delivered_rate=s.rate(s.delivered), read_rate=s.rate(s.read), failed=s.failed,
            failures_by_code=[FailureOut(code=f.code, title=f.title, count=f.count) for f in s.failures],
            first_response=FirstResponse(**first_response_stats(s.first_responses)),
            first_response_business=BusinessFirstResponse(**first_response_stats(s.first_responses_business),
                                                          business_hours=s.business_hours))
