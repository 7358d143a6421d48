"""Message templates: creation rules, the send-time checks (132001 / 132000) and paging.

Creation follows WHATSAPP.md: categories MARKETING / UTILITY / AUTHENTICATION; header TEXT
(<= 60, one variable) or IMAGE / VIDEO / DOCUMENT / LOCATION; one BODY (<= 1024); footer
(<= 60, no variables); at most 10 buttons.  Placeholders are ``{{1}}``.. (POSITIONAL) or
``{{snake_name}}`` (NAMED); a variable may not start or end the body, and examples are
required when variables are present (Meta rejects the template otherwise).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from app.sandbox.checks import get_list, get_str, require_keys, require_obj, value_invalid
from app.sandbox.errors import GraphError, invalid_param

CATEGORIES = frozenset({"MARKETING", "UTILITY", "AUTHENTICATION"})
STATUSES = frozenset({"APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "IN_APPEAL",
                      "FLAGGED", "REINSTATED", "PENDING_DELETION", "DELETED", "LIMIT_EXCEEDED"})
_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_CREATE_KEYS = frozenset({"name", "language", "category", "components", "parameter_format",
                          "allow_category_change", "message_send_ttl_seconds", "sub_category",
                          "cta_url_link_tracking_opted_out", "library_template_name",
                          "library_template_button_inputs", "messaging_product"})
_MEDIA_HEADERS = frozenset({"IMAGE", "VIDEO", "DOCUMENT"})


@dataclass
class Template:
    """One template in one language, as stored under its WABA."""

    id: str
    waba_id: str
    name: str
    language: str
    category: str
    components: list[dict[str, Any]]
    status: str = "PENDING"
    parameter_format: str = "POSITIONAL"
    reason: str | None = None
    header_format: str | None = None
    header_vars: list[str] = field(default_factory=list)
    body_vars: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The object ``GET /{waba_id}/message_templates`` lists."""
        out: dict[str, Any] = {
            "name": self.name,
            "parameter_format": self.parameter_format,
            "components": self.components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
        }
        if self.status == "REJECTED":
            out["rejected_reason"] = self.reason or "NONE"
        return out


def placeholders(text: str) -> list[str]:
    """The variable names in ``text``, in order: ``Hi {{1}}`` -> ``["1"]``."""
    return _PLACEHOLDER.findall(text)


def build_template(body: Any, *, template_id: str, waba_id: str, require_examples: bool = True,
                   status: str = "PENDING") -> Template:
    """Validate a create body (Meta's rules) and return the new ``Template``."""
    body = require_obj(body, "root")
    require_keys(body, _CREATE_KEYS, "root")
    name = get_str(body, "name", "", min_len=1)
    assert name is not None
    if not _NAME.match(name):
        raise invalid_param("Param name may only contain lowercase letters, numbers and underscores (max 512).",
                            message="(#100) Invalid parameter")
    language = get_str(body, "language", "", min_len=1)
    category = (get_str(body, "category", "", min_len=1) or "").upper()
    if category not in CATEGORIES:
        raise invalid_param(f"Param category must be one of {', '.join(sorted(CATEGORIES))}.")
    fmt = (get_str(body, "parameter_format", "", required=False) or "POSITIONAL").upper()
    if fmt not in {"POSITIONAL", "NAMED"}:
        raise invalid_param("Param parameter_format must be POSITIONAL or NAMED.")
    components = get_list(body, "components", "") or []
    template = Template(id=template_id, waba_id=waba_id, name=name, language=language or "",
                        category=category, components=components, status=status, parameter_format=fmt)
    _check_components(template, require_examples)
    return template


def _check_vars(names: list[str], fmt: str, where: str) -> None:
    if fmt == "POSITIONAL":
        if names != [str(i) for i in range(1, len(names) + 1)]:
            raise invalid_param(f"{where}: positional variables must be {{{{1}}}}, {{{{2}}}}, ... in order.")
    elif any(not re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names) or len(set(names)) != len(names):
        raise invalid_param(f"{where}: named variables must be unique lowercase snake_case names.")


def _check_components(t: Template, require_examples: bool) -> None:
    seen: set[str] = set()
    for i, comp in enumerate(t.components):
        path = f"components[{i}]"
        comp = require_obj(comp, path)
        ctype = (get_str(comp, "type", path) or "").upper()
        if ctype not in {"HEADER", "BODY", "FOOTER", "BUTTONS"}:
            raise invalid_param(f"Param {path}['type'] must be HEADER, BODY, FOOTER or BUTTONS.")
        if ctype in seen:
            raise invalid_param(f"Param {path}: only one {ctype} component is allowed.")
        seen.add(ctype)
        example = comp.get("example") or {}
        if ctype == "HEADER":
            fmt = (get_str(comp, "format", path) or "").upper()
            t.header_format = fmt
            if fmt == "TEXT":
                text = get_str(comp, "text", path, max_len=60, min_len=1, length_code=131009) or ""
                t.header_vars = placeholders(text)
                if len(t.header_vars) > 1:
                    raise value_invalid(f"Param {path}['text'] may contain at most 1 variable.")
                _check_vars(t.header_vars, t.parameter_format, f"{path}['text']")
                if t.header_vars and require_examples and not (
                        example.get("header_text") or example.get("header_text_named_params")):
                    raise invalid_param(f"Param {path}['example'] is required when the header has a variable.")
            elif fmt in _MEDIA_HEADERS:
                if require_examples and not example.get("header_handle"):
                    raise invalid_param(f"Param {path}['example']['header_handle'] is required for {fmt} headers.")
            elif fmt != "LOCATION":
                raise invalid_param(f"Param {path}['format'] must be TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION.")
        elif ctype == "BODY":
            text = get_str(comp, "text", path, required=t.category != "AUTHENTICATION",
                           max_len=1024, min_len=1, length_code=131009) or ""
            t.body_vars = placeholders(text)
            _check_vars(t.body_vars, t.parameter_format, f"{path}['text']")
            stripped = text.strip()
            if t.body_vars and (stripped.startswith("{{") or stripped.endswith("}}")):
                raise invalid_param(f"Param {path}['text']: variables can't be at the start or end of the template.")
            if re.search(r"\}\}\s*\{\{", text):
                raise invalid_param(f"Param {path}['text']: variables can't be next to each other.")
            if t.body_vars and require_examples and not (
                    example.get("body_text") or example.get("body_text_named_params")):
                raise invalid_param(f"Param {path}['example'] is required when the body has variables.")
        elif ctype == "FOOTER":
            text = get_str(comp, "text", path, required=t.category != "AUTHENTICATION",
                           max_len=60, length_code=131009) or ""
            if placeholders(text):
                raise invalid_param(f"Param {path}['text']: the footer can't contain variables.")
        else:
            _check_buttons(comp, path)
    if "BODY" not in seen:
        raise invalid_param("Param components must contain a BODY component.")


def _check_buttons(comp: dict[str, Any], path: str) -> None:
    buttons = get_list(comp, "buttons", path) or []
    if not 1 <= len(buttons) <= 10:
        raise value_invalid(f"Param {path}['buttons'] must contain between 1 and 10 buttons.")
    limits = {"URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1, "QUICK_REPLY": 10}
    counts: dict[str, int] = {}
    for j, button in enumerate(buttons):
        bpath = f"{path}['buttons'][{j}]"
        button = require_obj(button, bpath)
        btype = (get_str(button, "type", bpath) or "").upper()
        counts[btype] = counts.get(btype, 0) + 1
        if counts[btype] > limits.get(btype, 10):
            raise value_invalid(f"Param {bpath}: at most {limits[btype]} {btype} buttons are allowed.")
        get_str(button, "text", bpath, required=btype not in {"OTP", "MPM", "CATALOG", "COPY_CODE"},
                max_len=25, min_len=1, length_code=131009)


def check_send_parameters(t: Template, components: list[dict[str, Any]]) -> None:
    """132000 when the header/body parameter counts (or names) differ from the template's."""
    given: dict[str, list[dict[str, Any]]] = {}
    for comp in components:
        if comp.get("type") in ("header", "body"):
            given.setdefault(comp["type"], []).extend(comp.get("parameters") or [])
    body_params = given.get("body", [])
    _compare(t, "body", t.body_vars, body_params)
    header_params = given.get("header", [])
    if t.header_format in _MEDIA_HEADERS or t.header_format == "LOCATION":
        expected_type = t.header_format.lower()
        if len(header_params) != 1:
            raise GraphError(132000, f"header: number of parameters ({len(header_params)}) does not match "
                                     "the expected number of params (1)")
        if header_params[0].get("type") != expected_type:
            raise GraphError(132012, f"header: Format mismatch, expected {t.header_format}, "
                                     f"received {str(header_params[0].get('type')).upper()}")
    else:
        _compare(t, "header", t.header_vars, header_params)


def _compare(t: Template, where: str, expected: list[str], params: list[dict[str, Any]]) -> None:
    if len(params) != len(expected):
        raise GraphError(132000, f"{where}: number of localizable_params ({len(params)}) does not match "
                                 f"the expected number of params ({len(expected)})")
    if t.parameter_format == "NAMED":
        names = sorted(str(p.get("parameter_name")) for p in params)
        if names != sorted(expected):
            raise GraphError(132000, f"{where}: parameter names {names} do not match the template's {sorted(expected)}")


def encode_cursor(template_id: str) -> str:
    """An opaque paging cursor (Meta's look like ``MAZDZD``)."""
    return base64.urlsafe_b64encode(template_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The template id inside a cursor; 100 when it is not one of ours."""
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise invalid_param("Param after/before is not a valid cursor.") from None


def paginate(items: list[Template], *, limit: int, after: str | None, before: str | None
             ) -> tuple[list[Template], bool, bool]:
    """A page of ``items`` (cursor = template id); returns (page, has_next, has_previous)."""
    ids = [t.id for t in items]
    start, end = 0, len(items)
    if after:
        anchor = decode_cursor(after)
        start = ids.index(anchor) + 1 if anchor in ids else len(items)
        end = min(len(items), start + limit)
    elif before:
        anchor = decode_cursor(before)
        end = ids.index(anchor) if anchor in ids else 0
        start = max(0, end - limit)
    else:
        end = min(len(items), limit)
    return items[start:end], end < len(items), start > 0
