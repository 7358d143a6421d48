"""Admin → Failed messages: the failed list with its filters, and retry or set aside what is ticked (services.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from app.auth import requires_admin
from app.domains.broadcasts.controllers import local_time
from app.domains.failures.api import filter_of
from app.domains.failures.services import discard_many, failed_page, retry_many
from app.domains.workspaces.services import Principal
from app.errors import AppError
from app.forms import local_day
from app.runtime import Runtime

REASONS = {"WINDOW_CLOSED": "the 24-hour window is closed (send a template instead)",
           "NOT_FAILED": "no longer failed", "TEMPLATE_NOT_APPROVED": "the template is not approved",
           "CONTACT_NOT_FOUND": "the contact is gone"}


class FailedPages(Controller):
    path = "/admin/failed"
    guards = [requires_admin]
    include_in_schema = False

    @get("/")
    async def index(self, request: Request[Any, Any, Any], principal: NamedDependency[Principal],
                    runtime: NamedDependency[Runtime], account_id: FromQuery[str | None] = None,
                    error_code: FromQuery[str | None] = None, start: Annotated[str | None, QueryParameter(name="from")] = None,
                    end: Annotated[str | None, QueryParameter(name="to")] = None, discarded: FromQuery[bool] = False,
                    cursor: FromQuery[str | None] = None, retried: FromQuery[int | None] = None,
                    skipped: FromQuery[str | None] = None, aside: FromQuery[int | None] = None) -> Template:
        zone = await runtime.business_hours.zone(principal.workspace_id)
        numbers = await runtime.accounts.list(principal.workspace_id)
        error, page = None, None
        first, last = local_day(start, zone), local_day(end, zone)
        try:
            code = int(error_code) if error_code else None
            asked = filter_of(account_id or None, code, first, last + timedelta(days=1) if last else None, discarded,
                              cursor or None, 50)
            page = await failed_page(principal.workspace_id, asked)
        except ValueError:
            error = "The error code is a number, such as 131047."
        except AppError as refused:
            error = refused.message
        named = {str(n.id): f"{n.name} ({n.display_phone_number})" for n in numbers}
        rows = [{"id": str(m.id), "conversation_id": str(m.conversation_id), "to": m.recipient or "",
                 "number": named.get(str(m.account_id), "a removed number"), "type": m.type,
                 "code": m.error.code if m.error else None,
                 "reason": (m.error.agent_message or m.error.title) if m.error else "",
                 "failed_at": local_time(m.status_at.get("failed") or m.updated_at, zone), "retries": m.retries,
                 "attempts": m.attempts} for m in (page.messages if page else [])]
        kept = {k: v for k, v in (("account_id", account_id), ("error_code", error_code), ("from", start),
                                  ("to", end), ("discarded", "true" if discarded else None)) if v}
        done = None
        if retried is not None:
            reasons = [f"{n} not: {REASONS.get(c, c)}" for c, n in
                       (part.split(":", 1) for part in (skipped or "").split(",") if ":" in part)]
            done = f"{retried} queued again." + (" " + "; ".join(reasons) + "." if reasons else "")
        elif aside is not None:
            done = f"{aside} set aside."
        return Template("admin/failed.html", context={
            "active": "failed", "rows": rows, "numbers": named, "error": error, "done": done, "zone": zone.key,
            "account_id": account_id or "", "error_code": error_code or "", "start": start or "", "end": end or "",
            "discarded": discarded, "query": urlencode(kept),
            "next": urlencode({**kept, "cursor": page.next_cursor}) if page and page.next_cursor else None})

    @post("/", status_code=303)
    async def act(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime],
                  data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Redirect:
        ids = data.get("ids") or []
        ids = [ids] if isinstance(ids, str) else list(ids)
        back = str(data.get("back") or "")
        back = back if back.startswith(("account_id=", "error_code=", "from=", "to=", "discarded=")) or not back else ""
        try:
            if data.get("action") == "discard":
                outcome = {"aside": await discard_many(principal.workspace_id, ids, principal.who)}
            else:
                result = await retry_many(runtime.outbox, principal.workspace_id, ids)
                outcome = {"retried": result["retried"],
                           "skipped": ",".join(f"{c}:{n}" for c, n in result["skipped"].items())}
        except AppError:
            outcome = {"retried": 0, "skipped": "NO_MESSAGES:0"}
        return Redirect(f"/admin/failed?{back + '&' if back else ''}{urlencode(outcome)}")
