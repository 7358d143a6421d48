"""Admin → Audit log: who changed what, when and from where, newest first, with filters (services.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from app.auth import requires_admin
from app.domains.audit.api import audit_filter
from app.domains.audit.services import entries
from app.domains.broadcasts.controllers import local_time
from app.domains.workspaces.services import Principal
from app.errors import AppError
from app.forms import local_day
from app.runtime import Runtime


class AuditPages(Controller):
    path = "/admin/audit"
    guards = [requires_admin]
    include_in_schema = False

    @get("/")
    async def index(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime],
                    action: FromQuery[str | None] = None, actor: FromQuery[str | None] = None,
                    start: Annotated[str | None, QueryParameter(name="from")] = None,
                    end: Annotated[str | None, QueryParameter(name="to")] = None,
                    cursor: FromQuery[str | None] = None) -> Template:
        zone = await runtime.business_hours.zone(principal.workspace_id)
        last = local_day(end, zone)
        error, found, next_cursor = None, [], None
        try:
            found, next_cursor = await entries(principal.workspace_id, audit_filter(
                action, actor, local_day(start, zone), last + timedelta(days=1) if last else None, cursor, 50))
        except AppError as refused:
            error = refused.message
        rows = [{"at": local_time(e.at, zone), "actor": e.actor, "ip": e.ip or "", "action": e.action,
                 "target": e.target_name or e.target_id or "", "changes": e.changes, "request_id": e.request_id}
                for e in found]
        kept = {k: v for k, v in (("action", action), ("actor", actor), ("from", start), ("to", end)) if v}
        return Template("admin/audit.html", context={
            "active": "audit", "rows": rows, "error": error, "zone": zone.key, "action": action or "",
            "retention": runtime.settings.audit_retention_days,
            "actor": actor or "", "start": start or "", "end": end or "", "filtered": bool(kept),
            "next": urlencode({**kept, "cursor": next_cursor}) if next_cursor else None})
