"""Interactive messages: reply buttons and lists, built and validated against WhatsApp's limits.

``validate_interactive`` checks Meta's ``interactive`` object however it was made (by our builders
or sent as-is by an integrator); other interactive kinds (cta_url, flow, product ...) get the
header/body/footer checks and are otherwise passed through for Meta to judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.whatsapp.validation import (
    PayloadError,
    optional_text,
    require_list,
    require_mapping,
    require_text,
)

HEADER_MAX = 60
BODY_MAX = 1024
FOOTER_MAX = 60
BUTTONS_MAX = 3
BUTTON_ID_MAX = 256
BUTTON_TITLE_MAX = 20
LIST_BUTTON_MAX = 20
SECTIONS_MAX = 10
SECTION_TITLE_MAX = 24
ROWS_MAX = 10
ROW_ID_MAX = 200
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72

_MEDIA_HEADER_TYPES = ("image", "video", "document")

ButtonSpec = tuple[str, str] | Mapping[str, Any]
HeaderSpec = str | Mapping[str, Any]


def interactive_buttons(
    body: str,
    buttons: Sequence[ButtonSpec],
    *,
    header: HeaderSpec | None = None,
    footer: str | None = None,
) -> dict[str, Any]:
    """Meta's ``interactive`` object for 1-3 reply buttons, given as ``(id, title)`` or ``{id, title}``."""
    replies = []
    for spec in buttons:
        button_id, title = (spec["id"], spec["title"]) if isinstance(spec, Mapping) else spec
        replies.append({"type": "reply", "reply": {"id": button_id, "title": title}})
    interactive = _frame("button", body, header, footer)
    interactive["action"] = {"buttons": replies}
    validate_interactive(interactive)
    return interactive


def interactive_list(
    body: str,
    button: str,
    sections: Sequence[Mapping[str, Any]],
    *,
    header: str | None = None,
    footer: str | None = None,
) -> dict[str, Any]:
    """Meta's ``interactive`` object for a list; ``sections`` are ``{title?, rows: [{id, title, description?}]}``."""
    interactive = _frame("list", body, header, footer)
    interactive["action"] = {"button": button, "sections": [dict(section) for section in sections]}
    validate_interactive(interactive)
    return interactive


def _frame(kind: str, body: str, header: HeaderSpec | None, footer: str | None) -> dict[str, Any]:
    interactive: dict[str, Any] = {"type": kind}
    if header is not None:
        interactive["header"] = {"type": "text", "text": header} if isinstance(header, str) else dict(header)
    interactive["body"] = {"text": body}
    if footer is not None:
        interactive["footer"] = {"text": footer}
    return interactive


def validate_interactive(interactive: object, field: str = "interactive") -> None:
    """Raise PayloadError when WhatsApp would refuse this ``interactive`` object."""
    obj = require_mapping(interactive, field)
    kind = require_text(obj.get("type"), f"{field}.type")
    _check_header(obj.get("header"), f"{field}.header", text_only=kind == "list")
    if kind in ("button", "list") or obj.get("body") is not None:
        body = require_mapping(obj.get("body"), f"{field}.body")
        require_text(body.get("text"), f"{field}.body.text", max_length=BODY_MAX)
    if obj.get("footer") is not None:
        footer = require_mapping(obj["footer"], f"{field}.footer")
        require_text(footer.get("text"), f"{field}.footer.text", max_length=FOOTER_MAX)
    action = require_mapping(obj.get("action"), f"{field}.action")
    if kind == "button":
        _check_buttons(action, f"{field}.action")
    elif kind == "list":
        _check_list(action, f"{field}.action")


def _check_header(header: object, field: str, *, text_only: bool) -> None:
    if header is None:
        return
    header = require_mapping(header, field)
    kind = require_text(header.get("type"), f"{field}.type")
    if kind == "text":
        require_text(header.get("text"), f"{field}.text", max_length=HEADER_MAX)
    elif text_only or kind not in _MEDIA_HEADER_TYPES:
        allowed = "text" if text_only else "text, image, video or document"
        raise PayloadError(f"{field}.type", f"must be {allowed}")
    else:
        media = require_mapping(header.get(kind), f"{field}.{kind}")
        if not media.get("id") and not media.get("link"):
            raise PayloadError(f"{field}.{kind}", "needs an id or a link")


def _check_buttons(action: Mapping[str, Any], field: str) -> None:
    buttons = require_list(action.get("buttons"), f"{field}.buttons", min_items=1, max_items=BUTTONS_MAX)
    seen: set[str] = set()
    for index, button in enumerate(buttons):
        path = f"{field}.buttons[{index}]"
        button = require_mapping(button, path)
        if button.get("type") != "reply":
            raise PayloadError(f"{path}.type", 'must be "reply"')
        reply = require_mapping(button.get("reply"), f"{path}.reply")
        button_id = require_text(reply.get("id"), f"{path}.reply.id", max_length=BUTTON_ID_MAX)
        require_text(reply.get("title"), f"{path}.reply.title", max_length=BUTTON_TITLE_MAX)
        if button_id in seen:
            raise PayloadError(f"{path}.reply.id", f"duplicates another button's id {button_id!r}")
        seen.add(button_id)


def _check_list(action: Mapping[str, Any], field: str) -> None:
    require_text(action.get("button"), f"{field}.button", max_length=LIST_BUTTON_MAX)
    sections = require_list(action.get("sections"), f"{field}.sections", min_items=1, max_items=SECTIONS_MAX)
    total_rows = 0
    seen: set[str] = set()
    for s_index, section in enumerate(sections):
        path = f"{field}.sections[{s_index}]"
        section = require_mapping(section, path)
        # A lone section may go untitled; with several, titles are how the user tells them apart.
        if len(sections) > 1 or section.get("title") is not None:
            require_text(section.get("title"), f"{path}.title", max_length=SECTION_TITLE_MAX)
        rows = require_list(section.get("rows"), f"{path}.rows", min_items=1)
        for r_index, row in enumerate(rows):
            row_path = f"{path}.rows[{r_index}]"
            row = require_mapping(row, row_path)
            row_id = require_text(row.get("id"), f"{row_path}.id", max_length=ROW_ID_MAX)
            require_text(row.get("title"), f"{row_path}.title", max_length=ROW_TITLE_MAX)
            optional_text(row, "description", f"{row_path}.description", max_length=ROW_DESCRIPTION_MAX)
            if row_id in seen:
                raise PayloadError(f"{row_path}.id", f"duplicates another row's id {row_id!r}")
            seen.add(row_id)
            total_rows += 1
            if total_rows > ROWS_MAX:
                raise PayloadError(row_path, f"a list holds at most {ROWS_MAX} rows in all")
