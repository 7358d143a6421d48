"""Who is calling: session cookie for pages, Bearer API key for /api. Middleware plus guards."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from app.domains.audit.services import Actor, acting
from app.domains.workspaces.models import Role
from app.domains.workspaces.services import Principal
from app.errors import Forbidden, Unauthorized

SESSION_COOKIE = "inbox_session"


def set_session_cookie(response: Any, token: str, settings: Any) -> Any:
    """The one way a browser gets its session: sign-in, an accepted invitation, a changed password."""
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=settings.secure_cookies,
                        max_age=settings.session_max_age_hours * 3600, path="/")
    return response
API_PREFIX = "/api/"
MEDIA_PREFIX = "/media/"
KEYED_PREFIXES = (API_PREFIX, MEDIA_PREFIX)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name and v:
                    return v
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def auth_middleware(app: ASGIApp) -> ASGIApp:
    """Resolves the Principal once per request into ``scope["user"]``; never rejects by itself."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["user"] = None
            scope["auth"] = None
            runtime = scope["litestar_app"].state.runtime
            path = scope["path"]
            header = _header(scope, b"authorization") if path.startswith(KEYED_PREFIXES) else None
            if path.startswith(API_PREFIX) or header is not None:
                # /api/ takes only keys; /media/ takes a key (integrators download what the API lists) or the cookie.
                if header is not None:
                    scheme, _, key = header.partition(" ")
                    if scheme.lower() != "bearer" or not key.strip() or " " in key.strip():
                        scope["auth"] = "malformed"
                    else:
                        scope["user"] = await runtime.people.principal_for_api_key(key.strip())
                        scope["auth"] = "ok" if scope["user"] else "invalid"
            else:
                token = _cookie(scope, SESSION_COOKIE)
                if token:
                    scope["user"] = await runtime.people.principal_for_session(token)
            who = scope["user"]
            if isinstance(who, Principal):  # what this request changes is recorded as theirs (app/domains/audit)
                client = scope.get("client")
                with acting(Actor(who.who, who.user_id, who.api_key.id if who.api_key else None,
                                  client[0] if client else None)):
                    await app(scope, receive, send)
                return
        await app(scope, receive, send)

    return middleware


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if isinstance(user, Principal):
        return user
    reason = connection.scope.get("auth")
    if reason == "malformed":
        raise Unauthorized("The Authorization header must be 'Bearer <api key>'.", error_code="INVALID_AUTH_HEADER")
    if reason == "invalid":
        raise Unauthorized("This API key is invalid or revoked.", error_code="INVALID_API_KEY")
    raise Unauthorized("Sign in first." if not connection.scope["path"].startswith(API_PREFIX)
                       else "An API key is required: 'Authorization: Bearer <api key>'.",
                       error_code="AUTH_REQUIRED")


def requires_login(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: any signed-in user or valid API key."""
    principal(connection)


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: admins only (agents get 403)."""
    if principal(connection).role is not Role.ADMIN:
        raise Forbidden("Only admins can do this.", error_code="ADMIN_REQUIRED")


async def provide_principal(request: ASGIConnection) -> Principal:
    """Dependency: the Principal of a guarded route."""
    return principal(request)
