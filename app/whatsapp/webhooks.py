"""Typed models of Meta's webhook envelope, and iterators over its messages, statuses and changes.

Every model allows extra fields and every field not sent stays unset, so
``envelope.model_dump(by_alias=True, exclude_unset=True)`` gives back the payload Meta sent:
nothing we do not know yet is lost. ``field == "messages"`` (and the echoes of
``smb_message_echoes``) get typed values; every other field keeps its raw value, with typed
views for the few the product reacts to (template status and quality, phone number quality
and name, account updates). Timestamps stay as Meta sent them (strings of epoch seconds);
``epoch_seconds`` and ``occurred_at`` convert them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, PrivateAttr, ValidationError, model_validator

from app.whatsapp.webhook_messages import (
    Contact,
    EditBody,
    MediaBody,
    Message,
    MessageContent,
    MessageEcho,
    MessagesValue,
    Metadata,
    Status,
    WebhookError,
    epoch_to_datetime,
)
from app.whatsapp.webhook_values import (
    AccountUpdate,
    PhoneNumberNameUpdate,
    PhoneNumberQualityUpdate,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
    WebhookModel,
)

__all__ = [
    "WebhookParseError", "WebhookEnvelope", "Entry", "Change", "MessagesValue", "Metadata", "Contact",
    "Message", "MessageContent", "MessageEcho", "MediaBody", "EditBody", "Status", "WebhookError",
    "InboundMessage", "InboundStatus",
    "EntryChange", "Rejected", "parse_envelope", "iter_rejected", "iter_messages", "iter_statuses", "iter_echoes", "iter_changes",
    "epoch_to_datetime", "TemplateStatusUpdate", "TemplateQualityUpdate", "TemplateCategoryUpdate",
    "PhoneNumberQualityUpdate", "PhoneNumberNameUpdate", "AccountUpdate",
]


class WebhookParseError(ValueError):
    """The body is not JSON, or not shaped like a WhatsApp webhook envelope."""


_VALUE_MODELS: dict[str, type[WebhookModel]] = {
    "messages": MessagesValue,
    "smb_message_echoes": MessagesValue,
    "message_template_status_update": TemplateStatusUpdate,
    "message_template_quality_update": TemplateQualityUpdate,
    "template_category_update": TemplateCategoryUpdate,
    "phone_number_quality_update": PhoneNumberQualityUpdate,
    "phone_number_name_update": PhoneNumberNameUpdate,
    "account_update": AccountUpdate,
}


@dataclass(frozen=True)
class Rejected:
    """An item of a change we could not read (a location whose latitude is "n/a"): the rest of the
    body is applied without it; the raw body keeps it, and this says where and why."""

    field: str
    where: str
    """e.g. ``messages[2]``, or ``value`` when the change as a whole could not be read."""
    reason: str

    def __str__(self) -> str:
        return f"{self.field} {self.where} not usable: {self.reason}"


def _reason(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(part) for part in err['loc']) or '<root>'}: {err['msg']}"
                     for err in error.errors()[:3])


_ITEM_MODELS: dict[str, type[WebhookModel]] = {"messages": Message, "statuses": Status, "message_echoes": MessageEcho,
                                                "contacts": Contact, "errors": WebhookError}


def _type_leniently(field_name: str, model: type[WebhookModel], raw: dict[str, Any]) -> tuple[Any, list[Rejected]]:
    """``raw`` typed with ``model``; an item that does not fit (one message of several) is left out
    and reported, so one bad item never costs the others. A value whose own fields do not fit stays
    raw (kept, not applied)."""
    try:
        return model.model_validate(raw), []
    except ValidationError as error:
        if model is not MessagesValue:
            return dict(raw), [Rejected(field_name, "value", _reason(error))]
    kept = dict(raw)
    rejected = []
    for key, item_model in _ITEM_MODELS.items():
        items = raw.get(key)
        if not isinstance(items, list):
            continue
        good = []
        for index, item in enumerate(items):
            try:
                item_model.model_validate(item)
                good.append(item)
            except ValidationError as item_error:
                rejected.append(Rejected(field_name, f"{key}[{index}]", _reason(item_error)))
        kept[key] = good
    try:
        return model.model_validate(kept), rejected
    except ValidationError as error:
        return dict(raw), [Rejected(field_name, "value", _reason(error))]


class Change(WebhookModel):
    """One change: ``value`` is typed for the fields above, and the raw dict for every other (or for
    a typed field whose value could not be read: see ``rejected``)."""

    field: str
    value: Any
    _rejected: list[Rejected] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _type_the_value(self) -> Change:
        if not isinstance(self.value, (dict, BaseModel)):
            raise ValueError("change value must be an object")
        model = _VALUE_MODELS.get(self.field)
        if model is not None and isinstance(self.value, dict):
            self.value, self._rejected = _type_leniently(self.field, model, self.value)
        return self

    @property
    def rejected(self) -> list[Rejected]:
        """The items of this change left out because they could not be read."""
        return self._rejected

    @property
    def raw_value(self) -> dict[str, Any]:
        """The value exactly as Meta sent it."""
        if isinstance(self.value, BaseModel):
            return self.value.model_dump(by_alias=True, exclude_unset=True)
        return dict(self.value)


class Entry(WebhookModel):
    id: str
    time: int | None = None
    changes: list[Change]


class WebhookEnvelope(WebhookModel):
    object: str
    entry: list[Entry]


def parse_envelope(raw: bytes | str | Mapping[str, Any]) -> WebhookEnvelope:
    """The typed envelope of a webhook body; WebhookParseError on bad JSON or a foreign shape."""
    if isinstance(raw, (bytes, bytearray, str)):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookParseError(f"webhook body is not valid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise WebhookParseError("webhook body must be a JSON object")
    try:
        return WebhookEnvelope.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise WebhookParseError(f"not a WhatsApp webhook envelope: {problems}") from None


@dataclass(frozen=True)
class InboundMessage:
    """A message with where it arrived (WABA, our number) and who sent it."""

    waba_id: str
    phone_number_id: str | None
    display_phone_number: str | None
    contact: Contact | None
    message: Message
    value_errors: list[WebhookError] = field(default_factory=list)

    @property
    def errors(self) -> list[WebhookError]:
        """Errors on the message itself and on its change value (Meta uses both)."""
        return [*(self.message.errors or ()), *self.value_errors]


@dataclass(frozen=True)
class InboundStatus:
    """A status with the WABA and our number it concerns."""

    waba_id: str
    phone_number_id: str | None
    display_phone_number: str | None
    status: Status


@dataclass(frozen=True)
class EntryChange:
    """One change of one entry, with the entry's WABA id and time."""

    waba_id: str
    time: int | None
    change: Change

    @property
    def field(self) -> str:
        return self.change.field

    @property
    def value(self) -> Any:
        return self.change.value


def iter_changes(envelope: WebhookEnvelope) -> Iterator[EntryChange]:
    """Every change of every entry, in order."""
    for entry in envelope.entry:
        for change in entry.changes:
            yield EntryChange(entry.id, entry.time, change)


def iter_rejected(envelope: WebhookEnvelope) -> Iterator[Rejected]:
    """Every item left out of the typed envelope because it could not be read."""
    for entry in envelope.entry:
        for change in entry.changes:
            yield from change.rejected


def _messages_values(envelope: WebhookEnvelope, field_name: str) -> Iterator[tuple[str, MessagesValue]]:
    for item in iter_changes(envelope):
        if item.field == field_name and isinstance(item.value, MessagesValue):
            yield item.waba_id, item.value


def iter_messages(envelope: WebhookEnvelope) -> Iterator[InboundMessage]:
    """Every inbound customer message (``field == "messages"``) with its contact."""
    for waba_id, value in _messages_values(envelope, "messages"):
        metadata = value.metadata or Metadata()
        for message in value.messages or ():
            yield InboundMessage(
                waba_id, metadata.phone_number_id, metadata.display_phone_number,
                value.contact_for(message), message, list(value.errors or ()),
            )


def iter_echoes(envelope: WebhookEnvelope) -> Iterator[InboundMessage]:
    """Messages the business sent from the WhatsApp Business app (coexistence echoes)."""
    for waba_id, value in _messages_values(envelope, "smb_message_echoes"):
        metadata = value.metadata or Metadata()
        for echo in value.message_echoes or ():
            contact = next((c for c in value.contacts or () if echo.to and c.wa_id == echo.to), None)
            yield InboundMessage(waba_id, metadata.phone_number_id, metadata.display_phone_number, contact, echo)


def iter_statuses(envelope: WebhookEnvelope) -> Iterator[InboundStatus]:
    """Every status of a message we sent. Call statuses (``field == "calls"``) are not included."""
    for waba_id, value in _messages_values(envelope, "messages"):
        metadata = value.metadata or Metadata()
        for status in value.statuses or ():
            yield InboundStatus(waba_id, metadata.phone_number_id, metadata.display_phone_number, status)
