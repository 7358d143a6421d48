"""Validation of outbound ``interactive`` messages (reply buttons, lists and the rest).

Limits from WHATSAPP.md: reply buttons 1-3 (id <= 256, title <= 20, ids unique); list button
label <= 20, 1-10 sections (title <= 24, required when more than one), at most 10 rows in all
(id <= 200, title <= 24, description <= 72); header text <= 60, body <= 1024, footer <= 60.
Counts and lengths outside those answer 131009, structural problems 100, as Meta does.
"""

from __future__ import annotations

from typing import Any

from app.sandbox.checks import get_list, get_str, require_keys, require_obj, value_invalid
from app.sandbox.errors import invalid_param

_KINDS = frozenset({"button", "list", "cta_url", "product", "product_list", "flow", "catalog_message",
                    "location_request_message", "call_permission_request", "address_message",
                    "order_details", "order_status", "carousel"})
_NEEDS_BODY = frozenset({"button", "list", "cta_url", "product_list", "flow", "catalog_message",
                         "location_request_message"})
_HEADER_TYPES = frozenset({"text", "image", "video", "document"})
_P = "interactive"


def check_interactive(payload: dict[str, Any]) -> None:
    """Raise ``GraphError`` unless ``payload`` is a valid ``interactive`` object."""
    require_keys(payload, {"type", "header", "body", "footer", "action"}, _P)
    kind = get_str(payload, "type", _P)
    if kind not in _KINDS:
        raise value_invalid(f"Param interactive['type'] must be one of {', '.join(sorted(_KINDS))}.")
    if "header" in payload:
        _check_header(require_obj(payload["header"], f"{_P}['header']"))
    if "body" in payload:
        body = require_obj(payload["body"], f"{_P}['body']")
        require_keys(body, {"text"}, f"{_P}['body']")
        get_str(body, "text", f"{_P}['body']", max_len=1024, min_len=1, length_code=131009)
    elif kind in _NEEDS_BODY:
        raise invalid_param(f"The parameter {_P}['body'] is required.",
                            message=f"(#100) The parameter {_P}['body'] is required.")
    if "footer" in payload:
        footer = require_obj(payload["footer"], f"{_P}['footer']")
        require_keys(footer, {"text"}, f"{_P}['footer']")
        get_str(footer, "text", f"{_P}['footer']", max_len=60, min_len=1, length_code=131009)
    if "action" not in payload:
        raise invalid_param(f"The parameter {_P}['action'] is required.",
                            message=f"(#100) The parameter {_P}['action'] is required.")
    action = require_obj(payload["action"], f"{_P}['action']")
    if kind == "button":
        _check_buttons(action)
    elif kind == "list":
        _check_list(action)
    elif kind == "cta_url":
        params = require_obj(action.get("parameters"), f"{_P}['action']['parameters']")
        get_str(params, "display_text", f"{_P}['action']['parameters']", max_len=20, min_len=1,
                length_code=131009)
        url = get_str(params, "url", f"{_P}['action']['parameters']", min_len=1)
        if url and not url.startswith(("http://", "https://")):
            raise value_invalid(f"Param {_P}['action']['parameters']['url'] must be an http(s) URL.")


def _check_header(header: dict[str, Any]) -> None:
    path = f"{_P}['header']"
    require_keys(header, {"type", "text", "image", "video", "document", "sub_text"}, path)
    htype = get_str(header, "type", path)
    if htype not in _HEADER_TYPES:
        raise value_invalid(f"Param {path}['type'] must be one of text, image, video, document.")
    if htype == "text":
        get_str(header, "text", path, max_len=60, min_len=1, length_code=131009)
    elif htype not in header:
        raise invalid_param(f"The parameter {path}['{htype}'] is required.",
                            message=f"(#100) The parameter {path}['{htype}'] is required.")


def _check_buttons(action: dict[str, Any]) -> None:
    path = f"{_P}['action']"
    require_keys(action, {"buttons"}, path)
    buttons = get_list(action, "buttons", path) or []
    if not 1 <= len(buttons) <= 3:
        raise value_invalid(f"Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3 "
                            f"(param {path}['buttons'] has {len(buttons)}).")
    seen: set[str] = set()
    for i, button in enumerate(buttons):
        bpath = f"{path}['buttons'][{i}]"
        button = require_obj(button, bpath)
        require_keys(button, {"type", "reply"}, bpath)
        if button.get("type") != "reply":
            raise value_invalid(f"Param {bpath}['type'] must be 'reply'.")
        reply = require_obj(button.get("reply"), f"{bpath}['reply']")
        require_keys(reply, {"id", "title"}, f"{bpath}['reply']")
        button_id = get_str(reply, "id", f"{bpath}['reply']", max_len=256, min_len=1, length_code=131009)
        get_str(reply, "title", f"{bpath}['reply']", max_len=20, min_len=1, length_code=131009)
        if button_id in seen:
            raise value_invalid(f"Param {bpath}['reply']['id'] duplicates another button id.")
        seen.add(button_id or "")


def _check_list(action: dict[str, Any]) -> None:
    path = f"{_P}['action']"
    require_keys(action, {"button", "sections"}, path)
    get_str(action, "button", path, max_len=20, min_len=1, length_code=131009)
    sections = get_list(action, "sections", path) or []
    if not 1 <= len(sections) <= 10:
        raise value_invalid(f"Param {path}['sections'] must contain between 1 and 10 sections.")
    rows_total = 0
    row_ids: set[str] = set()
    for i, section in enumerate(sections):
        spath = f"{path}['sections'][{i}]"
        section = require_obj(section, spath)
        require_keys(section, {"title", "rows", "product_items"}, spath)
        get_str(section, "title", spath, required=len(sections) > 1, max_len=24, length_code=131009)
        rows = get_list(section, "rows", spath) or []
        if not rows:
            raise value_invalid(f"Param {spath}['rows'] must contain at least 1 row.")
        rows_total += len(rows)
        for j, row in enumerate(rows):
            rpath = f"{spath}['rows'][{j}]"
            row = require_obj(row, rpath)
            require_keys(row, {"id", "title", "description"}, rpath)
            row_id = get_str(row, "id", rpath, max_len=200, min_len=1, length_code=131009)
            get_str(row, "title", rpath, max_len=24, min_len=1, length_code=131009)
            get_str(row, "description", rpath, required=False, max_len=72, length_code=131009)
            if row_id in row_ids:
                raise value_invalid(f"Param {rpath}['id'] duplicates another row id.")
            row_ids.add(row_id or "")
    if rows_total > 10:
        raise value_invalid(f"Total row count exceed max allowed count: 10 "
                            f"(param {path}['sections'] has {rows_total}).")
