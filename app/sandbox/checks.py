"""Small field checks shared by the sandbox's body validators.

Each raises ``GraphError`` in Meta's wording: ``(#100) The parameter x is required.``,
``(#100) Param x must be a string.``, ``(#100) Unexpected key "k" on param "x".``, and
131009 (value not valid) for values outside WhatsApp's limits.
"""

from __future__ import annotations

from typing import Any

from app.sandbox.errors import GraphError, invalid_param


def value_invalid(details: str) -> GraphError:
    """131009: the value is well-formed but outside what WhatsApp accepts."""
    return GraphError(131009, details)


def require_obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_param(f"Param {path} must be a JSON object.",
                            message=f"(#100) Param {path} must be a JSON object.")
    return value


def require_keys(obj: dict[str, Any], allowed: frozenset[str] | set[str], path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise invalid_param(f'Unexpected key "{key}" on param "{path}".',
                                message=f'(#100) Unexpected key "{key}" on param "{path}".')


def get_str(obj: dict[str, Any], key: str, path: str, *, required: bool = True,
            max_len: int | None = None, min_len: int = 0, length_code: int = 100) -> str | None:
    """A string field; too long answers ``length_code`` (100 for text bodies, 131009 for labels)."""
    field = f"{path}['{key}']" if path else key
    value = obj.get(key)
    if value is None:
        if required:
            raise invalid_param(f"The parameter {field} is required.",
                                message=f"(#100) The parameter {field} is required.")
        return None
    if not isinstance(value, str):
        raise invalid_param(f"Param {field} must be a string.",
                            message=f"(#100) Param {field} must be a string.")
    if max_len is not None and len(value) > max_len:
        detail = f"Param {field} must be at most {max_len} characters long."
        if length_code == 100:
            raise invalid_param(detail, message=f"(#100) {detail}")
        raise value_invalid(detail)
    if len(value) < min_len:
        if min_len == 1 and length_code == 100:
            raise invalid_param(f"Param {field} must be non-empty.",
                                message=f"(#100) Param {field} must be non-empty.")
        raise value_invalid(f"Param {field} must be at least {min_len} characters long.")
    return value


def get_list(obj: dict[str, Any], key: str, path: str, *, required: bool = True) -> list[Any] | None:
    field = f"{path}['{key}']" if path else key
    value = obj.get(key)
    if value is None:
        if required:
            raise invalid_param(f"The parameter {field} is required.",
                                message=f"(#100) The parameter {field} is required.")
        return None
    if not isinstance(value, list):
        raise invalid_param(f"Param {field} must be an array.",
                            message=f"(#100) Param {field} must be an array.")
    return value
