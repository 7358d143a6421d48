"""Admin screens for event subscriptions: the endpoints, one endpoint's delivery log, its actions.

Plain forms (no JavaScript needed): every POST answers the page again, or redirects (303) after
an action. The signing secret is shown once, on the page that answers its creation or rotation.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.auth import requires_admin
from app.domains.subscriptions.models import EVENT_DESCRIPTIONS, DeliveryState, EventType
from app.domains.workspaces.services import Principal
from app.errors import AppError
from app.forms import errors_of, read_form, read_list
from app.runtime import Runtime

PAGE_SIZE = 50


class SubscriptionPages(Controller):
    path = "/admin/subscriptions"
    guards = [requires_admin]
    include_in_schema = False

    async def _index(self, runtime: Runtime, principal: Principal, *, status_code: int = 200,
                     **extra: Any) -> Template:
        context = {"active": "subscriptions", "subscriptions": await runtime.subscriptions.list(principal.workspace_id),
                   "event_types": list(EventType), "descriptions": EVENT_DESCRIPTIONS, "form": {"events": []},
                   "error": None, "field_errors": {}, **extra}
        return Template("admin/subscriptions.html", context=context, status_code=status_code)

    async def _show(self, runtime: Runtime, principal: Principal, subscription_id: str, *,
                    cursor: str | None = None, status_code: int = 200, **extra: Any) -> Template:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        page = await runtime.subscriptions.deliveries(subscription, limit=PAGE_SIZE, cursor=cursor)
        context = {"active": "subscriptions", "s": subscription, "deliveries": page.items,
                   "next_cursor": page.next_cursor, "event_types": list(EventType), "descriptions": EVENT_DESCRIPTIONS,
                   "states": DeliveryState, "secret": None, "notice": None, "error": None, "field_errors": {},
                   **extra}
        return Template("admin/subscriptions_show.html", context=context, status_code=status_code)

    @get("/")
    async def index(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        return await self._index(runtime, principal)

    @post("/")
    async def create(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        events = await read_list(request, "events")
        try:
            subscription, secret = await runtime.subscriptions.create(
                principal.workspace_id, form.get("url", ""), events, form.get("description", ""), principal.user_id)
        except AppError as error:
            return await self._index(runtime, principal, status_code=error.status_code, error=error,
                                     field_errors=errors_of(error), form={**form, "events": events})
        return await self._show(runtime, principal, str(subscription.id), status_code=201, secret=secret,
                                notice="Endpoint added. Copy its signing secret now: it is shown this once.")

    @get("/{subscription_id:str}")
    async def show(self, subscription_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal],
                   cursor: FromQuery[str | None] = None) -> Template:
        return await self._show(runtime, principal, subscription_id, cursor=cursor)

    @post("/{subscription_id:str}")
    async def update(self, subscription_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime],
                     principal: NamedDependency[Principal]) -> Template | Redirect:
        form, _ = await read_form(request)
        events = await read_list(request, "events")
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        try:
            await runtime.subscriptions.update(subscription, url=form.get("url", ""), events=events,
                                               description=form.get("description", ""))
        except AppError as error:
            return await self._show(runtime, principal, subscription_id, status_code=error.status_code,
                                    error=error, field_errors=errors_of(error))
        return Redirect(f"/admin/subscriptions/{subscription_id}", status_code=303)

    @post("/{subscription_id:str}/active")
    async def set_active(self, subscription_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime],
                         principal: NamedDependency[Principal]) -> Redirect:
        form, _ = await read_form(request)
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        await runtime.subscriptions.update(subscription, active=form.get("active") == "true")
        return Redirect(f"/admin/subscriptions/{subscription_id}", status_code=303)

    @post("/{subscription_id:str}/rotate")
    async def rotate(self, subscription_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        secret = await runtime.subscriptions.rotate_secret(subscription)
        return await self._show(runtime, principal, subscription_id, secret=secret,
                                notice="New signing secret. The old one stopped working; copy this one now.")

    @post("/{subscription_id:str}/test")
    async def send_test(self, subscription_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template | Redirect:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        try:
            await runtime.subscriptions.send_test(subscription)
        except AppError as error:
            return await self._show(runtime, principal, subscription_id, status_code=error.status_code, error=error)
        return Redirect(f"/admin/subscriptions/{subscription_id}", status_code=303)

    @post("/{subscription_id:str}/delete")
    async def remove(self, subscription_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Redirect:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        await runtime.subscriptions.delete(subscription)
        return Redirect("/admin/subscriptions", status_code=303)

    @post("/{subscription_id:str}/deliveries/{delivery_id:str}/redeliver")
    async def redeliver(self, subscription_id: FromPath[str], delivery_id: FromPath[str], runtime: NamedDependency[Runtime],
                        principal: NamedDependency[Principal]) -> Template | Redirect:
        subscription = await runtime.subscriptions.get(principal.workspace_id, subscription_id)
        delivery = await runtime.subscriptions.delivery(subscription, delivery_id)
        try:
            await runtime.subscriptions.redeliver(subscription, delivery)
        except AppError as error:
            return await self._show(runtime, principal, subscription_id, status_code=error.status_code, error=error)
        return Redirect(f"/admin/subscriptions/{subscription_id}", status_code=303)
