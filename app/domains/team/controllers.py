"""Admin pages for the team (users, invitations, teams) and API keys; the public invitation page."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.auth import requires_admin, requires_login, set_session_cookie
from app.domains.team.services import TeamAdmin, api_key_view, team_view, user_view
from app.domains.workspaces.services import Principal
from app.errors import AppError, ValidationFailed
from app.forms import is_htmx, read_form, read_list, render
from app.runtime import Runtime


def _admin(runtime: Runtime) -> TeamAdmin:
    return TeamAdmin(runtime.people, runtime.settings.public_url)


class TeamController(Controller):
    path = "/admin/team"
    guards = [requires_admin]
    include_in_schema = False

    async def _context(self, runtime: Runtime, principal: Principal, **extra: Any) -> dict[str, Any]:
        admin = _admin(runtime)
        users = await admin.list_users(principal.workspace_id)
        teams = await admin.list_teams(principal.workspace_id)
        names = {str(u.id): u.name or u.email for u in users}
        presence = {str(k): {"status": v.value.value, "label": v.label}
                    for k, v in (await runtime.presence.statuses(users)).items()}
        numbers = [{"id": str(a.id), "name": a.name} for a in await runtime.accounts.list(principal.workspace_id)]
        return {"active": "team", "users": [user_view(u) for u in users], "teams": [team_view(t) for t in teams],
                "names": names, "presence": presence, "numbers": numbers, "me": str(principal.user_id), "form": {"role": "agent", "mode": "invite"},
                "team_form": {}, "link": None, "notice": None, "field_errors": {}, "error": None, **extra}

    def _users(self, request: Request, context: dict[str, Any], error: AppError | None = None) -> Template:
        # After a change, htmx also refreshes the teams section (its member list) out of band.
        context = {**context, "oob_teams": error is None and is_htmx(request)}
        return render(request, "admin/team/index.html", "admin/team/_users.html", context, error=error)

    def _teams(self, request: Request, context: dict[str, Any], error: AppError | None = None) -> Template:
        return render(request, "admin/team/index.html", "admin/team/_teams.html", context, error=error)

    @get("/")
    async def index(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        return Template("admin/team/index.html", context=await self._context(runtime, principal))

    @post("/users", status_code=200)
    async def add_user(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        password = form.get("password", "") if form.get("mode") == "password" else None
        try:
            if password == "":
                raise ValidationFailed("Check the highlighted fields.", details={
                    "password": "Enter a password, or choose to send an invitation link."})
            user, link = await _admin(runtime).add_user(principal.workspace_id, form.get("email", ""),
                                                        form.get("name", ""), form.get("role", ""), password)
        except AppError as error:
            shown = {k: v for k, v in form.items() if k != "password"}
            return self._users(request, await self._context(runtime, principal, form=shown), error)
        notice = f"{user.name} ({user.email}) can sign in now." if link is None else \
            f"Invitation for {user.email}: send them this link (valid 7 days, shown once)."
        return self._users(request, await self._context(runtime, principal, notice=notice, link=link))

    async def _update(self, request: Request, runtime: Runtime, principal: Principal, user_id: str,
                      **changes: Any) -> Template:
        admin = _admin(runtime)
        user = await admin.get_user(principal.workspace_id, user_id)
        try:
            await admin.update_user(principal, user, **changes)
        except AppError as error:
            return self._users(request, await self._context(runtime, principal), error)
        return self._users(request, await self._context(runtime, principal, notice=f"Saved {user.name}."))

    @post("/users/{user_id:str}", status_code=200)
    async def update_user(self, user_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        return await self._update(request, runtime, principal, user_id, name=form.get("name"), role=form.get("role"))

    @post("/users/{user_id:str}/access", status_code=200)
    async def set_access(self, user_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        """Which numbers' conversations an agent sees: all, or those ticked (plus their teams' and their own)."""
        form, _ = await read_form(request)
        return await self._update(request, runtime, principal, user_id, all_numbers=form.get("numbers") != "chosen",
                                  number_ids=await read_list(request, "number_ids"))

    @post("/users/{user_id:str}/active", status_code=200)
    async def set_active(self, user_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        return await self._update(request, runtime, principal, user_id, active=form.get("active") == "true")

    @post("/users/{user_id:str}/reset", status_code=200)
    async def reset(self, user_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        admin = _admin(runtime)
        user = await admin.get_user(principal.workspace_id, user_id)
        try:
            link = await admin.reset_link(user)
        except AppError as error:
            return self._users(request, await self._context(runtime, principal), error)
        notice = f"Password reset link for {user.email}: send it to them (valid 24 hours, shown once)."
        return self._users(request, await self._context(runtime, principal, notice=notice, link=link))

    @post("/teams", status_code=200)
    async def add_team(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        members = await read_list(request, "member_ids")
        try:
            await _admin(runtime).save_team(principal.workspace_id, form.get("name", ""), members)
        except AppError as error:
            context = await self._context(runtime, principal, team_form={"name": form.get("name", ""),
                                                                         "member_ids": members})
            return self._teams(request, context, error)
        return self._teams(request, await self._context(runtime, principal))

    @post("/teams/{team_id:str}", status_code=200)
    async def update_team(self, team_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        admin = _admin(runtime)
        team = await admin.get_team(principal.workspace_id, team_id)
        try:
            await admin.save_team(principal.workspace_id, form.get("name", ""), await read_list(request, "member_ids"),
                                  team)
        except AppError as error:
            return self._teams(request, await self._context(runtime, principal), error)
        return self._teams(request, await self._context(runtime, principal))

    @post("/teams/{team_id:str}/delete", status_code=200)
    async def delete_team(self, team_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        admin = _admin(runtime)
        await admin.delete_team(await admin.get_team(principal.workspace_id, team_id))
        return self._teams(request, await self._context(runtime, principal))


class ApiKeysController(Controller):
    path = "/admin/api-keys"
    guards = [requires_admin]
    include_in_schema = False

    async def _context(self, runtime: Runtime, principal: Principal, **extra: Any) -> dict[str, Any]:
        keys = await _admin(runtime).list_api_keys(principal.workspace_id)
        users = {str(u.id): u.name or u.email for u in await _admin(runtime).list_users(principal.workspace_id)}
        return {"active": "api-keys", "keys": [api_key_view(k) for k in keys], "users": users,
                "form": {"role": "agent"}, "new_key": None, "field_errors": {}, "error": None, **extra}

    @get("/")
    async def index(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        return Template("admin/api_keys/index.html", context=await self._context(runtime, principal))

    @post("/", status_code=200)
    async def create(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        try:
            record, plaintext = await _admin(runtime).create_api_key(principal, form.get("name", ""),
                                                                     form.get("role", ""))
        except AppError as error:
            return render(request, "admin/api_keys/index.html", "admin/api_keys/_keys.html",
                          await self._context(runtime, principal, form=form), error=error)
        context = await self._context(runtime, principal, new_key={"name": record.name, "key": plaintext})
        return render(request, "admin/api_keys/index.html", "admin/api_keys/_keys.html", context)

    @post("/{key_id:str}/revoke", status_code=200)
    async def revoke(self, key_id: FromPath[str], request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        await _admin(runtime).revoke_api_key(principal.workspace_id, key_id)
        return render(request, "admin/api_keys/index.html", "admin/api_keys/_keys.html",
                      await self._context(runtime, principal))


class InvitationController(Controller):
    """The page behind an invitation or password-reset link: choose a password, get signed in."""

    path = "/invite"
    include_in_schema = False

    @get("/{token:str}")
    async def show(self, token: FromPath[str], runtime: NamedDependency[Runtime]) -> Template:
        valid = await _admin(runtime).invitation(token)
        if valid is None:
            error = AppError("This link has expired or was already used. Ask an admin for a new one.",
                             error_code="LINK_INVALID", status_code=404)
            return Template("errors/error.html", context={"error": error}, status_code=404)
        invitation, user = valid
        return Template("team/invite.html", context={"user": user, "purpose": invitation.purpose, "token": token})

    @post("/{token:str}", status_code=200)
    async def accept(self, token: FromPath[str], request: Request, runtime: NamedDependency[Runtime]) -> Template | Redirect:
        form, _ = await read_form(request)
        admin = _admin(runtime)
        valid = await admin.invitation(token)
        password = form.get("password", "")
        error: AppError | None = None
        if valid is not None and password != form.get("password_again", ""):
            error = AppError("The two passwords differ.", error_code="VALIDATION_ERROR", status_code=422,
                             details={"password_again": "Type the same password twice."})
        else:
            try:
                user = await admin.accept_invitation(token, password)
            except AppError as caught:
                error = caught
        if error is not None:
            if valid is None:
                return Template("errors/error.html", context={"error": error}, status_code=error.status_code)
            return Template("team/invite.html", status_code=error.status_code, context={
                "user": valid[1], "purpose": valid[0].purpose, "token": token, "error": error,
                "field_errors": error.details})
        return set_session_cookie(Redirect("/inbox", status_code=303), await runtime.people.open_session(user),
                                  runtime.settings)


class ProfileController(Controller):
    """Every user's own page: their name and password."""

    path = "/profile"
    guards = [requires_login]
    include_in_schema = False

    @get("/")
    async def show(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        user = await _admin(runtime).get_user(principal.workspace_id, str(principal.user_id))
        return Template("team/profile.html", context={"active": "profile", "user": user_view(user), "form": {},
                                                      "notice": None, "error": None, "field_errors": {}})

    @post("/", status_code=200)
    async def save(self, request: Request, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> Template:
        form, _ = await read_form(request)
        admin = _admin(runtime)
        user = await admin.get_user(principal.workspace_id, str(principal.user_id))
        context: dict[str, Any] = {"active": "profile", "form": {"name": form.get("name", "")}, "notice": None,
                                   "error": None, "field_errors": {}}
        try:
            changed = await admin.update_own_profile(
                user, name=form.get("name"), current_password=form.get("current_password", ""),
                new_password=form.get("password", ""), again=form.get("password_again", ""))
        except AppError as error:
            return Template("team/profile.html", status_code=error.status_code, context={
                **context, "user": user_view(user), "error": error, "field_errors": error.details or {}})
        notice = "Saved. Your other devices are signed out." if changed else "Saved."
        response = Template("team/profile.html", context={**context, "user": user_view(user), "form": {},
                                                          "notice": notice})
        if changed:  # this device stays signed in, with a new session
            set_session_cookie(response, await runtime.people.open_session(user), runtime.settings)
        return response
