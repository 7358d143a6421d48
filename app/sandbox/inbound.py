"""A simulated customer writes: the inbound ``messages`` webhook in Meta's 2026 shape.

Identity (BSUID era): the message carries ``from`` (the phone, when visible) and
``from_user_id`` (the BSUID; ``from_parent_user_id`` with a parent BSUID), and ``contacts[]``
holds ``profile.name``, ``profile.username`` (when the customer has one), ``wa_id`` (when the
phone is visible), ``user_id`` and ``parent_user_id``.  A username-only customer's webhook has
no ``wa_id`` and no ``from``.  In a group the message carries ``group_id`` and the contact is
the participant.

Media messages get a real generated file under a new media id, and a ``url`` (the download
URL, valid five minutes, bearer token required) as Meta now sends it.  System messages
(``user_changed_number``, ``user_changed_user_id``) have no ``contacts`` array, as Meta documents.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from app.sandbox import media_assets
from app.sandbox.errors import invalid_param, webhook_error
from app.sandbox.media_store import download_url
from app.sandbox.validation import normalise_to

if TYPE_CHECKING:
    from app.sandbox.models import Number
    from app.sandbox.state import SandboxState
    from app.sandbox.users import Customer

_MEDIA_KINDS = frozenset(media_assets.SUPPORTED)
_IDENTITY_KEYS = frozenset({"type", "id", "from", "from_user_id", "from_parent_user_id", "timestamp", "group_id"})
_QUOTING = frozenset({"interactive", "button"})  # replies to a business message always carry its context
_NO_CONTACTS = frozenset({"user_changed_number", "user_changed_user_id"})


def identity_fields(customer: Customer) -> dict[str, Any]:
    """``from`` (phone, when visible), ``from_user_id`` and ``from_parent_user_id``."""
    out: dict[str, Any] = {}
    if customer.wa_id:
        out["from"] = customer.wa_id
    out["from_user_id"] = customer.user_id
    if customer.parent_user_id:
        out["from_parent_user_id"] = customer.parent_user_id
    return out


def simulate(state: SandboxState, phone_number_id: str, from_: str | None, name: str | None,
             message: dict[str, Any], *, timestamp: float | None = None, user_id: str | None = None,
             username: str | None = None, parent_user_id: str | None = None,
             group_id: str | None = None) -> tuple[str, Customer]:
    """A customer sends ``message`` (Meta's object minus id/from/timestamp); returns (wamid, customer)."""
    number = state.numbers.get(phone_number_id)
    if number is None:
        raise invalid_param(f"Unknown phone_number_id {phone_number_id!r}; register it first.")
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise invalid_param("message must be an object with a string 'type'.")
    wa_id = normalise_to(from_) if from_ is not None else None
    customer = state.users.identify(number.waba_id, wa_id=wa_id, user_id=user_id, username=username, name=name,
                                    parent_user_id=parent_user_id)
    if customer.name is None:
        customer.name = "Customer"
    group = state.groups.participant_of(number, group_id, customer) if group_id is not None else None
    kind = message["type"]
    sent_at = time.time() if timestamp is None else float(timestamp)
    wamid = state.new_wamid(customer.key)
    out: dict[str, Any] = identity_fields(customer)
    if group is not None:
        out["group_id"] = group.id
    out.update({"id": wamid, "timestamp": str(int(sent_at)), "type": kind})
    for key, value in message.items():
        if key in _IDENTITY_KEYS:
            continue
        if key == "context":
            if not isinstance(value, dict) or not isinstance(value.get("id"), str):
                raise invalid_param("message.context must be an object with a string 'id'.")
            value = {"from": number.display_digits, **value}
        out[key] = value
    if kind in _QUOTING and "context" not in out and customer.key in number.last_sent:
        out["context"] = {"from": number.display_digits, "id": number.last_sent[customer.key]}
    if kind in _MEDIA_KINDS:
        out[kind] = _inbound_media(state, number, kind, message.get(kind) or {}, customer.name or "Customer")
    elif kind == "unsupported":
        out.setdefault("errors", [webhook_error(131051, "Message type is currently not supported.")])
    elif kind not in out:
        raise invalid_param(f"message.{kind} is required for type {kind!r}.")
    if kind == "text" and not isinstance((out.get("text") or {}).get("body"), str):
        raise invalid_param("message.text.body must be a string.")
    system_type = (out.get("system") or {}).get("type") if kind == "system" else None
    if system_type == "customer_identity_changed":
        out.setdefault("identity", {"acknowledged": True, "created_timestamp": str(int(sent_at)),
                                    "hash": secrets.token_urlsafe(6)})
    if kind != "system":  # a customer message opens (or resets) the 24-hour window
        if group is not None:
            group.last_inbound = max(group.last_inbound or 0.0, sent_at)
        else:
            number.last_inbound[customer.key] = max(number.last_inbound.get(customer.key, 0.0), sent_at)
            if isinstance(out.get("referral"), dict):  # click-to-WhatsApp ad: 72-h free entry point
                number.entry_points[customer.key] = sent_at
    state.inbound_ids[wamid] = phone_number_id
    contact = None if system_type in _NO_CONTACTS else customer.contact()
    state.webhooks.emit(phone_number_id, ("message", (contact, out)))
    return wamid, customer


def _inbound_media(state: SandboxState, number: Number, kind: str, given: dict[str, Any], name: str
                   ) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise invalid_param(f"message.{kind} must be an object.")
    label = str(given.get("caption") or given.get("filename") or f"{kind} from {name}")
    try:
        data, mime = media_assets.generate(kind, given.get("mime_type"), label=label)
    except ValueError as exc:
        raise invalid_param(str(exc)) from None
    filename = given.get("filename")
    if kind == "document" and not filename:
        filename = "document.txt" if mime == "text/plain" else "document.pdf"
    item = state.media.add(state.new_id(), number, data, mime, ttl_s=7 * 86400, filename=filename)
    obj = {k: v for k, v in given.items() if k not in ("id", "sha256", "mime_type", "url")}
    # Webhooks carry the base64 digest (as Meta's real payloads do); GET /{media_id} the hex one.
    obj.update({"mime_type": mime, "sha256": item.sha256_b64, "id": item.id})
    if state.media_base_url:
        obj["url"] = download_url(state.media_base_url, item, state.media.issue_url(item), source="webhook")
    if kind == "document":
        obj["filename"] = filename
    if kind == "audio":
        obj.setdefault("voice", False)
    if kind == "sticker":
        obj.setdefault("animated", False)
    return obj


def change_number(state: SandboxState, phone_number_id: str, *, wa_id: str | None = None,
                  user_id: str | None = None, new_wa_id: str | None = None, share_number: bool = True,
                  timestamp: float | None = None) -> dict[str, Any]:
    """The customer changes phone (a new BSUID): ``user_changed_number`` when the new number is
    shared, else ``user_changed_user_id`` (the new BSUID only).  No ``contacts`` array."""
    number = state.numbers.get(phone_number_id)
    if number is None:
        raise invalid_param(f"Unknown phone_number_id {phone_number_id!r}; register it first.")
    if wa_id is not None:
        customer = state.users.by_phone(number.waba_id, normalise_to(wa_id))
    elif user_id is not None:
        found = state.users.by_user_id(number.waba_id, user_id)
        if found is None:
            raise invalid_param(f"Unknown user_id {user_id!r} in this business.")
        customer = found
    else:
        raise invalid_param("Give wa_id or user_id: the customer who changes number.")
    new = normalise_to(new_wa_id) if new_wa_id is not None else None
    if new is None and share_number:
        raise invalid_param("Param new_wa_id is required unless share_number is false.")
    old_phone, name = customer.wa_id, customer.name or "Customer"
    sent_at = time.time() if timestamp is None else float(timestamp)
    old_user = state.users.change_number(customer, new, share=share_number)
    kind = "user_changed_number" if share_number else "user_changed_user_id"
    system: dict[str, Any] = {"body": f"User {name} changed from {old_phone} to {new}" if share_number
                              else f"User {name} changed from {old_user} to {customer.user_id}"}
    if share_number:
        system["wa_id"] = new
    system["user_id"] = customer.user_id
    if customer.parent_user_id:
        system["parent_user_id"] = customer.parent_user_id
    system["type"] = kind
    message: dict[str, Any] = {}
    if old_phone:
        message["from"] = old_phone
    message["from_user_id"] = old_user
    wamid = state.new_wamid(old_user)
    message.update({"id": wamid, "timestamp": str(int(sent_at)), "type": "system", "system": system})
    state.webhooks.emit(phone_number_id, ("message", (None, message)))
    return {"wamid": wamid, "type": kind, "previous_user_id": old_user, "user_id": customer.user_id,
            "wa_id": customer.wa_id}
