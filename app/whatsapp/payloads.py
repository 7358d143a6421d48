"""Pure builders for outbound message bodies, exactly as ``POST /{phone_number_id}/messages`` wants them.

Every builder funnels into :func:`build_message`, which the outbound pipeline also calls with the
content object an integrator sent: one set of rules, whichever way a message was made. Nothing
here does I/O; invalid input raises :class:`PayloadError` naming the dotted field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from app.whatsapp.interactive import (
    ButtonSpec,
    HeaderSpec,
    interactive_buttons,
    interactive_list,
    validate_interactive,
)
from app.whatsapp.media import MediaKind
from app.whatsapp.templates import (
    template_object,
    template_placeholders,
    text_parameters,
    validate_template,
    validate_template_parameters,
)
from app.whatsapp.validation import (
    PayloadError,
    optional_text,
    require_link,
    require_list,
    require_mapping,
    require_number,
    require_text,
)

__all__ = [
    "PayloadError", "normalize_recipient", "recipient_fields", "user_address", "group_address", "build_message", "text", "media", "location", "contacts",
    "reaction", "buttons", "list_message", "template", "mark_read", "interactive_buttons",
    "interactive_list", "template_object", "template_placeholders", "text_parameters",
    "validate_template_parameters", "MESSAGE_TYPES",
]

TEXT_MAX = 4096
CAPTION_MAX = 1024
CONTACTS_MAX = 5
_CAPTIONED = frozenset({MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.DOCUMENT})
MEDIA_TYPES = frozenset(kind.value for kind in MediaKind)
MESSAGE_TYPES = frozenset({"text", "location", "contacts", "reaction", "interactive", "template"}) | MEDIA_TYPES

# Formatting people type around numbers; anything else (letters, '#', 'ext') is a mistake.
_PHONE_PUNCTUATION = re.compile(r"[\s\-().\u00a0/]")


def normalize_recipient(to: str | int) -> str:
    """``"+<country code><number>"`` from a number as people write it (``+1 (650) 555-1234``, ``0044...``).

    WhatsApp wants the country code; we always send the ``+`` so a national-looking number
    can never be misread. E.164 allows at most 15 digits.
    """
    raw = str(to).strip()
    compact = _PHONE_PUNCTUATION.sub("", raw)
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00"):
        digits = compact[2:]
    else:
        digits = compact
    if not digits.isdigit() or not digits.isascii():
        raise PayloadError("to", f"{raw!r} is not a phone number with country code")
    if not 7 <= len(digits) <= 15 or digits.startswith("0"):
        raise PayloadError("to", f"{raw!r} is not a phone number with country code (E.164: up to 15 digits)")
    return "+" + digits


BSUID_PATTERN = re.compile(r"^[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}$")
"""A business-scoped user id: ISO country code, ".", up to 128 letters and digits (``US.13491208655302741918``;
a parent BSUID has ``.ENT``)."""
USER_PREFIX = "user:"
GROUP_PREFIX = "group:"


def user_address(user_id: str) -> str:
    """The outbox address of a customer known only by their business-scoped user id."""
    if not BSUID_PATTERN.match(user_id):
        raise PayloadError("recipient", f"{user_id!r} is not a WhatsApp business-scoped user id")
    return USER_PREFIX + user_id


def group_address(group_id: str) -> str:
    """The outbox address of a WhatsApp group."""
    if not group_id or len(group_id) > 256 or not group_id.isascii() or any(c.isspace() for c in group_id):
        raise PayloadError("to", f"{group_id!r} is not a WhatsApp group id")
    return GROUP_PREFIX + group_id


def recipient_fields(address: str | int) -> dict[str, str]:
    """Who a send goes to, as Meta's body names them: ``to`` for a phone number (always with +),
    ``recipient`` for a business-scoped user id (a customer whose number we do not have), and
    ``recipient_type: group`` with the group id in ``to``. ``address`` is a phone number as people
    write it, ``user:<BSUID>`` or ``group:<group id>`` (the outbox's ``Message.recipient``)."""
    text = str(address)
    if text.startswith("+") and text[1:].isdigit():  # the outbox's usual, already checked
        return {"recipient_type": "individual", "to": text}
    if text.startswith(USER_PREFIX):
        return {"recipient_type": "individual", "recipient": user_address(text[len(USER_PREFIX):])[len(USER_PREFIX):]}
    if text.startswith(GROUP_PREFIX):
        return {"recipient_type": "group", "to": group_address(text[len(GROUP_PREFIX):])[len(GROUP_PREFIX):]}
    return {"recipient_type": "individual", "to": normalize_recipient(text)}


def build_message(
    to: str | int,
    type: str,
    content: Any,
    reply_to: str | None = None,
    *,
    template_definition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full body for ``type`` with ``content`` = Meta's object for that type.

    ``{"body": ...}`` for text, ``{"id"|"link", "caption"?, "filename"?}`` for media, the
    ``template`` / ``interactive`` / ``location`` / ``reaction`` objects, a list for contacts.
    ``reply_to`` quotes an earlier message; ``template_definition`` (from the templates API)
    also checks the template's parameters against its placeholders.
    """
    if type not in MESSAGE_TYPES:
        raise PayloadError("type", f"{type!r} is not a message type we can send")
    checked = _validate_content(type, content)
    if type == "template" and template_definition is not None:
        validate_template_parameters(checked, template_definition)
    body: dict[str, Any] = {"messaging_product": "whatsapp", **recipient_fields(to), "type": type, type: checked}
    if reply_to is not None:
        if type == "reaction":
            raise PayloadError("context", "a reaction names its message in reaction.message_id; it cannot quote")
        body["context"] = {"message_id": require_text(reply_to, "context.message_id")}
    return body


def _validate_content(kind: str, content: Any) -> Any:
    """Check ``content`` for ``kind`` and return a copy, so later edits by the caller cannot leak in."""
    if kind == "contacts":
        cards = require_list(content, "contacts", min_items=1, max_items=CONTACTS_MAX)
        for index, card in enumerate(cards):
            card = require_mapping(card, f"contacts[{index}]")
            name = require_mapping(card.get("name"), f"contacts[{index}].name")
            require_text(name.get("formatted_name"), f"contacts[{index}].name.formatted_name")
        return [_copy(card) for card in cards]
    obj = require_mapping(content, kind)
    if kind == "text":
        require_text(obj.get("body"), "text.body", max_length=TEXT_MAX)
        if "preview_url" in obj and not isinstance(obj["preview_url"], bool):
            raise PayloadError("text.preview_url", "must be true or false")
    elif kind in MEDIA_TYPES:
        _check_media(MediaKind(kind), obj)
    elif kind == "location":
        require_number(obj.get("latitude"), "location.latitude", low=-90, high=90)
        require_number(obj.get("longitude"), "location.longitude", low=-180, high=180)
        optional_text(obj, "name", "location.name", max_length=1024)
        optional_text(obj, "address", "location.address", max_length=1024)
    elif kind == "reaction":
        require_text(obj.get("message_id"), "reaction.message_id")
        # "" is meaningful: it removes our earlier reaction.
        require_text(obj.get("emoji"), "reaction.emoji", allow_empty=True, max_length=16)
    elif kind == "interactive":
        validate_interactive(obj)
    elif kind == "template":
        validate_template(obj)
    return _copy(obj)


def _check_media(kind: MediaKind, obj: Mapping[str, Any]) -> None:
    has_id, has_link = obj.get("id") is not None, obj.get("link") is not None
    if has_id == has_link:
        raise PayloadError(kind.value, "needs exactly one of id (uploaded media) or link")
    if has_id:
        require_text(obj["id"], f"{kind}.id")
    else:
        require_link(obj["link"], f"{kind}.link")
    if obj.get("caption") is not None:
        if kind not in _CAPTIONED:
            raise PayloadError(f"{kind}.caption", f"{kind} messages cannot have a caption")
        require_text(obj["caption"], f"{kind}.caption", max_length=CAPTION_MAX)
    if obj.get("filename") is not None:
        if kind is not MediaKind.DOCUMENT:
            raise PayloadError(f"{kind}.filename", "only documents have a filename")
        require_text(obj["filename"], f"{kind}.filename", max_length=240)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(item) for item in value]
    return value


def text(to: str | int, body: str, *, preview_url: bool = False, reply_to: str | None = None) -> dict[str, Any]:
    """A text message (≤ 4096 characters); ``preview_url`` renders the first link's preview."""
    content: dict[str, Any] = {"body": body}
    if preview_url:
        content["preview_url"] = True
    return build_message(to, "text", content, reply_to)


def media(
    to: str | int,
    kind: MediaKind | str,
    *,
    media_id: str | None = None,
    link: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """An image, video, document, audio or sticker message, by uploaded ``media_id`` or public ``link``."""
    try:
        kind = MediaKind(kind)
    except ValueError:
        raise PayloadError("type", f"{kind!r} is not a media type") from None
    # Both are passed on when both are given, so validation refuses the ambiguity.
    content: dict[str, Any] = {key: value for key, value in (("id", media_id), ("link", link)) if value is not None}
    if caption is not None:
        content["caption"] = caption
    if filename is not None:
        content["filename"] = filename
    return build_message(to, kind.value, content, reply_to)


def location(
    to: str | int,
    latitude: float,
    longitude: float,
    *,
    name: str | None = None,
    address: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """A location pin; ``name`` and ``address`` are shown under it."""
    content: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if name is not None:
        content["name"] = name
    if address is not None:
        content["address"] = address
    return build_message(to, "location", content, reply_to)


def contacts(to: str | int, cards: Sequence[Mapping[str, Any]], *, reply_to: str | None = None) -> dict[str, Any]:
    """1-5 contact cards in Meta's format (each needs ``name.formatted_name``)."""
    return build_message(to, "contacts", cards, reply_to)


def reaction(to: str | int, message_id: str, emoji: str) -> dict[str, Any]:
    """React to ``message_id`` with ``emoji``; ``""`` removes our reaction."""
    return build_message(to, "reaction", {"message_id": message_id, "emoji": emoji})


def buttons(
    to: str | int,
    body: str,
    choices: Sequence[ButtonSpec],
    *,
    header: HeaderSpec | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """1-3 reply buttons, ``choices`` as ``(id, title)`` pairs or ``{id, title}``."""
    return build_message(to, "interactive", interactive_buttons(body, choices, header=header, footer=footer), reply_to)


def list_message(
    to: str | int,
    body: str,
    button: str,
    sections: Sequence[Mapping[str, Any]],
    *,
    header: str | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """A list opened by ``button``; ``sections`` as ``{title?, rows: [{id, title, description?}]}``."""
    interactive = interactive_list(body, button, sections, header=header, footer=footer)
    return build_message(to, "interactive", interactive, reply_to)


def template(
    to: str | int,
    name: str,
    language: str,
    components: Sequence[Mapping[str, Any]] | None = None,
    *,
    definition: Mapping[str, Any] | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """A template message; with ``definition`` its parameters are checked against the placeholders."""
    content = template_object(name, language, components)
    return build_message(to, "template", content, reply_to, template_definition=definition)


def mark_read(message_id: str, *, typing_indicator: bool = False) -> dict[str, Any]:
    """Mark ``message_id`` (and every earlier message) read; optionally show "typing…" to the customer."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": require_text(message_id, "message_id"),
    }
    if typing_indicator:
        body["typing_indicator"] = {"type": "text"}
    return body
