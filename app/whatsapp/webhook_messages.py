"""Models of the ``messages`` webhook value: contacts, inbound messages of every type, statuses, errors.

A message exposes its type and ``content`` (Meta's object named after the type, as sent), typed
bodies for the known types, and keeps any type or field we do not know in its extras. Bodies may
be missing when ``errors`` says why; nothing here insists on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from app.whatsapp.errors import GraphError, error_from_code
from app.whatsapp.webhook_values import WebhookModel

Timestamp = str | int  # Meta sends strings of epoch seconds; a few fields use numbers


def epoch_to_datetime(value: Timestamp) -> datetime:
    """``"1697043223"`` -> an aware UTC datetime."""
    return datetime.fromtimestamp(int(value), tz=UTC)


class _Timestamped(WebhookModel):
    timestamp: Timestamp

    @property
    def epoch_seconds(self) -> int:
        """The timestamp as an int of epoch seconds."""
        return int(self.timestamp)

    @property
    def occurred_at(self) -> datetime:
        """The timestamp as an aware UTC datetime."""
        return epoch_to_datetime(self.timestamp)


class WebhookError(WebhookModel):
    """One entry of an ``errors[]`` list (message, status or value level)."""

    code: int | None = None
    title: str | None = None
    message: str | None = None
    error_data: dict[str, Any] | None = None
    href: str | None = None

    @property
    def details(self) -> str | None:
        return (self.error_data or {}).get("details")

    def to_graph_error(self) -> GraphError:
        """The GraphError this entry stands for, with our retry policy and agent sentence."""
        return error_from_code(self.code, self.title or self.message, self.details)


class Metadata(WebhookModel):
    display_phone_number: str | None = None
    phone_number_id: str | None = None


class Profile(WebhookModel):
    name: str | None = None
    username: str | None = None


class Contact(WebhookModel):
    """The customer: ``wa_id`` (phone) when known, else the business-scoped ``user_id``."""

    profile: Profile | None = None
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None

    @property
    def key(self) -> str | None:
        """What to key the contact by: wa_id when present, else user_id (see WHATSAPP.md)."""
        return self.wa_id or self.user_id


class TextBody(WebhookModel):
    body: str | None = None


class MediaBody(WebhookModel):
    """image, video, document, audio and sticker: the media id to fetch, its type and hash."""

    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    url: str | None = None
    filename: str | None = None  # documents
    voice: bool | None = None  # audio: True for a recorded voice note
    animated: bool | None = None  # stickers


class LocationBody(WebhookModel):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None


class ReplyChoice(WebhookModel):
    id: str | None = None
    title: str | None = None
    description: str | None = None


class FlowReply(WebhookModel):
    response_json: str | None = None
    body: str | None = None
    name: str | None = None


class InteractiveBody(WebhookModel):
    type: str | None = None
    button_reply: ReplyChoice | None = None
    list_reply: ReplyChoice | None = None
    nfm_reply: FlowReply | None = None
    call_permission_reply: dict[str, Any] | None = None


class ButtonBody(WebhookModel):
    """A template quick-reply tap."""

    payload: str | None = None
    text: str | None = None


class ReactionBody(WebhookModel):
    message_id: str | None = None
    emoji: str | None = None

    @property
    def removed(self) -> bool:
        """An empty or missing emoji means the customer took the reaction back."""
        return not self.emoji


class OrderBody(WebhookModel):
    catalog_id: str | None = None
    text: str | None = None
    product_items: list[dict[str, Any]] | None = None


class SystemBody(WebhookModel):
    """``user_changed_number`` (``wa_id`` is the new number, ``user_id`` the new BSUID),
    ``user_changed_user_id`` (only the BSUID changed) or ``customer_identity_changed``."""

    type: str | None = None
    body: str | None = None
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    customer: str | None = None
    identity: str | None = None


class RevokeBody(WebhookModel):
    original_message_id: str | None = None


class MessageContext(WebhookModel):
    """The quoted message (``from``, ``id``) and forwarding flags."""

    from_: str | None = Field(default=None, alias="from")
    id: str | None = None
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None
    referred_product: dict[str, Any] | None = None


class MessageContent(WebhookModel):
    """A message's type and the object named after it (also the inner message of an edit)."""

    type: str
    context: MessageContext | None = None
    text: TextBody | None = None
    image: MediaBody | None = None
    video: MediaBody | None = None
    document: MediaBody | None = None
    audio: MediaBody | None = None
    sticker: MediaBody | None = None
    location: LocationBody | None = None
    contacts: list[dict[str, Any]] | None = None
    interactive: InteractiveBody | None = None
    button: ButtonBody | None = None
    reaction: ReactionBody | None = None
    order: OrderBody | None = None
    system: SystemBody | None = None
    unsupported: dict[str, Any] | None = None
    revoke: RevokeBody | None = None
    edit: EditBody | None = None

    @property
    def content(self) -> Any:
        """Meta's object for this type as sent (a dict; a list for contacts), or None when missing."""
        value = getattr(self, self.type, None) if self.type in type(self).model_fields else None
        if value is None:
            value = (self.model_extra or {}).get(self.type)
        if isinstance(value, BaseModel):
            return value.model_dump(by_alias=True, exclude_unset=True)
        return value

    @property
    def media(self) -> MediaBody | None:
        """The media object for image/video/document/audio/sticker messages."""
        value = getattr(self, self.type, None) if self.type in type(self).model_fields else None
        return value if isinstance(value, MediaBody) else None


class EditBody(WebhookModel):
    """The customer edited ``original_message_id``; ``message`` holds the new content."""

    original_message_id: str | None = None
    message: MessageContent | None = None


class Message(MessageContent, _Timestamped):
    """One inbound message. The body may be missing when ``errors`` explains why."""

    id: str
    from_: str | None = Field(default=None, alias="from")
    from_user_id: str | None = None
    group_id: str | None = None
    """Set when the message was written in a WhatsApp group the number takes part in: ``from`` and
    the contact are the participant, the conversation is the group's."""
    referral: dict[str, Any] | None = None
    errors: list[WebhookError] | None = None

    @property
    def sender(self) -> str | None:
        """The customer's key: their number, else their business-scoped user id."""
        return self.from_ or self.from_user_id


class MessageEcho(Message):
    """A message the business sent from the WhatsApp Business app (``smb_message_echoes``)."""

    to: str | None = None
    to_user_id: str | None = None


class Status(_Timestamped):
    """A delivery status of a message we sent: sent, delivered, read, played or failed."""

    id: str
    status: str
    recipient_id: str | None = None
    """The customer's number, or the group id when ``recipient_type == "group"``."""
    recipient_user_id: str | None = None
    recipient_type: str | None = None
    recipient_participant_id: str | None = None
    """For a group message: the participant this status is about (statuses come per participant)."""
    errors: list[WebhookError] | None = None
    conversation: dict[str, Any] | None = None
    pricing: dict[str, Any] | None = None
    biz_opaque_callback_data: str | None = None

    @property
    def error(self) -> GraphError | None:
        """The first error as a GraphError (``failed`` statuses), else None."""
        return self.errors[0].to_graph_error() if self.errors else None


class MessagesValue(WebhookModel):
    """The value of a ``messages`` change: contacts + messages, or statuses, or errors."""

    messaging_product: str | None = None
    metadata: Metadata | None = None
    contacts: list[Contact] | None = None
    messages: list[Message] | None = None
    message_echoes: list[MessageEcho] | None = None
    statuses: list[Status] | None = None
    errors: list[WebhookError] | None = None

    def contact_for(self, message: Message) -> Contact | None:
        """The contact entry that sent ``message``, matched by wa_id, else by user_id."""
        contacts = self.contacts or []
        by_number = (c for c in contacts if message.from_ and c.wa_id == message.from_)
        by_user_id = (c for c in contacts if message.from_user_id and c.user_id == message.from_user_id)
        return next(by_number, None) or next(by_user_id, None)


# EditBody refers to MessageContent and back; resolve the forward references now both exist.
MessageContent.model_rebuild()
EditBody.model_rebuild()
