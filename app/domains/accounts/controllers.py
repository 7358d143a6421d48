"""Admin pages for WhatsApp numbers: list and add, connect to Meta, test, edit, rotate, profile.

Also Meta's news about them: the number page's "WhatsApp notices" (restrictions, bans, alerts, limit
and quality changes, app/domains/notifications/), the banner and "Resume sending" when Meta stopped
its sends (368 / 131031), and the admins' badge in the top navigation (``/admin/numbers/notices``,
loaded by base.html) with "Mark as seen"."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from app.auth import requires_admin
from app.domains.accounts.api import PHOTO_UPLOAD_LIMIT
from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.profile import VERTICALS, BusinessProfiles, ProfileChanges
from app.domains.accounts.services import AccountChanges, NewAccount
from app.domains.notifications.notices import notices_of
from app.domains.notifications.services import Notices
from app.domains.workspaces.services import Principal
from app.errors import AppError, Conflict
from app.forms import go_to, is_htmx, read_form, render
from app.runtime import Runtime

NEW_FIELDS = ("name", "phone_number_id", "waba_id", "display_phone_number", "access_token", "app_secret", "mps")


def _int_or_text(value: str | None) -> Any:
    """Keep what the admin typed when it is not a number, so validation can say so."""
    if value is None or value == "":
        return None
    return int(value) if value.isdigit() else value


class NumbersController(Controller):
    path = "/admin/numbers"
    guards = [requires_admin]
    include_in_schema = False

    async def _page(self, runtime: Runtime, principal: Principal, account_id: str, **extra: Any) -> dict[str, Any]:
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        problems = await runtime.webhooks.problems(principal.workspace_id, account.id)
        return {"active": "numbers", "n": runtime.accounts.view(account), "webhook_problems": problems,
                "graph_api_url": runtime.accounts.graph_api_url,
                "api_version": runtime.accounts.graph_api_version, "test": None, "saved": None,
                **self._news(account), **extra}

    @staticmethod
    def _news(account: WhatsAppAccount) -> dict[str, Any]:
        """Meta's notices about the number (newest first) and whether Meta stopped its sends."""
        notices = notices_of(account.health.account_events)
        return {"notices": notices, "unseen_notices": sum(1 for x in notices if x.unseen),
                "sending_stopped": account.health.sending_stopped, "resumed": None}

    # -- the admins' WhatsApp notices (top navigation) ------------------------------------------------

    @get("/notices")
    async def notice_badge(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        """The badge in the top navigation (base.html loads it on every page, then every 2 minutes)."""
        return Template("admin/numbers/_notice_badge.html",
                        context={"badge": await Notices().badge(principal.workspace_id)})

    @post("/notices/seen", status_code=200)
    async def notices_seen(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Any:
        await Notices().mark_seen(principal.workspace_id, principal.user_id)
        if not is_htmx(request):
            return go_to(request, "/admin/numbers")
        return Template("admin/numbers/_notice_badge.html",
                        context={"badge": await Notices().badge(principal.workspace_id)})

    @post("/{account_id:str}/notices/seen", status_code=200)
    async def number_notices_seen(self, account_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime],
                                  principal: NamedDependency[Principal]) -> Template:
        """This number's notices (and the same WABA-wide events on its sibling numbers) are seen."""
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        await Notices().mark_seen(principal.workspace_id, principal.user_id, account)
        context = await self._page(runtime, principal, account_id, oob_badge=True,
                                   badge=await Notices().badge(principal.workspace_id))
        return render(request, "admin/numbers/show.html", "admin/numbers/_notices.html", context)

    @post("/{account_id:str}/resume", status_code=200)
    async def resume_sending(self, account_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime],
                             principal: NamedDependency[Principal]) -> Template:
        """Meta stopped the number's sends (368 / 131031) and the admin dealt with it: its held sends go."""
        try:
            await runtime.accounts.resume_sending(principal.workspace_id, account_id)
            resumed = "now"
        except Conflict:  # resumed meanwhile (another admin, a second click): nothing is held any more
            resumed = "already"
        context = await self._page(runtime, principal, account_id, oob_badge=True,
                                   badge=await Notices().badge(principal.workspace_id))
        context["resumed"] = resumed
        return render(request, "admin/numbers/show.html", "admin/numbers/_sending_stopped.html", context)

    @get("/")
    async def index(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        accounts = await runtime.accounts.list(principal.workspace_id)
        return Template("admin/numbers/index.html", context={
            "active": "numbers", "numbers": [runtime.accounts.view(a) for a in accounts], "form": {"mps": "80"},
            "sandbox": runtime.accounts.uses_sandbox, "field_errors": {}})

    @post("/", status_code=200)
    async def create(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Any:
        form, _ = await read_form(request)
        values = {k: form.get(k, "") for k in NEW_FIELDS}
        try:
            account = await runtime.accounts.create(principal.workspace_id, NewAccount(
                **{**values, "mps": _int_or_text(values["mps"]) or 80}))
        except AppError as error:
            accounts = await runtime.accounts.list(principal.workspace_id)
            # Secrets are never echoed back into the page, even after a failed attempt.
            shown = {k: v for k, v in values.items() if k not in ("access_token", "app_secret")}
            return render(request, "admin/numbers/index.html", "admin/numbers/_add_form.html", {
                "active": "numbers", "numbers": [runtime.accounts.view(a) for a in accounts], "form": shown,
                "sandbox": runtime.accounts.uses_sandbox}, error=error)
        return go_to(request, f"/admin/numbers/{account.id}")

    @get("/{account_id:str}")
    async def show(self, account_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        return Template("admin/numbers/show.html", context=await self._page(runtime, principal, account_id))

    @post("/{account_id:str}", status_code=200)
    async def edit(self, account_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        changes = AccountChanges(name=form.get("name"), waba_id=form.get("waba_id"),
                                 display_phone_number=form.get("display_phone_number"),
                                 mps=_int_or_text(form.get("mps")))
        try:
            await runtime.accounts.update(account, changes)
        except AppError as error:
            context = await self._page(runtime, principal, account_id, form=form)
            return render(request, "admin/numbers/show.html", "admin/numbers/_edit_form.html", context, error=error)
        context = await self._page(runtime, principal, account_id, saved="details")
        return render(request, "admin/numbers/show.html", "admin/numbers/_edit_form.html", context)

    @post("/{account_id:str}/secrets", status_code=200)
    async def rotate(self, account_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        changes = AccountChanges(access_token=form.get("access_token") or None,
                                 app_secret=form.get("app_secret") or None)
        error: AppError | None = None
        if changes.is_empty():
            error = AppError("Enter a new access token or app secret.", error_code="VALIDATION_ERROR",
                             status_code=422, details={"access_token": "Enter a new value to replace the saved one."})
        else:
            try:
                await runtime.accounts.update(account, changes)
            except AppError as caught:
                error = caught
        context = await self._page(runtime, principal, account_id, saved=None if error else "secrets")
        return render(request, "admin/numbers/show.html", "admin/numbers/_secrets_form.html", context, error=error)

    @post("/{account_id:str}/enabled", status_code=200)
    async def set_enabled(self, account_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        await runtime.accounts.set_enabled(account, form.get("enabled") == "true")
        context = await self._page(runtime, principal, account_id)
        return render(request, "admin/numbers/show.html", "admin/numbers/_status.html", context)

    @post("/{account_id:str}/test", status_code=200)
    async def test(self, account_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        result = await runtime.accounts.test_connection(account)
        # htmx swaps the result; the health panel it changed follows out of band.
        context = await self._page(runtime, principal, account_id, test=result.to_dict(), oob_health=is_htmx(request))
        return render(request, "admin/numbers/show.html", "admin/numbers/_test_result.html", context)

    @post("/{account_id:str}/delete", status_code=200)
    async def delete(self, account_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Any:
        await runtime.accounts.delete(await runtime.accounts.get(principal.workspace_id, account_id))
        return go_to(request, "/admin/numbers")

    # -- business profile -------------------------------------------------------------------------

    @get("/{account_id:str}/profile")
    async def profile(self, account_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        profile, error = {}, None
        try:
            profile = await BusinessProfiles(runtime.accounts).get(account)
        except AppError as caught:
            error = caught
        return Template("admin/numbers/profile.html", context={
            "active": "numbers", "n": runtime.accounts.view(account), "profile": profile, "verticals": VERTICALS,
            "error": error, "field_errors": {}, "saved": False, "loaded": error is None})

    @post("/{account_id:str}/profile", status_code=200, request_max_body_size=PHOTO_UPLOAD_LIMIT)
    async def save_profile(self, account_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime],
                           principal: NamedDependency[Principal]) -> Template:
        form, files = await read_form(request)
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        changes = ProfileChanges(
            about=form.get("about"), address=form.get("address"), description=form.get("description"),
            email=form.get("email"), vertical=form.get("vertical") or None,
            websites=[form.get("website_1", ""), form.get("website_2", "")])
        upload: UploadFile | None = files.get("photo")
        photo = None
        if upload is not None and upload.filename:
            photo = (await upload.read(), upload.filename)
        context = {"active": "numbers", "n": runtime.accounts.view(account), "verticals": VERTICALS, "loaded": True}
        try:
            profile = await BusinessProfiles(runtime.accounts).update(account, changes, photo)
        except AppError as error:
            submitted = {**form, "websites": [form.get("website_1", ""), form.get("website_2", "")]}
            return render(request, "admin/numbers/profile.html", "admin/numbers/_profile_form.html",
                          {**context, "profile": submitted, "saved": False}, error=error)
        return render(request, "admin/numbers/profile.html", "admin/numbers/_profile_form.html",
                      {**context, "profile": profile, "saved": True})
