"""Bulk actions on contacts: add or remove tags, set an attribute, opt out of or back in to marketing,
delete (admins only: the GDPR erase of each contact).

The contacts are given by id (at most MAX_BULK_IDS) or by a filter / search / segment (every contact
it matches). Either way they are walked in ``_id`` order, BATCH at a time, and each batch is one
``update_many`` (or one batched erase) narrowed to the contacts the action really changes, so
``changed`` counts real changes and a filter the action itself affects (``tag has_not vip`` + add
``vip``) still ends. Values are checked before anything is written: a tag or an attribute value the
type refuses is a 422 and no contact changes. Bulk edits do not push live updates to open inboxes
(they see the change on their next load) and do not enforce the per-contact cap on attribute count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from beanie import PydanticObjectId
from beanie.operators import NE, In
from pydantic import BaseModel, ConfigDict, Field

from app.db import utcnow
from app.domains.catalog.models import ContactAttribute
from app.domains.contacts.attribute_values import AttributeValueError, coerce_attribute
from app.domains.contacts.editing import MAX_TAGS, check_attribute_key, clean_tags
from app.domains.contacts.filters import ContactFilter
from app.domains.contacts.models import ConsentSource, Contact
from app.domains.contacts.services import consent_update
from app.domains.conversations.models import Conversation, ConversationStatus
from app.errors import Forbidden, ValidationFailed

if TYPE_CHECKING:
    from app.domains.contacts.directory import ContactDirectory

MAX_BULK_IDS = 1000
BATCH = 500
ERASE_BATCH = 100
MAX_ANNOUNCED = 2000
"""Live updates one bulk action sends at most (open inboxes refresh the rest on their next load): every
web process reads and renders each event once, so a change to 100,000 contacts must not flood them."""
BULK_ACTIONS = ("add_tags", "remove_tags", "set_attribute", "opt_out", "opt_in", "delete")
_DONE = {"add_tags": "Tags added", "remove_tags": "Tags removed", "set_attribute": "Attribute set",
         "opt_out": "Opted out of marketing", "opt_in": "Opted back in to marketing", "delete": "Deleted"}


class BulkAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["add_tags", "remove_tags", "set_attribute", "opt_out", "opt_in", "delete"] = Field(
        description="`delete` is for admins: it erases each contact with their conversations and messages (GDPR)")
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS,
                            description="For add_tags / remove_tags", examples=[["vip"]])
    key: str | None = Field(None, max_length=40, description="For set_attribute: the attribute's key",
                            examples=["plan"])
    value: str | int | float | bool | None = Field(
        None, description="For set_attribute: a value of the attribute's type (null or \"\" removes it)",
        examples=["pro"])


@dataclass(frozen=True)
class BulkResult:
    action: str
    matched: int
    """Contacts the ids, filter or segment chose."""
    changed: int
    """Of those, the ones the action changed (the others were already so)."""

    @property
    def sentence(self) -> str:
        """What happened, for the contacts page."""
        if self.action == "delete":
            return f"Deleted {self.changed} contact{'s' if self.changed != 1 else ''}."
        return f"{_DONE[self.action]}: {self.changed} of {self.matched} contact{'s' if self.matched != 1 else ''} changed."


def page_action(action: str, *, value: str = "", key: str = "") -> BulkAction:
    """The contacts page's bulk form as a BulkAction (tags typed comma-separated)."""
    if action not in BULK_ACTIONS:
        raise ValidationFailed("Choose an action.", error_code="ACTION_INVALID", details={"action": action[:40]})
    if action in ("add_tags", "remove_tags"):
        return BulkAction(action=action, tags=clean_tags(value))  # type: ignore[arg-type]
    if action == "set_attribute":
        return BulkAction(action=action, key=key, value=value)  # type: ignore[arg-type]
    return BulkAction(action=action)  # type: ignore[arg-type]


class ContactBulk:
    def __init__(self, directory: ContactDirectory) -> None:
        self.directory = directory
        self.collection = Contact.get_motor_collection()

    async def run(self, ws: PydanticObjectId, action: BulkAction, *, ids: list[str] | None,
                  spec: ContactFilter | None, q: str | None, segment_id: str | None, by: str | None,
                  source: ConsentSource, admin: bool) -> BulkResult:
        if action.action == "delete" and not admin:
            raise Forbidden("Only admins can delete contacts.", error_code="ADMIN_REQUIRED")
        if ids is not None:
            if not ids or len(ids) > MAX_BULK_IDS:
                raise ValidationFailed(f"Give 1 to {MAX_BULK_IDS} contact ids (or a filter for more).",
                                       error_code="TOO_MANY_IDS" if ids else "NOTHING_SELECTED",
                                       details={"ids": f"{len(ids)} given"})
            selection = await self.directory.selection(ws, ids=ids)
        elif spec is None and not q and not segment_id:
            raise ValidationFailed("Choose the contacts: ids, a filter or a segment.", error_code="NOTHING_SELECTED",
                                   details={"ids": "none", "filter": "none", "segment": "none"})
        else:
            selection = await self.directory.selection(ws, spec=spec, q=q, segment_id=segment_id)
        if action.action == "delete":
            return await self._erase(ws, selection)
        narrow, update = await self._change(ws, action, by=by, source=source)
        matched = changed = 0
        announced = 0
        async for batch in self._batches(selection):
            matched += len(batch)
            result = await self.collection.update_many({"_id": {"$in": batch}, "workspace_id": ws, **narrow}, update)
            changed += result.modified_count
            if result.modified_count and announced < MAX_ANNOUNCED:
                announced += await self._announce(ws, batch, MAX_ANNOUNCED - announced)
        return BulkResult(action.action, matched, changed)

    async def _announce(self, ws: PydanticObjectId, contact_ids: list[PydanticObjectId], limit: int) -> int:
        """Open inboxes show the change as for one contact's edit: a ``conversation.updated`` for each
        conversation of theirs still in play (not resolved), in one Redis round trip per batch."""
        conversations = await Conversation.find(
            Conversation.workspace_id == ws, In(Conversation.contact_id, contact_ids),
            NE(Conversation.status, ConversationStatus.RESOLVED)).limit(limit).to_list()
        await self.directory.editing.live.publish_many(
            [(ws, "conversation.updated", {"conversation_id": str(c.id)}) for c in conversations])
        return len(conversations)

    async def _change(self, ws: PydanticObjectId, action: BulkAction, *, by: str | None,
                      source: ConsentSource) -> tuple[dict[str, Any], dict[str, Any]]:
        """(which of the chosen contacts the action changes, the update): checked before any write."""
        now = utcnow()
        if action.action in ("add_tags", "remove_tags"):
            tags = clean_tags(action.tags)
            if not tags:
                raise ValidationFailed("Name the tags.", error_code="BAD_TAG", details={"tags": "none given"})
            # The workspace's spelling of a tag wins ("VIP" typed, "vip" used): tags stay one set, as on
            # a contact (set_tags drops repeats whatever their case).
            known = await self.collection.distinct("tags", {"workspace_id": ws})
            if action.action == "add_tags":
                spelled = {t.casefold(): t for t in known}
                tags = list(dict.fromkeys(spelled.get(t.casefold(), t) for t in tags))
                room = {f"tags.{MAX_TAGS - len(tags)}": {"$exists": False}} if len(tags) <= MAX_TAGS else {}
                return ({"$nor": [{"tags": {"$all": tags}}], **room},
                        {"$addToSet": {"tags": {"$each": tags}}, "$set": {"updated_at": now}})
            wanted = {t.casefold() for t in tags}
            variants = sorted({t for t in known if t.casefold() in wanted} | set(tags))
            return {"tags": {"$in": variants}}, {"$pull": {"tags": {"$in": variants}}, "$set": {"updated_at": now}}
        if action.action == "set_attribute":
            key = check_attribute_key(action.key)
            definition = await ContactAttribute.find_one_scoped(ws, ContactAttribute.key == key)
            try:
                value = coerce_attribute(definition, action.value, key=key)
            except AttributeValueError as exc:
                raise exc.as_validation_error() from None
            path = f"attributes.{key}"
            if value is None:
                return {path: {"$exists": True}}, {"$unset": {path: ""}, "$set": {"updated_at": now}}
            return {path: {"$ne": value}}, {"$set": {path: value, "updated_at": now}}
        opted_out = action.action == "opt_out"
        return ({"opted_out_marketing": {"$ne": True}} if opted_out else {"opted_out_marketing": True},
                consent_update(opted_out, source, by=by, note="bulk action", at=now))

    async def _batches(self, selection: dict[str, Any], size: int = BATCH) -> AsyncIterator[list[PydanticObjectId]]:
        """The chosen contacts' ids, ``size`` at a time, in _id order (each batch read after the last
        one is written, so contacts the action moves in or out of the filter are seen at most once)."""
        last: PydanticObjectId | None = None
        while True:
            query = selection if last is None else {"$and": [selection, {"_id": {"$gt": last}}]}
            batch = [raw["_id"] async for raw in self.collection.find(query, projection={"_id": 1}).sort(
                "_id", 1).limit(size)]
            if not batch:
                return
            yield batch
            last = batch[-1]
            if len(batch) < size:
                return

    async def _erase(self, ws: PydanticObjectId, selection: dict[str, Any]) -> BulkResult:
        matched = erased = 0
        async for batch in self._batches(selection, ERASE_BATCH):
            contacts = await Contact.find({"_id": {"$in": batch}, "workspace_id": ws}).to_list()
            matched += len(batch)
            erased += (await self.directory.erase_many(ws, contacts))["contacts"]
        return BulkResult("delete", matched, erased)
