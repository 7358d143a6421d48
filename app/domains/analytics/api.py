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


class FailureOut(BaseModel):
    code: int | None = Field(None, description="WhatsApp's error code", examples=[131047])
    title: str = ""
    count: int


class FirstResponse(BaseModel):
    count: int = Field(description="Customer turns answered in the range")
    average_seconds: float | None = None
    median_seconds: float | None = None


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
    first_response: FirstResponse


class AnalyticsApi(Controller):
    path = "/api/v1/analytics"
    guards = [requires_login]
    tags = ["analytics"]

    @get("/summary", summary="Messages in/out, delivered and read rates, failures by code, first-response time")
    async def summary(self, principal: NamedDependency[Principal],
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
        s = await Analytics().summary(principal.scope, since, until, account)
        return AnalyticsSummary(
            start=s.since, end=s.until, account_id=account_id, messages_in=s.messages_in, messages_out=s.messages_out,
            delivered_rate=s.rate(s.delivered), read_rate=s.rate(s.read), failed=s.failed,
            failures_by_code=[FailureOut(code=f.code, title=f.title, count=f.count) for f in s.failures],
            first_response=FirstResponse(**first_response_stats(s.first_responses)))
