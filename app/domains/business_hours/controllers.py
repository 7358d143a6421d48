"""Admin page: business hours, holidays, the away message and the greeting (one form); the extra STOP / START
words and their confirmations (a second form on the same page: the other automatic replies)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.response import Template

from app.auth import requires_admin
from app.domains.business_hours.models import BusinessHours
from app.domains.business_hours.rules import COMMON_TIME_ZONES, DAY_NAMES, DAYS, day_text
from app.domains.contacts.models import KeywordSettings
from app.domains.workspaces.services import Principal
from app.errors import AppError
from app.forms import errors_of, is_htmx, read_form, render
from app.runtime import Runtime


def _form_of(settings: BusinessHours) -> dict[str, Any]:
    """The stored settings as the form's fields."""
    form: dict[str, Any] = {f"hours_{day}": day_text(settings.weekly.get(day, [])) for day in DAYS}
    form.update(enabled="on" if settings.enabled else "", time_zone=settings.time_zone,
                holidays="\n".join(f"{h.date} {h.name}".strip() for h in settings.holidays),
                away_message=settings.away_message, greeting_message=settings.greeting_message)
    return form


def _keywords_form(settings: KeywordSettings) -> dict[str, Any]:
    return {"opt_out_words": "\n".join(settings.opt_out_words), "opt_in_words": "\n".join(settings.opt_in_words),
            "opt_out_confirmation": settings.opt_out_confirmation, "opt_in_confirmation": settings.opt_in_confirmation}


def _context(form: dict[str, Any], kw_form: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"active": "business-hours", "form": form, "days": [(day, DAY_NAMES[day]) for day in DAYS],
            "zones": COMMON_TIME_ZONES, "saved": False, "notice": None, "field_errors": {}, "error": None,
            "kw_form": kw_form or {}, "kw_saved": False, "kw_error": None, "kw_errors": {}, **extra}


class BusinessHoursPages(Controller):
    path = "/admin/business-hours"
    guards = [requires_admin]
    include_in_schema = False

    @get("/")
    async def show(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> Template:
        service = runtime.business_hours
        settings = await service.current(principal.workspace_id)
        keywords = await runtime.consent_keywords.current(principal.workspace_id)
        return Template("admin/business_hours.html",
                        context=_context(_form_of(settings), _keywords_form(keywords), notice=service.view(settings)))

    @post("/", status_code=200)
    async def save(self, request: Request, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> Template:
        form, _ = await read_form(request)
        keywords = _keywords_form(await runtime.consent_keywords.current(principal.workspace_id))
        try:
            settings = await runtime.business_hours.update_from_form(principal.workspace_id, form)
        except AppError as error:
            return render(request, "admin/business_hours.html", "admin/_business_hours.html", _context(form, keywords),
                          error=error)
        return render(request, "admin/business_hours.html", "admin/_business_hours.html",
                      _context(_form_of(settings), keywords, saved=True, notice=runtime.business_hours.view(settings)))

    @post("/keywords", status_code=200)
    async def save_keywords(self, request: Request, principal: NamedDependency[Principal],
                            runtime: NamedDependency[Runtime]) -> Template:
        form, _ = await read_form(request)
        page = "admin/_consent_keywords.html" if is_htmx(request) else "admin/business_hours.html"
        try:
            keywords = await runtime.consent_keywords.update_from_form(principal.workspace_id, form)
        except AppError as error:
            context = {"kw_form": form, "kw_error": error, "kw_errors": errors_of(error)}
            return Template(page, context=await self._page(principal, runtime, **context), status_code=error.status_code)
        return Template(page, context=await self._page(principal, runtime, kw_form=_keywords_form(keywords),
                                                        kw_saved=True))

    @staticmethod
    async def _page(principal: Principal, runtime: Runtime, **keywords: Any) -> dict[str, Any]:
        """The whole page's context (a form posted without HTMX shows the page again)."""
        settings = await runtime.business_hours.current(principal.workspace_id)
        return _context(_form_of(settings), notice=runtime.business_hours.view(settings), **keywords)
