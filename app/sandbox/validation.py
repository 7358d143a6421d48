"""Validation of ``POST /{phone_number_id}/messages`` bodies, the way Meta validates them.

Pure functions: they take the decoded JSON and either return a ``ParsedSend`` or raise
``GraphError`` with code 100 (missing / wrongly typed / unknown parameter, text too long)
or 131009 (a value outside what WhatsApp accepts: button counts, title lengths, bad ``to``),
naming the field in ``error_data.details`` with Meta's ``param['key']`` notation.

Recipients (2026): ``to`` (a phone) and/or ``recipient`` (a BSUID or parent BSUID; ``to`` wins
when both are given, as Meta documents), or ``recipient_type: "group"`` with ``to: <group_id>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.sandbox.checks import get_list, get_str, require_keys, require_obj, value_invalid
from app.sandbox.errors import invalid_param
from app.sandbox.interactive import check_interactive

MESSAGE_TYPES = frozenset(
    {"text", "image", "video", "audio", "document", "sticker", "location", "contacts",
     "interactive", "template", "reaction"}
)
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
_CAPTIONED = frozenset({"image", "video", "document"})
_TOP_LEVEL = frozenset({"messaging_product", "recipient_type", "to", "recipient", "type", "context",
                        "biz_opaque_callback_data"}) | MESSAGE_TYPES
_BSUID = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
_TO_STRIP = re.compile(r"[\s\-().+]")


@dataclass(slots=True)
class ParsedSend:
    """What the send path needs from a valid message body."""

    type: str
    to: str | None
    wa_id: str | None
    recipient: str | None = None
    recipient_type: str = "individual"
    template_name: str | None = None
    template_language: str | None = None
    template_components: list[dict[str, Any]] | None = None
    media_id: str | None = None
    biz_opaque_callback_data: str | None = None


def normalise_to(value: Any) -> str:
    """``+1 (650) 555-1234`` -> ``16505551234``; 131009 unless 7 to 15 digits remain."""
    if not isinstance(value, str):
        raise invalid_param("Param to must be a string.", message="(#100) Param to must be a string.")
    digits = _TO_STRIP.sub("", value)
    if not digits.isdigit() or not 7 <= len(digits) <= 15 or not digits.isascii():
        raise value_invalid(f"Param to ('{value}') is not a valid WhatsApp phone number.")
    return digits


def parse_mark_read(body: dict[str, Any]) -> str:
    """Validate a mark-as-read body; returns the message id."""
    require_keys(body, {"messaging_product", "status", "message_id", "typing_indicator"}, "root")
    if body.get("messaging_product") != "whatsapp":
        raise invalid_param("The parameter messaging_product is required and must be 'whatsapp'.")
    if body.get("status") != "read":
        raise value_invalid("Param status must be 'read'.")
    indicator = body.get("typing_indicator")
    if indicator is not None:
        require_keys(require_obj(indicator, "typing_indicator"), {"type"}, "typing_indicator")
        if indicator.get("type") != "text":
            raise value_invalid("Param typing_indicator['type'] must be 'text'.")
    message_id = get_str(body, "message_id", "", min_len=1)
    assert message_id is not None
    return message_id


def parse_send(body: Any) -> ParsedSend:
    """Validate a send body; the mark-as-read shape is handled by ``parse_mark_read``."""
    body = require_obj(body, "root")
    kind = body.get("type", "text")  # Meta defaults the type to text
    if not isinstance(kind, str):
        raise invalid_param("Param type must be a string.", message="(#100) Param type must be a string.")
    if kind not in MESSAGE_TYPES:
        raise invalid_param(f"Param type must be one of {{{', '.join(sorted(MESSAGE_TYPES))}}} - got \"{kind}\".",
                            message="(#100) Param type must be one of the supported message types.")
    require_keys(body, _TOP_LEVEL, "root")
    if body.get("messaging_product") != "whatsapp":
        raise invalid_param("The parameter messaging_product is required and must be 'whatsapp'.",
                            message="(#100) The parameter messaging_product is required.")
    parsed = _recipient(body, kind)
    if kind not in body:
        raise invalid_param(f"The parameter {kind} is required.", message=f"(#100) The parameter {kind} is required.")
    if "context" in body:
        context = require_obj(body["context"], "context")
        require_keys(context, {"message_id"}, "context")
        get_str(context, "message_id", "context", min_len=1)
    opaque = get_str(body, "biz_opaque_callback_data", "", required=False, max_len=512)
    parsed.biz_opaque_callback_data = opaque
    if kind == "contacts":  # the only type whose object is an array
        _check_contacts(body["contacts"])
        return parsed
    payload = require_obj(body[kind], kind)
    if kind == "text":
        require_keys(payload, {"body", "preview_url"}, "text")
        get_str(payload, "body", "text", max_len=4096, min_len=1)
        if "preview_url" in payload and not isinstance(payload["preview_url"], bool):
            raise invalid_param("Param text['preview_url'] must be a boolean.")
    elif kind in MEDIA_TYPES:
        parsed.media_id = _check_media(kind, payload)
    elif kind == "location":
        _check_location(payload)
    elif kind == "reaction":
        require_keys(payload, {"message_id", "emoji"}, "reaction")
        get_str(payload, "message_id", "reaction", min_len=1)
        get_str(payload, "emoji", "reaction", required=False)  # "" removes the reaction
    elif kind == "interactive":
        check_interactive(payload)
    elif kind == "template":
        _check_template(payload, parsed)
    return parsed


def _recipient(body: dict[str, Any], kind: str) -> ParsedSend:
    """``to`` (phone), ``recipient`` (BSUID; ``to`` wins when both) or a group's ``to``."""
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type not in ("individual", "group"):
        raise value_invalid("Param recipient_type must be 'individual' or 'group'.")
    if recipient_type == "group":
        if "recipient" in body:
            raise invalid_param("Param recipient is not allowed for group messages; put the group id in to.")
        group_id = get_str(body, "to", "", min_len=1)
        return ParsedSend(type=kind, to=group_id, wa_id=None, recipient_type="group")
    if "to" in body:
        return ParsedSend(type=kind, to=body["to"], wa_id=normalise_to(body["to"]))
    recipient = body.get("recipient")
    if recipient is None:
        raise invalid_param("The parameter to is required (or recipient, a business-scoped user ID).",
                            message="(#100) The parameter to is required.")
    if not isinstance(recipient, str):
        raise invalid_param("Param recipient must be a string.", message="(#100) Param recipient must be a string.")
    if not _BSUID.match(recipient):
        raise value_invalid(f"Param recipient ('{recipient}') is not a valid business-scoped user ID.")
    return ParsedSend(type=kind, to=None, wa_id=None, recipient=recipient)


def _check_media(kind: str, payload: dict[str, Any]) -> str | None:
    allowed = {"id", "link"}
    if kind in _CAPTIONED:
        allowed.add("caption")
    if kind == "document":
        allowed.add("filename")
    require_keys(payload, allowed, kind)
    media_id = get_str(payload, "id", kind, required=False, min_len=1)
    link = get_str(payload, "link", kind, required=False, min_len=1)
    if (media_id is None) == (link is None):
        raise invalid_param(f"Param {kind} must have exactly one of 'id' or 'link'.",
                            message=f"(#100) Param {kind} must contain either 'id' or 'link'.")
    if link is not None and not link.startswith(("http://", "https://")):
        raise value_invalid(f"Param {kind}['link'] must be an http(s) URL.")
    get_str(payload, "caption", kind, required=False, max_len=1024)
    get_str(payload, "filename", kind, required=False, max_len=240)
    return media_id


def _number(value: Any, field: str, low: float, high: float) -> None:
    if isinstance(value, str):  # Meta's own examples send coordinates as strings
        try:
            value = float(value)
        except ValueError:
            raise invalid_param(f"Param {field} must be a number.") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_param(f"Param {field} must be a number.", message=f"(#100) Param {field} must be a number.")
    if not low <= value <= high:
        raise value_invalid(f"Param {field} must be between {low} and {high}.")


def _check_location(payload: dict[str, Any]) -> None:
    require_keys(payload, {"latitude", "longitude", "name", "address"}, "location")
    for key, bound in (("latitude", 90.0), ("longitude", 180.0)):
        if key not in payload:
            raise invalid_param(f"The parameter location['{key}'] is required.",
                                message=f"(#100) The parameter location['{key}'] is required.")
        _number(payload[key], f"location['{key}']", -bound, bound)
    get_str(payload, "name", "location", required=False, max_len=1024)
    get_str(payload, "address", "location", required=False, max_len=1024)


def _check_contacts(contacts: Any) -> None:
    if not isinstance(contacts, list):
        raise invalid_param("Param contacts must be an array.", message="(#100) Param contacts must be an array.")
    if not 1 <= len(contacts) <= 257:
        raise value_invalid("Param contacts must contain between 1 and 257 contacts.")
    for i, contact in enumerate(contacts):
        path = f"contacts[{i}]"
        contact = require_obj(contact, path)
        require_keys(contact, {"addresses", "birthday", "emails", "name", "org", "phones", "urls"}, path)
        name = require_obj(contact.get("name"), f"{path}['name']") if "name" in contact else None
        if name is None:
            raise invalid_param(f"The parameter {path}['name'] is required.")
        get_str(name, "formatted_name", f"{path}['name']", min_len=1)
        for key in ("addresses", "emails", "phones", "urls"):
            for j, item in enumerate(get_list(contact, key, path, required=False) or []):
                require_obj(item, f"{path}['{key}'][{j}]")


_TEMPLATE_PARAM_TYPES = frozenset({"text", "currency", "date_time", "image", "video", "document",
                                   "location", "payload", "action", "coupon_code", "product"})


def _check_template(payload: dict[str, Any], parsed: ParsedSend) -> None:
    require_keys(payload, {"name", "language", "components", "namespace"}, "template")
    parsed.template_name = get_str(payload, "name", "template", min_len=1)
    language = payload.get("language")
    if language is None:
        raise invalid_param("The parameter template['language'] is required.",
                            message="(#100) The parameter template['language'] is required.")
    language = require_obj(language, "template['language']")
    require_keys(language, {"code", "policy"}, "template['language']")
    parsed.template_language = get_str(language, "code", "template['language']", min_len=1)
    components = get_list(payload, "components", "template", required=False) or []
    for i, component in enumerate(components):
        path = f"template['components'][{i}]"
        component = require_obj(component, path)
        require_keys(component, {"type", "sub_type", "index", "parameters"}, path)
        ctype = get_str(component, "type", path)
        if ctype not in {"header", "body", "button", "footer", "carousel", "limited_time_offer"}:
            raise value_invalid(f"Param {path}['type'] must be one of header, body, button.")
        for j, param in enumerate(get_list(component, "parameters", path, required=False) or []):
            ppath = f"{path}['parameters'][{j}]"
            param = require_obj(param, ppath)
            ptype = get_str(param, "type", ppath)
            if ptype not in _TEMPLATE_PARAM_TYPES:
                raise value_invalid(f"Param {ppath}['type'] is not a valid parameter type.")
            if ptype not in param:
                raise invalid_param(f"The parameter {ppath}['{ptype}'] is required.",
                                    message=f"(#100) The parameter {ppath}['{ptype}'] is required.")
            if ptype == "text":
                get_str(param, "text", ppath, max_len=32768)
            get_str(param, "parameter_name", ppath, required=False, min_len=1)
    parsed.template_components = components
