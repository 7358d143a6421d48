"""Before merging two contacts: check the pair, and show what differs and each one's conversations.

The merge page and ``POST /api/v1/contacts/merge/preview`` show both contacts, the fields whose
value differs (merge_fields.py: a pick per field), the tags the merged contact will have, and every
conversation of each with its number and message count; the other's conversation on a number where
the survivor has one is marked as the one it will be folded into.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beanie import PydanticObjectId

from app.db import parse_object_id
from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.merge_fields import FieldChoice, differing_fields
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.errors import ValidationFailed


@dataclass
class ConversationSide:
    """One conversation of either contact, for the merge page: its number and how many messages."""

    conversation: Conversation
    account_name: str
    messages: int
    folds_into: PydanticObjectId | None = None
    """For the other contact's: the survivor's conversation on the same number it would be folded into."""


@dataclass
class MergePreview:
    survivor: Contact
    other: Contact
    fields: list[FieldChoice]
    tags: list[str]
    survivor_conversations: list[ConversationSide] = field(default_factory=list)
    other_conversations: list[ConversationSide] = field(default_factory=list)


async def pair_of(workspace_id: PydanticObjectId, survivor_id: Any, other_id: Any) -> tuple[Contact, Contact]:
    """Both contacts of this workspace (404 otherwise: another workspace's too); 422 for the same
    contact twice or a WhatsApp group."""
    same = parse_object_id(survivor_id)
    if str(survivor_id) == str(other_id) or (same is not None and same == parse_object_id(other_id)):
        raise ValidationFailed("A contact cannot be merged with itself.", error_code="SAME_CONTACT",
                               details={"other_id": str(other_id)})
    survivor = await Contact.get_scoped(workspace_id, survivor_id)
    other = await Contact.get_scoped(workspace_id, other_id)
    for name, contact in (("survivor_id", survivor), ("other_id", other)):
        if contact.is_group:
            raise ValidationFailed("WhatsApp groups cannot be merged.", error_code="GROUP_NOT_MERGEABLE",
                                   details={name: str(contact.id)})
    return survivor, other


async def preview_merge(workspace_id: PydanticObjectId, survivor_id: Any, other_id: Any) -> MergePreview:
    survivor, other = await pair_of(workspace_id, survivor_id, other_id)
    sides = await _sides(workspace_id, [survivor.id, other.id])
    mine = sides.get(survivor.id, [])
    by_number = {s.conversation.account_id: s.conversation.id for s in mine}
    theirs = sides.get(other.id, [])
    for side in theirs:
        side.folds_into = by_number.get(side.conversation.account_id)
    return MergePreview(survivor, other, differing_fields(survivor, other),
                        list(dict.fromkeys([*survivor.tags, *other.tags])), mine, theirs)


async def _sides(workspace_id: PydanticObjectId, contact_ids: list[PydanticObjectId]
                 ) -> dict[PydanticObjectId, list[ConversationSide]]:
    conversations = await Conversation.find({"workspace_id": workspace_id, "contact_id": {"$in": contact_ids}}
                                            ).sort([("last_message_at", -1)]).to_list()
    counted = await Message.find({"workspace_id": workspace_id, "contact_id": {"$in": contact_ids}}).aggregate(
        [{"$group": {"_id": "$conversation_id", "n": {"$sum": 1}}}]).to_list()
    counts = {row["_id"]: row["n"] for row in counted}
    names = {a.id: a.name for a in await WhatsAppAccount.find(
        {"workspace_id": workspace_id, "_id": {"$in": list({c.account_id for c in conversations})}}).to_list()}
    sides: dict[PydanticObjectId, list[ConversationSide]] = {}
    for c in conversations:
        sides.setdefault(c.contact_id, []).append(
            ConversationSide(c, names.get(c.account_id, "A removed number"), counts.get(c.id, 0)))
    return sides
