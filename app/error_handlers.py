"""One mapping from any exception to an answer: JSON under /api, an HTML page (or HTMX redirect) elsewhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.db import DATABASE_DOWN, database_unavailable
from app.errors import AppError
from app.logging import get_logger

log = get_logger(__name__)

_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


def _as_app_error(request: Request, exc: Exception) -> AppError:
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, DATABASE_DOWN):  # an outage, not a bug: no stack trace, and a 503 clients retry
        log.warning("database unavailable", path=request.url.path, method=request.method, error=type(exc).__name__)
        return database_unavailable()
    if isinstance(exc, ValidationException):
        extra = exc.extra if isinstance(exc.extra, list) else []
        details = {"fields": [{"field": e.get("key"), "message": e.get("message")} for e in extra if isinstance(e, dict)]}
        return AppError("The request body or parameters are invalid.", error_code="VALIDATION_ERROR",
                        details=details, status_code=422 if request.method in ("POST", "PUT", "PATCH") else 400)
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        return AppError("This form has expired. Reload the page and try again.", error_code="CSRF_FAILED", status_code=403)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        message = exc.detail if status < 500 else "Something went wrong on our side."
        if status == 404 and message == "Not Found":
            message = "No such page or resource."
        return AppError(message, error_code=_CODES.get(status, "HTTP_ERROR"), status_code=status,
                        headers=dict(exc.headers or {}))
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return AppError("Something went wrong on our side. It has been logged.", status_code=HTTP_500_INTERNAL_SERVER_ERROR)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/health", "/webhooks/", "/media/")):
        return True
    return "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get("accept", "")


def _return_to(request: Request) -> str:
    """Where sign-in sends the user back: the page they were on (a form posted from it, or an HTMX
    request, names it), never the URL of a POST, which a GET after sign-in would answer 405."""
    if request.method == "GET" and not request.headers.get("hx-request"):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    for header in ("hx-current-url", "referer"):
        value = request.headers.get(header)
        if value:
            parts = urlsplit(value)
            if parts.netloc in ("", request.headers.get("host", "")) and parts.path.startswith("/"):
                return parts.path + (f"?{parts.query}" if parts.query else "")
    return "/inbox"


def handle_exception(request: Request, exc: Exception) -> Response[Any]:
    error = _as_app_error(request, exc)
    if error.status_code >= 500 and not isinstance(exc, AppError | HTTPException):
        pass  # already logged with its stack trace
    elif error.status_code >= 500:
        log.error("server error", path=request.url.path, error_code=error.error_code)
    if _wants_json(request):
        return Response(error.to_dict(), status_code=error.status_code, media_type=MediaType.JSON, headers=error.headers)
    if error.status_code == 401 or isinstance(exc, NotAuthorizedException):
        target = "/login?next=" + quote(_return_to(request), safe="/?=&")
        if request.headers.get("hx-request"):
            # The tab says so and keeps what was typed (inbox.js keeps drafts): no redirect mid-typing.
            return Response('<p class="error-message" data-error-code="SESSION_ENDED">Your session has ended: '
                            'sign in again to continue. What you typed is kept.</p>', status_code=401,
                            media_type=MediaType.HTML, headers={"X-Sign-In": target})
        return Redirect(target)
    return Template("errors/error.html", context={"error": error}, status_code=error.status_code, headers=error.headers)
