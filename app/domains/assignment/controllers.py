"""Admin page "Assignment" (auto-assignment rules, who is online) and every user's availability control."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from app.auth import requires_admin, requires_login
from app.domains.assignment.presence import LABELS, availability_view
from app.domains.workspaces.services import Principal
from app.errors import AppError
from app.forms import read_form, render
from app.runtime import Runtime


def _rule_fields(form: dict[str, str]) -> dict[str, Any]:
    return {"name": form.get("name", ""), "enabled": form.get("enabled") in ("on", "true", "1"),
            "account_id": form.get("account_id") or None, "team_id": form.get("team_id") or None,
            "method": form.get("method", ""), "max_open_per_agent": form.get("max_open_per_agent") or None,
            "reassign_when_offline": form.get("reassign_when_offline") in ("on", "true", "1")}


class AssignmentPages(Controller):
    path = "/admin/assignment"
    guards = [requires_admin]
    include_in_schema = False

    async def _context(self, runtime: Runtime, principal: Principal, **extra: Any) -> dict[str, Any]:
        screen = await runtime.auto_assigner.screen(principal.workspace_id)
        return {"active": "assignment", **screen, "form": {"enabled": True, "method": "round_robin"},
                "editing": None, "edit_form": {}, "saved": False, "field_errors": {}, "error": None, **extra}

    def _answer(self, request: Request, context: dict[str, Any], error: AppError | None = None) -> Template:
        return render(request, "admin/assignment/index.html", "admin/assignment/_rules.html", context, error=error)

    async def _save(self, request: Request, runtime: Runtime, principal: Principal, rule_id: str | None) -> Template:
        form, _ = await read_form(request)
        rules = runtime.auto_assigner.rules
        try:
            rule = await rules.get(principal.workspace_id, rule_id) if rule_id else None
            await rules.save(principal.workspace_id, _rule_fields(form), rule)
        except AppError as error:
            extra = {"form": form} if rule_id is None else {"editing": rule_id, "edit_form": form}
            return self._answer(request, await self._context(runtime, principal, **extra), error)
        return self._answer(request, await self._context(runtime, principal, saved=True))

    @get("/")
    async def index(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        return Template("admin/assignment/index.html", context=await self._context(runtime, principal))

    @post("/", status_code=200)
    async def create(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        return await self._save(request, runtime, principal, None)

    @post("/{rule_id:str}", status_code=200)
    async def update(self, rule_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        return await self._save(request, runtime, principal, rule_id)

    @post("/{rule_id:str}/delete", status_code=200)
    async def delete(self, rule_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        rules = runtime.auto_assigner.rules
        await rules.delete(await rules.get(principal.workspace_id, rule_id))
        return self._answer(request, await self._context(runtime, principal))


class AvailabilityControl(Controller):
    """The status control in the header: every signed-in user sets their own (an HTMX POST)."""

    path = "/availability"
    guards = [requires_login]
    include_in_schema = False

    @get("/")
    async def show(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        user, status = await runtime.presence.current(principal.workspace_id, principal.user_id)
        return Template("assignment/_availability.html", context={"a": availability_view(user, status),
                                                                   "choices": LABELS, "error": None})

    @post("/", status_code=200)
    async def choose(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        try:
            user = await runtime.presence.choose(principal.workspace_id, principal.user_id, form.get("availability"))
        except AppError as error:
            user, status = await runtime.presence.current(principal.workspace_id, principal.user_id)
            return Template("assignment/_availability.html", status_code=error.status_code, context={
                "a": availability_view(user, status), "choices": LABELS, "error": error})
        return Template("assignment/_availability.html", context={
            "a": availability_view(user, await runtime.presence.status_of(user)), "choices": LABELS, "error": None})
