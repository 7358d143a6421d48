"""PayloadError and the small checks every outbound builder shares.

Each check names the offending part with a dotted path (``interactive.action.buttons[3].reply.title``)
so an API client or the composer can point at the exact field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class PayloadError(ValueError):
    """An outbound message body WhatsApp would reject; ``field`` is the dotted path at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.message))


def require_mapping(value: object, field: str) -> Mapping[str, Any]:
    """``value`` as an object, or PayloadError."""
    if not isinstance(value, Mapping):
        raise PayloadError(field, "must be an object")
    return value


def require_list(value: object, field: str, *, min_items: int = 0, max_items: int | None = None) -> Sequence[Any]:
    """``value`` as a list holding ``min_items``..``max_items`` items, or PayloadError."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise PayloadError(field, "must be a list")
    if len(value) < min_items:
        raise PayloadError(field, f"needs at least {min_items} item{'s' if min_items != 1 else ''}")
    if max_items is not None and len(value) > max_items:
        raise PayloadError(field, f"allows at most {max_items} items, got {len(value)}")
    return value


def require_text(value: object, field: str, *, max_length: int | None = None, allow_empty: bool = False) -> str:
    """``value`` as a string within ``max_length`` characters, or PayloadError.

    Blank strings count as empty: WhatsApp rejects a body made only of spaces.
    """
    if not isinstance(value, str):
        raise PayloadError(field, "is required and must be text")
    if not allow_empty and not value.strip():
        raise PayloadError(field, "must not be empty")
    if max_length is not None and len(value) > max_length:
        raise PayloadError(field, f"is {len(value)} characters; the limit is {max_length}")
    return value


def optional_text(container: Mapping[str, Any], key: str, field: str, *, max_length: int) -> str | None:
    """The optional text ``container[key]`` checked like :func:`require_text`, or None when absent."""
    if container.get(key) is None:
        return None
    return require_text(container[key], field, max_length=max_length)


def require_number(value: object, field: str, *, low: float, high: float) -> float:
    """``value`` as a number in [low, high]; bools and numeric strings are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(field, "must be a number")
    if not low <= value <= high:
        raise PayloadError(field, f"must be between {low:g} and {high:g}")
    return value


def require_link(value: object, field: str) -> str:
    """An absolute http(s) URL: WhatsApp fetches media links itself, so relative ones cannot work."""
    link = require_text(value, field)
    if not link.lower().startswith(("https://", "http://")):
        raise PayloadError(field, "must be an absolute http(s) URL")
    return link
