"""Sign-in, sign-out and sign-up pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from app.auth import SESSION_COOKIE, set_session_cookie
from app.errors import AppError
from app.runtime import Runtime


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so /login?next= cannot bounce users to another site."""
    if not target:
        return "/inbox"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/inbox"
    return target


def _signed_in(runtime: Runtime, token: str, target: str) -> Redirect:
    return set_session_cookie(Redirect(target, status_code=303), token, runtime.settings)


def _form_error(template: str, error: AppError, form: dict[str, Any]) -> Template:
    return Template(template, context={"error": error, "form": form}, status_code=error.status_code, headers=error.headers)


class AuthController(Controller):
    """The pages a browser uses to get a session."""

    @get("/login")
    async def login_page(self, request: Request, next: FromQuery[str | None] = None) -> Template | Redirect:
        if request.user:
            return Redirect(_safe_next(next))
        return Template("auth/login.html", context={"form": {"next": next or ""}})

    @post("/login")
    async def login(self, request: Request, runtime: NamedDependency[Runtime]) -> Template | Redirect:
        form = dict(await request.form())
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        try:
            _, token = await runtime.people.sign_in(email, password, request.client.host if request.client else "unknown")
        except AppError as error:
            return _form_error("auth/login.html", error, {"email": email, "next": form.get("next", "")})
        return _signed_in(runtime, token, _safe_next(str(form.get("next") or "")))

    @post("/logout")
    async def logout(self, request: Request, runtime: NamedDependency[Runtime]) -> Redirect:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await runtime.people.close_session(token)
        response = Redirect("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @get("/signup")
    async def signup_page(self, runtime: NamedDependency[Runtime]) -> Template:
        if not runtime.settings.allow_signup:
            return Template("errors/error.html", status_code=404,
                            context={"error": AppError("Sign-up is closed on this server. Ask an admin for an account.",
                                                       error_code="SIGNUP_DISABLED", status_code=404)})
        return Template("auth/signup.html", context={"form": {}})

    @post("/signup")
    async def signup(self, request: Request, runtime: NamedDependency[Runtime]) -> Template | Redirect:
        if not runtime.settings.allow_signup:
            return await self.signup_page.fn(self, runtime)  # same 404 page as GET
        form = dict(await request.form())
        fields = {k: str(form.get(k, "")) for k in ("workspace", "name", "email", "password")}
        try:
            _, user = await runtime.people.create_workspace(fields["workspace"], fields["email"], fields["password"], fields["name"])
        except AppError as error:
            return _form_error("auth/signup.html", error, fields)
        return _signed_in(runtime, await runtime.people.open_session(user), "/inbox")
