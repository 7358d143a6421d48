"""WhatsApp groups' own webhooks: ``group_lifecycle_update`` (created, deleted),
``group_participants_update`` (joined, left, removed) and ``group_settings_update`` (subject,
description, picture). A group is a contact of kind "group" with one conversation per number
(app/domains/contacts/models.py); its messages arrive as ordinary ``messages`` with ``group_id``
(app/domains/messages/ingest.py).

Source: Meta's OpenAPI examples "Group Create Message", "Group Remove Participants" and "Group
Settings Update" (conformance/webhooks/meta_group_*.json); the value holds ``groups[]``, each with
``group_id``, ``type``, ``timestamp`` and, as the kind requires, ``subject``, ``description``,
``added_participants[]`` / ``removed_participants[]`` (``{input, wa_id}`` or ``{user_id, ...}``)
and ``errors[]`` when a request of ours failed.
"""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact
from app.domains.contacts.services import ContactService
from app.domains.conversations.services import ConversationService
from app.logging import get_logger
from app.realtime import LiveEvents

log = get_logger(__name__)

GROUP_FIELDS = frozenset({"group_lifecycle_update", "group_participants_update", "group_settings_update",
                          "group_status_update"})


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


class GroupUpdates:
    def __init__(self, live: LiveEvents, contacts: ContactService, conversations: ConversationService) -> None:
        self.live = live
        self.contacts = contacts
        self.conversations = conversations

    async def apply(self, workspace_id: PydanticObjectId, account: WhatsAppAccount, field: str,
                    value: dict[str, Any], notes: list[str]) -> None:
        for item in value.get("groups") or ():
            if not isinstance(item, dict) or not _text(item.get("group_id")):
                notes.append(f"{field}: an item without a group_id; kept raw")
                continue
            if item.get("errors"):
                notes.append(f"{field} {item.get('type')}: WhatsApp reported errors; kept raw")
            await self._apply_one(workspace_id, account, field, item)

    async def _apply_one(self, workspace_id: PydanticObjectId, account: WhatsAppAccount, field: str,
                         item: dict[str, Any]) -> None:
        group_id = str(item["group_id"])
        kind = str(item.get("type") or "")
        group = await self.contacts.group(workspace_id, group_id, subject=_text(item.get("subject")),
                                          description=_text(item.get("description")))
        added = await self._participants(workspace_id, item.get("added_participants"))
        removed = await self._participants(workspace_id, item.get("removed_participants"))
        if added:
            await self.contacts.add_participants(group, [c.id for c in added])
        if removed:
            await self.contacts.remove_participants(group, [c.id for c in removed])
        deleted = kind in ("group_delete", "group_deleted")
        if deleted != bool(group.group and group.group.deleted) and kind in ("group_delete", "group_deleted",
                                                                               "group_create"):
            await Contact.find_one(Contact.id == group.id).update({"$set": {"group.deleted": deleted}})
        conversation, created = await self.conversations.open_for(workspace_id, account.id, group.id, reopen=False)
        if created:
            await self.live.publish(workspace_id, "conversation.created", conversation_id=str(conversation.id))
        await self.live.publish(workspace_id, "conversation.updated", conversation_id=str(conversation.id))
        log.info("group update applied", field=field, kind=kind, group_id=group_id, added=len(added),
                 removed=len(removed))

    async def _participants(self, workspace_id: PydanticObjectId, items: Any) -> list[Contact]:
        found = []
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict):
                continue
            wa_id, user_id = _text(item.get("wa_id")), _text(item.get("user_id"))
            if not wa_id and not user_id:
                continue
            contact, _ = await self.contacts.upsert(workspace_id, wa_id=wa_id, user_id=user_id,
                                                    parent_user_id=_text(item.get("parent_user_id")),
                                                    username=_text(item.get("username")))
            found.append(contact)
        return found
