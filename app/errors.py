"""Application errors and the one mapping to an HTTP answer (JSON under /api, HTML elsewhere)."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error with a status, a stable ``error_code`` and a message a user can act on."""

    status_code = 500
    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, error_code: str | None = None, details: dict[str, Any] | None = None,
                 status_code: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
        if error_code:
            self.error_code = error_code
        if status_code:
            self.status_code = status_code

    def to_dict(self) -> dict[str, Any]:
        return error_body(self.message, self.error_code, self.details)


class ClientError(AppError):
    """The request cannot be served as sent (4xx)."""

    status_code = 400
    error_code = "BAD_REQUEST"


class ValidationFailed(ClientError):
    status_code = 422
    error_code = "VALIDATION_ERROR"


class Unauthorized(ClientError):
    status_code = 401
    error_code = "UNAUTHORIZED"


class Forbidden(ClientError):
    status_code = 403
    error_code = "FORBIDDEN"


class NotFound(ClientError):
    status_code = 404
    error_code = "NOT_FOUND"


class Conflict(ClientError):
    status_code = 409
    error_code = "CONFLICT"


class Gone(ClientError):
    status_code = 410
    error_code = "GONE"


class PayloadTooLarge(ClientError):
    status_code = 413
    error_code = "PAYLOAD_TOO_LARGE"


class TooManyRequests(ClientError):
    status_code = 429
    error_code = "RATE_LIMITED"


class IntegrationError(AppError):
    """A system we depend on (Meta, a subscriber endpoint) failed; shown to users in words."""

    status_code = 502
    error_code = "UPSTREAM_ERROR"


def error_body(message: str, error_code: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one shape of every error answer: ``success: false`` first (what integrators of the original
    API branch on), the words, the stable code, the fields or values involved."""
    return {"success": False, "error": message, "error_code": error_code, "details": details or {}}
