"""Admin page: business hours, holidays, the away message and the greeting (one form)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.response import Template

from app.auth import requires_admin
from app.domains.business_hours.models import BusinessHours
from app.domains.business_hours.rules import COMMON_TIME_ZONES, DAY_NAMES, DAYS, day_text
from app.domains.workspaces.services import Principal
from app.errors import AppError
from app.forms import read_form, render
from app.runtime import Runtime


def _form_of(settings: BusinessHours) -> dict[str, Any]:
    """The stored settings as the form's fields."""
    form: dict[str, Any] = {f"hours_{day}": day_text(settings.weekly.get(day, [])) for day in DAYS}
    form.update(enabled="on" if settings.enabled else "", time_zone=settings.time_zone,
                holidays="\n".join(f"{h.date} {h.name}".strip() for h in settings.holidays),
                away_message=settings.away_message, greeting_message=settings.greeting_message)
    return form


def _context(form: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"active": "business-hours", "form": form, "days": [(day, DAY_NAMES[day]) for day in DAYS],
            "zones": COMMON_TIME_ZONES, "saved": False, "notice": None, "field_errors": {}, "error": None, **extra}


class BusinessHoursPages(Controller):
    path = "/admin/business-hours"
    guards = [requires_admin]
    include_in_schema = False

    @get("/")
    async def show(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> Template:
        service = runtime.business_hours
        settings = await service.current(principal.workspace_id)
        return Template("admin/business_hours.html",
                        context=_context(_form_of(settings), notice=service.view(settings)))

    @post("/", status_code=200)
    async def save(self, request: Request, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> Template:
        form, _ = await read_form(request)
        try:
            settings = await runtime.business_hours.update_from_form(principal.workspace_id, form)
        except AppError as error:
            return render(request, "admin/business_hours.html", "admin/_business_hours.html", _context(form),
                          error=error)
        return render(request, "admin/business_hours.html", "admin/_business_hours.html",
                      _context(_form_of(settings), saved=True, notice=runtime.business_hours.view(settings)))
