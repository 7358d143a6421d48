"""The reports page (/reports): the figures of the numbers the signed-in person sees, over local days of the
workspace's time zone, each panel a chart with its table, and a CSV of each panel's rows."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Stream, Template

from app.auth import requires_login
from app.db import parse_object_id
from app.domains.reports import filters, panels
from app.domains.reports import rows as raw_rows
from app.domains.reports.agents import agent_figures
from app.domains.reports.contacts import COUNTS as CONTACT_COUNTS
from app.domains.reports.contacts import SOURCES as CONSENT_SOURCES
from app.domains.reports.contacts import contact_figures, may_see, not_for_agents
from app.domains.reports.conversations import COUNTS as CONVERSATION_COUNTS
from app.domains.reports.conversations import conversation_figures
from app.domains.reports.hours import ReportHours, read_hours
from app.domains.reports.messages import COUNTS, MessageFigures, message_figures
from app.domains.reports.periods import PRESETS, Interval, Period, period_of
from app.domains.reports.responses import ALL as RESPONSE_KINDS
from app.domains.reports.responses import response_figures
from app.domains.reports.templates import OUTCOMES as TEMPLATE_OUTCOMES
from app.domains.reports.templates import template_figures
from app.domains.reports.waits import duration
from app.domains.workspaces.models import Role
from app.domains.workspaces.services import Principal
from app.errors import AppError, ValidationFailed
from app.runtime import Runtime

INTERVALS: dict[str, str] = {"day": "Day", "week": "Week", "hour": "Hour"}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _date(text: str | None, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{field}: a date like 2026-03-28.", error_code="PERIOD_INVALID",
                               details={field: "not a date"}, status_code=400) from None


def bucket_label(start: datetime, period: Period, interval: str) -> str:
    local = start.astimezone(period.zone)
    if interval == "hour":
        return f"{local:%a %d %b %H:%M}"
    if interval == "week":
        return f"Week of {local:%d %b}"
    return f"{local:%a %d %b}"


def _points(buckets: list[Any], period: Period, interval: str) -> list[dict[str, Any]]:
    """A panel's buckets as its chart table's rows: the x of each point (epoch seconds) and its label."""
    return [{"x": int(b.start.timestamp()), "label": bucket_label(b.start, period, interval), "b": b} for b in buckets]


def change(now: int, before: int) -> str:
    """How a figure moved against the period compared with, in words a person reads at a glance."""
    if before == 0:
        return "new" if now else "no change"
    delta = round(100 * (now - before) / before)
    return "no change" if delta == 0 else f"{'+' if delta > 0 else '−'}{abs(delta)} %"


class ReportPages(Controller):
    path = "/reports"
    guards = [requires_login]
    include_in_schema = False

    async def _ask(self, runtime: Runtime, principal: Principal, params: dict[str, str]
                   ) -> tuple[Period, Interval, Any, list[Any], str | None]:
        zone = await runtime.business_hours.zone(principal.workspace_id)
        preset = params.get("range") or None
        first, last = _date(params.get("from"), "from"), _date(params.get("to"), "to")
        if preset == "custom":
            preset = None
        period = period_of(preset if first is None and last is None else None, first, last, zone,
                           datetime.now(zone).date())
        interval: Interval = params.get("interval") if params.get("interval") in INTERVALS else "day"  # type: ignore[assignment]
        numbers = [n for n in await runtime.accounts.list(principal.workspace_id)
                   if principal.scope.sees_number(n.id)]
        account = parse_object_id(params.get("account_id")) if params.get("account_id") else None
        if account is not None and all(n.id != account for n in numbers):
            account = None
        only = await filters.slice_of_choice(principal.workspace_id, params.get("only"))
        return period, interval, account, numbers, only

    @get("/")
    async def index(self, request: Request, principal: NamedDependency[Principal],
                    runtime: NamedDependency[Runtime]) -> Template:
        params = {key: request.query_params.get(key) or "" for key in request.query_params}
        error = None
        try:
            period, interval, account, numbers, only = await self._ask(runtime, principal, params)
        except AppError as problem:  # a bad date, range or filter: said on the page, the default shown
            error = problem
            period, interval, account, numbers, only = await self._ask(runtime, principal, {})
            params = {}
        choices = await filters.choices(principal.workspace_id)
        shown = await panels.page(principal.scope, period, interval, account_id=account, only=only,
                                  only_agent=_own_row(principal), contacts=may_see(principal.role))
        figures, talks, answers = shown["messages"], shown["conversations"], shown["responses"]
        people = shown["contacts"]
        query = {"range": period.preset, "interval": interval, **({"account_id": str(account)} if account else {}),
                 **({"only": only} if only else {})}
        if period.preset == "custom":
            query.update({"from": period.first.isoformat(), "to": period.last.isoformat()})
        return Template("reports/index.html", context={
            "active": "reports", "period": period, "previous": period.previous(), "interval": interval,
            "intervals": INTERVALS, "presets": PRESETS, "numbers": numbers, "account_id": str(account or ""),
            "only": only or "", "only_choices": choices,
            "only_words": next((c.words for group in choices.values() for c in group if c.value == only), ""),
            "figures": figures, "error": error, "csv_query": urlencode(query),
            "rows": _points(figures.buckets, period, interval),
            "changes": {name: change(figures.totals[name], figures.previous.get(name, 0)) for name in COUNTS},
            "talks": talks, "agents": shown["agents"], "templates": shown["templates"],
            "people": people, "people_rows": _points(people.buckets, period, interval) if people else [],
            "people_changes": {name: change(people.totals[name], people.previous.get(name, 0))
                               for name in CONTACT_COUNTS} if people else {},
            "consent_sources": CONSENT_SOURCES,
            "freshness": shown["freshness"],
            "answers": answers, "duration": duration,
            "answer_rows": _points(answers.buckets, period, interval),
            "talk_rows": _points(talks.buckets, period, interval),
            "talk_changes": {name: change(talks.totals[name], talks.previous.get(name, 0))
                             for name in CONVERSATION_COUNTS},
            "rate": MessageFigures.rate,
            "weekdays": WEEKDAYS,
        })

    @get("/messages.csv")
    async def messages_csv(self, request: Request, principal: NamedDependency[Principal],
                           runtime: NamedDependency[Runtime]) -> Stream:
        period, interval, account, read = await self._csv_ask(request, principal, runtime)
        figures = await message_figures(principal.scope, period, interval, account_id=account, read=read)
        return _csv("messages", period, interval, COUNTS, figures.buckets)

    @get("/conversations.csv")
    async def conversations_csv(self, request: Request, principal: NamedDependency[Principal],
                                runtime: NamedDependency[Runtime]) -> Stream:
        period, interval, account, read = await self._csv_ask(request, principal, runtime)
        figures = await conversation_figures(principal.scope, period, interval, account_id=account, read=read)
        return _csv("conversations", period, interval, (*CONVERSATION_COUNTS, "open_at_end", "pending_at_end"),
                    figures.buckets)

    @get("/responses.csv")
    async def responses_csv(self, request: Request, principal: NamedDependency[Principal],
                            runtime: NamedDependency[Runtime]) -> Stream:
        period, interval, account, read = await self._csv_ask(request, principal, runtime)
        figures = await response_figures(principal.scope, period, interval, account_id=account, read=read)
        rows = [_Flat(b.start, b.end, {f"{kind}_{name}": getattr(getattr(b, kind), attr)
                                       for kind in RESPONSE_KINDS for name, attr in WAIT_COLUMNS})
                for b in figures.buckets]
        return _csv("responses", period, interval, RESPONSE_COLUMNS, rows)

    @get("/contacts.csv")
    async def contacts_csv(self, request: Request, principal: NamedDependency[Principal],
                           runtime: NamedDependency[Runtime]) -> Stream:
        if not may_see(principal.role):
            raise not_for_agents()
        period, interval, account, read = await self._csv_ask(request, principal, runtime)
        figures = await contact_figures(principal.scope, period, interval, account_id=account, read=read)
        return _csv("contacts", period, interval, CONTACT_COUNTS, figures.buckets)

    @get("/agents.csv")
    async def agents_csv(self, request: Request, principal: NamedDependency[Principal],
                         runtime: NamedDependency[Runtime]) -> Stream:
        period, interval, account, read = await self._csv_ask(request, principal, runtime)
        rows = await agent_figures(principal.scope, period, interval, account_id=account, read=read,
                                 only=_own_row(principal))
        flat = [_Flat(period.start, period.end, {
            "agent": row.name, "messages_sent": row.sent, "answers": row.reply.count,
            "first_response_median_seconds": row.first.median, "response_median_seconds": row.reply.median,
            "resolved": row.resolved, "resolution_median_seconds": row.resolution.median,
            "inbox_seconds": 60 * row.inbox_minutes}) for row in rows]
        return _csv("agents", period, interval, AGENT_COLUMNS, flat)

    @get("/templates.csv")
    async def templates_csv(self, request: Request, principal: NamedDependency[Principal],
                            runtime: NamedDependency[Runtime]) -> Stream:
        period, interval, account, read = await self._csv_ask(request, principal, runtime)
        rows = await template_figures(principal.scope, period, interval, account_id=account, read=read)
        flat = [_Flat(period.start, period.end, {"template": r.name, "status_now": r.status,
                                                 **{o: getattr(r, o) for o in TEMPLATE_OUTCOMES}}) for r in rows]
        return _csv("templates", period, interval, ("template", "status_now", *TEMPLATE_OUTCOMES), flat)

    @get("/all-messages.csv")
    async def all_messages_csv(self, request: Request, principal: NamedDependency[Principal],
                               runtime: NamedDependency[Runtime]) -> Stream:
        """Every message of the period, one row each (streamed)."""
        params = {key: request.query_params.get(key) or "" for key in request.query_params}
        period, _, account, numbers, only = await self._ask(runtime, principal, params)
        return _rows("all-messages", period,
                     raw_rows.message_rows(principal.scope, period, account, _numbers(numbers), only))

    @get("/all-conversations.csv")
    async def all_conversations_csv(self, request: Request, principal: NamedDependency[Principal],
                                    runtime: NamedDependency[Runtime]) -> Stream:
        """Every conversation with a message in the period, one row each (streamed)."""
        params = {key: request.query_params.get(key) or "" for key in request.query_params}
        period, _, account, numbers, only = await self._ask(runtime, principal, params)
        return _rows("all-conversations", period,
                     raw_rows.conversation_rows(principal.scope, period, account, _numbers(numbers), only))

    async def _csv_ask(self, request: Request, principal: Principal, runtime: Runtime
                       ) -> tuple[Period, Interval, Any, ReportHours]:
        """What a panel's CSV covers, and the rollups it reads (of the filter asked for)."""
        params = {key: request.query_params.get(key) or "" for key in request.query_params}
        period, interval, account, _, only = await self._ask(runtime, principal, params)
        return period, interval, account, await read_hours(principal.scope, period, interval, account_id=account,
                                                            only=only)


AGENT_COLUMNS = ("agent", "messages_sent", "answers", "first_response_median_seconds", "response_median_seconds",
                 "resolved", "resolution_median_seconds", "inbox_seconds")


def _own_row(principal: Principal) -> Any:
    """Agents see their own row of the leaderboard; admins and supervisors everyone's."""
    if principal.role is Role.AGENT and principal.user is not None:
        return principal.user.id
    return None


WAIT_COLUMNS = (("answers", "count"), ("median_seconds", "median"), ("p90_seconds", "p90"))
RESPONSE_COLUMNS = tuple(f"{kind}_{name}" for kind in RESPONSE_KINDS for name, _ in WAIT_COLUMNS)


class _Flat:
    """A bucket whose columns are given by name (for _csv)."""

    def __init__(self, start: datetime, end: datetime, values: dict[str, Any]) -> None:
        self.start, self.end = start, end
        self.__dict__.update(values)


def _numbers(numbers: list[Any]) -> dict[Any, str]:
    return {n.id: n.display_phone_number for n in numbers}


def _rows(name: str, period: Period, lines: AsyncIterator[str]) -> Stream:
    filename = f"{name}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return Stream(lines, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _csv(panel: str, period: Period, interval: str, columns: tuple[str, ...], buckets: list[Any]) -> Stream:
    """A panel's buckets as CSV: each bucket's local start and end, then its counts."""

    async def rows() -> AsyncIterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["start", "end", *columns])
        for b in buckets:
            writer.writerow([b.start.astimezone(period.zone).isoformat(), b.end.astimezone(period.zone).isoformat(),
                             *("" if getattr(b, name) is None else getattr(b, name) for name in columns)])
        yield out.getvalue()

    name = f"{panel}-{period.first.isoformat()}-{period.last.isoformat()}-{interval}.csv"
    return Stream(rows(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})
