"""The report's panels, by name: what the page asks for (one read of the rollups shared by all of them)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from beanie import PydanticObjectId

from app.domains.access.scope import Scope
from app.domains.reports import rollups
from app.domains.reports.agents import agent_figures
from app.domains.reports.contacts import contact_figures
from app.domains.reports.conversations import conversation_figures
from app.domains.reports.hours import read_hours
from app.domains.reports.messages import message_figures
from app.domains.reports.periods import Interval, Period
from app.domains.reports.responses import response_figures
from app.domains.reports.templates import template_figures

PANELS = {"conversations": conversation_figures, "responses": response_figures, "agents": agent_figures,
          "messages": message_figures, "contacts": contact_figures, "templates": template_figures}


async def prepare(workspace_id: PydanticObjectId, zone: ZoneInfo) -> None:
    """Brings what the panels read up to date (the worker's cron does it every minute)."""
    await rollups.refresh(workspace_id, zone)


async def page(scope: Scope, period: Period, interval: Interval, *, account_id: PydanticObjectId | None = None,
               only: str | None = None, only_agent: PydanticObjectId | None = None, contacts: bool = True
               ) -> dict[str, Any]:
    """Every panel, as the page shows them: the rollups read once, of one filter (``only``: a team, agent or label:
    filters.py) or all (``only_agent``: the leaderboard's one row; the
    contacts panel is None unless ``contacts``: agents do not see it)."""
    read = await read_hours(scope, period, interval, account_id=account_id, only=only)
    shown: dict[str, Any] = {"freshness": read.freshness, "contacts": None}
    for name, panel in PANELS.items():
        if name == "contacts" and not contacts:
            continue
        extra = {"only": only_agent} if name == "agents" else {}
        shown[name] = await panel(scope, period, interval, account_id=account_id, read=read, **extra)
    return shown
