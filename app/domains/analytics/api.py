"""JSON API v1: the analytics summary for a date range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from beanie import PydanticObjectId
from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter, QueryParameter
from pydantic import BaseModel, Field

from app.auth import requires_login
from app.db import parse_object_id, utcnow
from app.domains.analytics.services import Analytics, first_response_stats
from app.domains.reports.agents import agent_figures
from app.domains.reports.contacts import contact_figures, may_see, not_for_agents
from app.domains.reports.conversations import conversation_figures
from app.domains.reports.filters import slice_of
from app.domains.reports.hours import ReportHours, read_hours
from app.domains.reports.messages import MessageFigures, message_figures
from app.domains.reports.periods import PRESETS, Interval, Period, period_of
from app.domains.reports.responses import response_figures
from app.domains.reports.templates import template_figures
from app.domains.reports.waits import Waits
from app.domains.workspaces.models import Role
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


class PeriodOut(BaseModel):
    first_day: date = Field(description="The first local day, included")
    last_day: date = Field(description="The last local day, included")
    time_zone: str = Field(description="The workspace's time zone (Business hours), whose days these are")
    preset: str = Field(description="The `range` preset, or custom", examples=["last_7_days"])
    label: str = Field(examples=["Last 7 days"])


class AnalyticsSummary(BaseModel):
    start: datetime = Field(description="The range's start (the `from` parameter, or the first day's local midnight)")
    end: datetime = Field(description="The range's end, exclusive (the `to` parameter, or the midnight after the last "
                                      "day)")
    period: PeriodOut | None = Field(None, description="With `range` or `start_date` / `end_date`: the local days")
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
    counted: CountedOut | None = Field(None, description="Asked in days: whether the figures below are whole yet")
    conversations: ConversationsSummary | None = Field(
        None, description="Asked in days: the conversations report's totals (/analytics/conversations)")
    responses: dict[str, WaitsOut] | None = Field(
        None, description="Asked in days: the responses report's totals (/analytics/responses): first, reply, "
                          "first_business, reply_business")
    contacts: ContactCounts | None = Field(
        None, description="Asked in days, by an admin or supervisor: the contacts report's totals (/analytics/contacts)")


class ConversationsSummary(BaseModel):
    totals: ConversationTotals
    open_now: int
    pending_now: int
    resolution: WaitsOut
    resolved_by: dict[str, int]


class MessageBucket(BaseModel):
    start: datetime = Field(description="The bucket's start (a local midnight or hour, in UTC)")
    end: datetime = Field(description="Its end, excluded")
    inbound: int
    outbound: int
    delivered: int
    read: int
    failed: int


class MessageTotals(BaseModel):
    inbound: int
    outbound: int
    delivered: int
    read: int
    failed: int
    delivered_rate: float | None = Field(None, description="delivered / outbound")
    read_rate: float | None = Field(None, description="read / outbound")
    failed_rate: float | None = Field(None, description="failed / outbound")

    @classmethod
    def of(cls, counts: dict[str, int]) -> MessageTotals:
        out = counts.get("outbound", 0)
        return cls(**counts, delivered_rate=MessageFigures.rate(counts.get("delivered", 0), out),
                   read_rate=MessageFigures.rate(counts.get("read", 0), out),
                   failed_rate=MessageFigures.rate(counts.get("failed", 0), out))


class FailureCount(BaseModel):
    code: int | None = Field(None, description="WhatsApp's error code", examples=[131026])
    title: str = ""
    words: str = Field("", description="What it means, as agents read it on the message")
    count: int


class CountedOut(BaseModel):
    complete: bool = Field(description="Every figure is counted. After an upgrade or a change of the workspace's time "
                                       "zone, past messages are counted again, newest first, within minutes: until "
                                       "then the figures before `complete_from` are partial")
    complete_from: datetime | None = Field(None, description="While not complete: the figures are whole from here on")
    progress: float | None = Field(None, description="While not complete: the share of the count done (0..1)",
                                   examples=[0.4])


class Report(BaseModel):
    counted: CountedOut = Field(description="Whether the figures are whole yet")


class MessagesReport(Report):
    period: PeriodOut
    interval: Interval
    buckets: list[MessageBucket]
    totals: MessageTotals
    by_type: dict[str, dict[str, int]] = Field(description="inbound / outbound: count per message type",
                                               examples=[{"inbound": {"text": 40, "image": 3}, "outbound": {"text": 35}}])
    failures: list[FailureCount] = Field(description="Our failed messages by error code, most first (top 10)")
    billable: dict[str, int] = Field(description="Our messages Meta charges for, per pricing category",
                                     examples=[{"marketing": 120, "utility": 14}])
    previous: MessageTotals = Field(description="The period compared with: as long, just before (a calendar month: "
                                                "the month before)")
    busiest_hours: list[list[int]] = Field(
        description="Customers' messages by local weekday (7 rows, Monday first) and local hour (24 columns, 0-23): "
                    "when people write, over the period")


class WaitsOut(BaseModel):
    count: int = Field(description="Answers")
    median_seconds: float | None = None
    p90_seconds: float | None = Field(None, description="90 % of the waits were at most this (nearest rank)")

    @classmethod
    def of(cls, waits: Waits) -> WaitsOut:
        return cls(count=waits.count, median_seconds=waits.median, p90_seconds=waits.p90)


class ConversationBucketOut(BaseModel):
    start: datetime
    end: datetime
    new: int = Field(description="Conversations a customer's message started")
    resolved: int = Field(description="Times a conversation was resolved")
    reopened: int = Field(description="Times a resolved or snoozed conversation opened again")
    open_at_end: int | None = Field(description="Conversations open at the bucket's end (sampled every quarter hour "
                                                "by the worker); null: not sampled then")
    pending_at_end: int | None = Field(description="Conversations pending at the bucket's end; null: not sampled then")


class ConversationTotals(BaseModel):
    new: int
    resolved: int
    reopened: int


class ConversationsReport(Report):
    period: PeriodOut
    interval: Interval
    buckets: list[ConversationBucketOut]
    totals: ConversationTotals
    previous: ConversationTotals = Field(description="The period compared with")
    open_now: int = Field(description="Open conversations now (this person sees)")
    pending_now: int = Field(description="Pending conversations now")
    resolution: WaitsOut = Field(description="Time to resolution: from the conversation's start (or its last reopening "
                                             "after a resolution) to each resolution in the period, in seconds")
    previous_resolution: WaitsOut
    resolved_by: dict[str, int] = Field(description="Resolutions by `person` (signed in) and by `automation` "
                                                    "(workflows, integrations)")


class AgentOut(BaseModel):
    user_id: str
    name: str
    messages_sent: int
    resolved: int
    answers: WaitsOut = Field(description="Their answers to waiting customers")
    first_response: WaitsOut
    resolution: WaitsOut = Field(description="How long the conversations they resolved had been open")
    inbox_seconds: int = Field(0, description="Time with an inbox tab open in the period, to the minute")


class AgentsReport(Report):
    period: PeriodOut
    agents: list[AgentOut] = Field(description="Everyone active, most resolved first (an agent: their own row)")


class TemplateChangeOut(BaseModel):
    at: datetime
    status: str
    reason: str | None = None


class TemplateOut(BaseModel):
    name: str
    sent: int
    delivered: int
    read: int
    failed: int
    replied: int = Field(description="Sends the customer answered (their next message in the conversation, within "
                                     "a day)")
    status: str = Field(description="Its approval status now (\"deleted\" when gone)")
    changes: list[TemplateChangeOut] = Field(description="Its status changes in the period (Meta's review)")


class TemplatesReport(Report):
    period: PeriodOut
    templates: list[TemplateOut] = Field(description="Those sent or reviewed in the period, most sent first")


class ContactCounts(BaseModel):
    new: int = Field(description="Contacts created (a first message, an import, the API, an agent), workspace-wide")
    returning: int = Field(description="Times a customer wrote into a resolved conversation (of the numbers asked)")
    opt_out: int = Field(description="Marketing opt-outs, workspace-wide")
    opt_in: int = Field(description="Marketing opt-ins (after an opt-out), workspace-wide")


class ContactBucketOut(ContactCounts):
    start: datetime
    end: datetime


class ContactsReport(Report):
    period: PeriodOut
    interval: Interval
    buckets: list[ContactBucketOut]
    totals: ContactCounts
    previous: ContactCounts = Field(description="The period compared with")
    by_source: dict[str, dict[str, int]] = Field(
        description="opt_out / opt_in -> how they came (keyword, agent, api, import, meta, failed_send, merge) -> "
                    "changes in the period")


class ResponseBucketOut(BaseModel):
    start: datetime
    end: datetime
    first: WaitsOut = Field(description="First responses: the first answer since the conversation was started or "
                                        "reopened")
    reply: WaitsOut = Field(description="Every answer to a waiting customer")
    first_business: WaitsOut = Field(description="First responses in business time")
    reply_business: WaitsOut = Field(description="Every answer, in business time")


class ResponsesReport(Report):
    period: PeriodOut
    interval: Interval
    buckets: list[ResponseBucketOut]
    totals: dict[str, WaitsOut] = Field(description="first / reply over the period, in all hours; first_business / "
                                                    "reply_business: the same waits counting only the seconds the "
                                                    "business was open (its business hours; off: every second)")
    previous: dict[str, WaitsOut] = Field(description="The same for the period compared with")
    answers_per_conversation: float | None = Field(
        None, description="Every answer over the first responses: answers per conversation (started or reopened) "
                          "that got one", examples=[2.4])
    previous_answers_per_conversation: float | None = None


@dataclass(frozen=True)
class ReportAsked:
    period: Period
    account_id: PydanticObjectId | None
    only: str | None = None
    """One team's, agent's or label's conversations (reports/filters.py); None: all."""


async def report_asked(principal: NamedDependency[Principal], runtime: NamedDependency[Runtime],
                       first: Annotated[date | None, QueryParameter(
                           name="from", description="The first local day (YYYY-MM-DD); alias start_date")] = None,
                       last: Annotated[date | None, QueryParameter(
                           name="to", description="The last local day, included; alias end_date")] = None,
                       start_date: Annotated[date | None, QueryParameter(description="= from")] = None,
                       end_date: Annotated[date | None, QueryParameter(description="= to")] = None,
                       preset: Annotated[str | None, QueryParameter(
                           name="range", description="Instead of the days: " + ", ".join(PRESETS))] = None,
                       account_id: Annotated[str | None, QueryParameter(description="Only this number")] = None,
                       team_id: Annotated[str | None, QueryParameter(
                           description="Only the conversations of this team now (one of team_id, agent_id, label)")
                       ] = None,
                       agent_id: Annotated[str | None, QueryParameter(
                           description="Only the conversations assigned to this person now")] = None,
                       label: Annotated[str | None, QueryParameter(
                           description="Only the conversations with this label (its id) now")] = None,
                       ) -> ReportAsked:
    """The query parameters every report takes (a dependency of each report endpoint): its local days and its
    number, and one team, agent or label (400 PERIOD_INVALID / VALIDATION_ERROR / FILTER_INVALID otherwise)."""
    period = await _period(runtime, principal, preset, first or start_date, last or end_date)
    account = parse_object_id(account_id) if account_id is not None else None
    if account_id is not None and account is None:
        raise ValidationFailed("account_id is not an id.", details={"account_id": "not an id"}, status_code=400)
    only = await slice_of(principal.workspace_id, team_id=team_id, agent_id=agent_id, label=label)
    return ReportAsked(period, account, only)


class AnalyticsApi(Controller):
    path = "/api/v1/analytics"
    dependencies = {"asked": Provide(report_asked)}
    guards = [requires_login]
    tags = ["analytics"]

    @get("/summary", summary="Messages in/out, delivered and read rates, failures by code, first-response time",
         description="With `from` / `to` (instants): the messages' figures over exactly that time. Asked in whole "
                     "local days (`range`, `start_date` / `end_date`): also the totals of the conversations, "
                     "responses and (admins, supervisors) contacts reports over those days.")
    async def summary(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime],
                      since: Annotated[datetime | None, QueryParameter(
                          name="from", description="Start (ISO 8601); default 7 days before `to`")] = None,
                      until: Annotated[datetime | None, QueryParameter(
                          name="to", description="End, exclusive (ISO 8601); default now")] = None,
                      account_id: str | None = Parameter(default=None, description="Only this number"),
                      preset: Annotated[str | None, QueryParameter(
                          name="range", description="Whole local days instead of `from` / `to`: " + ", ".join(PRESETS)
                      )] = None,
                      start_date: Annotated[date | None, QueryParameter(
                          description="The first local day (YYYY-MM-DD), with `end_date`: days of the workspace's "
                                      "time zone")] = None,
                      end_date: Annotated[date | None, QueryParameter(
                          description="The last local day, included")] = None,
                      ) -> AnalyticsSummary:
        hours = await runtime.business_hours.cached(principal.workspace_id)
        period = None
        if preset is not None or start_date is not None or end_date is not None:
            if since is not None or until is not None:
                raise ValidationFailed("Give `from` / `to`, or days (`range`, `start_date` / `end_date`), not both.",
                                       error_code="PERIOD_INVALID", details={"from": "with days"}, status_code=400)
            period = await _period(runtime, principal, preset, start_date, end_date)
            since, until = period.start, period.end
        until = until or utcnow()
        since = since or until - timedelta(days=7)
        if since.tzinfo is None or until.tzinfo is None:
            raise ValidationFailed("Give times with a time zone, e.g. 2025-01-31T00:00:00Z.",
                                   details={"from": "needs a time zone"}, status_code=400)
        account = parse_object_id(account_id) if account_id is not None else None
        if account_id is not None and account is None:
            raise ValidationFailed("account_id is not an id.", details={"account_id": "not an id"}, status_code=400)
        s = await Analytics().summary(principal.scope, since, until, account, hours=hours)
        figures: dict[str, Any] = {}
        if period is not None:  # in days: the reports' figures too, from their rollups (read once)
            read = await read_hours(principal.scope, period, "day", account_id=account)
            talks = await conversation_figures(principal.scope, period, "day", account_id=account, read=read)
            answers = await response_figures(principal.scope, period, "day", account_id=account, read=read)
            figures = {"counted": _counted(read), "responses": {k: WaitsOut.of(w) for k, w in answers.totals.items()},
                       "conversations": ConversationsSummary(
                           totals=ConversationTotals(**talks.totals), open_now=talks.open_now,
                           pending_now=talks.pending_now, resolution=WaitsOut.of(talks.resolution),
                           resolved_by=talks.resolved_by)}
            if may_see(principal.role):
                people = await contact_figures(principal.scope, period, "day", account_id=account, read=read)
                figures["contacts"] = ContactCounts(**people.totals)
        return AnalyticsSummary(**figures,
            start=s.since, end=s.until, account_id=account_id,
            period=_period_out(period) if period is not None else None, messages_in=s.messages_in, messages_out=s.messages_out,
            delivered_rate=s.rate(s.delivered), read_rate=s.rate(s.read), failed=s.failed,
            failures_by_code=[FailureOut(code=f.code, title=f.title, count=f.count) for f in s.failures],
            first_response=FirstResponse(**first_response_stats(s.first_responses)),
            first_response_business=BusinessFirstResponse(**first_response_stats(s.first_responses_business),
                                                          business_hours=s.business_hours))

    @get("/messages", summary="Messages per hour, day or week of local days, with how ours fared",
         description="Customers' messages (inbound) and ours (outbound; reactions and internal notes not counted) "
                     "per bucket of the workspace's local days (its Business hours time zone; a DST day is 23 or 25 "
                     "hours), with delivered (reached the phone: delivered, read or played), read and failed among "
                     "ours, counted in the bucket each was sent in; the totals, and those of the period just before "
                     "(as long; a calendar month: the month before).")
    async def messages(self, principal: NamedDependency[Principal], asked: NamedDependency[ReportAsked],
                             interval: Annotated[Interval, QueryParameter(description="Bucket size")] = "day") -> MessagesReport:
        period, account = asked.period, asked.account_id
        read = await read_hours(principal.scope, period, interval, account_id=account, only=asked.only)
        figures = await message_figures(principal.scope, period, interval, account_id=account, read=read)
        return MessagesReport(
            counted=_counted(read), period=_period_out(period), interval=interval,
            buckets=[MessageBucket(**vars(b)) for b in figures.buckets],
            totals=MessageTotals.of(figures.totals), previous=MessageTotals.of(figures.previous),
            by_type=figures.by_type, billable=figures.billable,
            failures=[FailureCount(**vars(failure)) for failure in figures.failures], busiest_hours=figures.busiest)

    @get("/responses", summary="How long customers waited for a person's answer: first response and every answer",
         description="A customer waits from their first unanswered message until a person answers: an agent in "
                     "the inbox, the API, or the WhatsApp Business app (a broadcast's or a workflow's message is "
                     "not an answer). `first`: the first answer since the conversation was started or reopened; "
                     "`reply`: every answer to a waiting customer. All hours count. Each wait is in the bucket "
                     "of its answer; medians and 90th percentiles are exact, in seconds. The totals also give "
                     "each wait in business time (only the seconds the business was open).")
    async def responses(self, principal: NamedDependency[Principal], asked: NamedDependency[ReportAsked],
                              interval: Annotated[Interval, QueryParameter(description="Bucket size")] = "day") -> ResponsesReport:
        period, account = asked.period, asked.account_id
        read = await read_hours(principal.scope, period, interval, account_id=account, only=asked.only)
        figures = await response_figures(principal.scope, period, interval, account_id=account, read=read)
        return ResponsesReport(
            counted=_counted(read), period=_period_out(period), interval=interval,
            buckets=[ResponseBucketOut(start=b.start, end=b.end, first=WaitsOut.of(b.first), reply=WaitsOut.of(b.reply),
                                       first_business=WaitsOut.of(b.first_business),
                                       reply_business=WaitsOut.of(b.reply_business)) for b in figures.buckets],
            totals={k: WaitsOut.of(w) for k, w in figures.totals.items()},
            previous={k: WaitsOut.of(w) for k, w in figures.previous.items()},
            answers_per_conversation=figures.answers_per_conversation,
            previous_answers_per_conversation=figures.previous_answers_per_conversation)

    @get("/agents", summary="The agents' leaderboard: messages sent, answers and waits, conversations resolved",
         description="Per active person of the workspace over the period: messages they sent, their answers to "
                     "waiting customers (first response and every answer: median and 90th percentile in seconds), "
                     "the conversations they resolved and how long those had been open. An agent gets their own "
                     "row; admins and supervisors everyone's.")
    async def agents(self, principal: NamedDependency[Principal], asked: NamedDependency[ReportAsked]) -> AgentsReport:
        period, account = asked.period, asked.account_id
        only = principal.user.id if principal.role is Role.AGENT and principal.user is not None else None
        read = await read_hours(principal.scope, period, "day", account_id=account, only=asked.only)
        rows = await agent_figures(principal.scope, period, "day", account_id=account, read=read, only=only)
        return AgentsReport(counted=_counted(read), period=_period_out(period), agents=[
            AgentOut(user_id=str(r.user_id), name=r.name, messages_sent=r.sent, resolved=r.resolved,
                     answers=WaitsOut.of(r.reply), first_response=WaitsOut.of(r.first),
                     resolution=WaitsOut.of(r.resolution), inbox_seconds=60 * r.inbox_minutes) for r in rows])

    @get("/templates", summary="Per template: messages sent with it, delivered, read, failed; status and reviews",
         description="Our template messages over the period by template name (each counted in the hour it was "
                     "sent), the template's approval status now, and its status changes received in the period.")
    async def templates(self, principal: NamedDependency[Principal], asked: NamedDependency[ReportAsked]) -> TemplatesReport:
        period, account = asked.period, asked.account_id
        read = await read_hours(principal.scope, period, "day", account_id=account, only=asked.only)
        rows = await template_figures(principal.scope, period, "day", account_id=account, read=read)
        return TemplatesReport(counted=_counted(read), period=_period_out(period), templates=[
            TemplateOut(name=r.name, sent=r.sent, delivered=r.delivered, read=r.read, failed=r.failed, replied=r.replied,
                        status=r.status,
                        changes=[TemplateChangeOut(at=c.at, status=c.status, reason=c.reason) for c in r.changes])
            for r in rows])

    @get("/contacts", summary="New contacts, returning customers, marketing opt-outs and opt-ins",
         description="Per bucket of the workspace's local days: contacts created (however they came), customers "
                     "writing into a resolved conversation, and marketing consent changes, with their totals, those "
                     "of the period just before, and consent changes by how they came. Contacts belong to the "
                     "workspace: new contacts and consent count every number; returning customers follow "
                     "`account_id`. Admins and supervisors; agents get 403 REPORT_NOT_ALLOWED.")
    async def contacts(self, principal: NamedDependency[Principal], asked: NamedDependency[ReportAsked],
                       interval: Annotated[Interval, QueryParameter(description="Bucket size")] = "day") -> ContactsReport:
        period, account = asked.period, asked.account_id
        if not may_see(principal.role):
            raise not_for_agents()
        read = await read_hours(principal.scope, period, interval, account_id=account, only=asked.only)
        figures = await contact_figures(principal.scope, period, interval, account_id=account, read=read)
        return ContactsReport(
            counted=_counted(read), period=_period_out(period), interval=interval,
            buckets=[ContactBucketOut(**vars(b)) for b in figures.buckets],
            totals=ContactCounts(**figures.totals), previous=ContactCounts(**figures.previous),
            by_source=figures.by_source)

    @get("/conversations", summary="Conversations customers started, resolved and reopened, per hour, day or week",
         description="Per bucket of the workspace's local days: conversations a customer's message started (not "
                     "those a broadcast or an agent started), each time one was resolved, and each time one "
                     "reopened (by an agent, a snooze ending, or the customer writing into a resolved one); the "
                     "totals, those of the period just before, and the open and pending conversations now.")
    async def conversations(self, principal: NamedDependency[Principal], asked: NamedDependency[ReportAsked],
                                  interval: Annotated[Interval, QueryParameter(description="Bucket size")] = "day") -> ConversationsReport:
        period, account = asked.period, asked.account_id
        read = await read_hours(principal.scope, period, interval, account_id=account, only=asked.only)
        figures = await conversation_figures(principal.scope, period, interval, account_id=account, read=read)
        return ConversationsReport(
            counted=_counted(read), period=_period_out(period), interval=interval,
            buckets=[ConversationBucketOut(**vars(b)) for b in figures.buckets],
            totals=ConversationTotals(**figures.totals), previous=ConversationTotals(**figures.previous),
            open_now=figures.open_now, pending_now=figures.pending_now,
            resolution=WaitsOut.of(figures.resolution), previous_resolution=WaitsOut.of(figures.previous_resolution),
            resolved_by=figures.resolved_by)


def _counted(read: ReportHours) -> CountedOut:
    fresh = read.freshness
    return CountedOut(complete=fresh.complete, complete_from=None if fresh.complete else fresh.back_to,
                      progress=None if fresh.complete else fresh.progress)


async def _period(runtime: Runtime, principal: Principal, preset: str | None, first: date | None,
                  last: date | None) -> Period:
    """The local days asked for, in the workspace's time zone (its Business hours'; UTC when never saved)."""
    zone = await runtime.business_hours.zone(principal.workspace_id)
    return period_of(preset, first, last, zone, datetime.now(zone).date())




def _period_out(period: Period) -> PeriodOut:
    return PeriodOut(first_day=period.first, last_day=period.last, time_zone=period.zone.key, preset=period.preset,
                     label=period.label)


AnalyticsSummary.model_rebuild()  # its report sections are declared below it
