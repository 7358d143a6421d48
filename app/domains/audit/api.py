"""JSON API v1 of the audit log (services.py): who changed what, newest first. Admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from pydantic import BaseModel, Field

from app.auth import requires_admin
from app.db import as_utc
from app.domains.audit.models import AuditEntry
from app.domains.audit.services import AuditFilter, entries
from app.domains.messages.api_shapes import documented
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed


class AuditEntryOut(BaseModel):
    id: str
    at: datetime
    action: str = Field(examples=["number.token_changed"])
    target_type: str = Field(examples=["number"])
    target_id: str | None = None
    target_name: str = ""
    changes: dict[str, Any] = Field(description='Field -> {"from", "to"}; a secret only as "changed"')
    actor: str = Field(description='The person\'s email, "API key <name>", or "the system"')
    ip: str | None = None
    request_id: str | None = Field(None, description="The request that did it (its log lines carry the same id)")


class AuditPage(BaseModel):
    data: list[AuditEntryOut]
    next_cursor: str | None = None


def entry_out(entry: AuditEntry) -> dict[str, Any]:
    return {"id": str(entry.id), "at": as_utc(entry.at).isoformat(), "action": entry.action,
            "target_type": entry.target_type, "target_id": entry.target_id, "target_name": entry.target_name,
            "changes": entry.changes, "actor": entry.actor, "ip": entry.ip, "request_id": entry.request_id}


def audit_filter(action: str | None, actor: str | None, start: datetime | None, end: datetime | None,
                 cursor: str | None, limit: int) -> AuditFilter:
    before = None
    if cursor:
        try:
            before = datetime.fromisoformat(cursor)
        except ValueError:
            raise ValidationFailed("cursor: not a cursor this list gave.", error_code="FILTER_INVALID",
                                   details={"cursor": "unknown"}, status_code=400) from None
    if not 1 <= limit <= 200:
        raise ValidationFailed("limit: between 1 and 200.", error_code="FILTER_INVALID",
                               details={"limit": "between 1 and 200"}, status_code=400)
    return AuditFilter(action=(action or "").strip() or None, actor=(actor or "").strip() or None, start=start,
                       end=end, before=before, limit=limit)


class AuditApi(Controller):
    path = "/api/v1/audit"
    guards = [requires_admin]
    tags = ["audit"]

    @get("/", summary="The audit log: admin actions, newest first", responses=documented(200, AuditPage, "A page"))
    async def audit_log(self, principal: NamedDependency[Principal],
                        action: Annotated[str | None, QueryParameter(description="An action or its start: "
                                                                     "`number.` for every number action")] = None,
                        actor: Annotated[str | None, QueryParameter(description="Part of who did it")] = None,
                        start: Annotated[datetime | None, QueryParameter(name="from", description="At or after")
                                         ] = None,
                        end: Annotated[datetime | None, QueryParameter(name="to", description="Before")] = None,
                        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the last page")
                                          ] = None,
                        limit: Annotated[int, QueryParameter(description="1 to 200")] = 50) -> dict[str, Any]:
        found, next_cursor = await entries(principal.workspace_id, audit_filter(action, actor, start, end, cursor, limit))
        return {"data": [entry_out(e) for e in found], "next_cursor": next_cursor}
