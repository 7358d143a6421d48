"""Merging two contacts into one: duplicates found, a preview of what differs, and a crash-safe merge.

``merge`` writes a :class:`ContactMerge` first (the admin's picks, a snapshot of the other contact,
both contacts locked by a unique index so no second merge of either starts meanwhile), then applies
STEPS in order, noting each on the record. Every step can run again and change nothing more, so a
merge cut short (a crash, a deploy) is finished by the next call for the same pair or by the sweeper
(``sweep``, a worker cron), and never loses a message:

1. ``release``: the other contact gives up its identities (they are unique per workspace, so the
   survivor can only take them once nobody holds them) and its key.
2. ``survivor``: one update gives the survivor the other's identities, tags, consent history,
   notes and the picked fields (merge_fields.py); it carries the merge's id in a consent entry and
   is conditioned on it, so it applies once. A contact a webhook created for one of those
   identifiers in between is absorbed: merged too, by the following steps.
3. ``conversations``: each of the other's conversations moves to the survivor; on a number where the
   survivor has one already, it is folded in: that conversation takes the newer activity, window
   and last message, the sum of unread, the union of labels, and keeps its assignee (once: it
   records the folded id in ``merged_from``); then the other's messages move into it and the empty
   conversation is deleted.
4. ``messages``: every message still naming the other contact (one being ingested during the merge)
   moves to the survivor's conversation on its number; group messages it wrote name the survivor.
5. ``remove``: the other contact is deleted; the merge is done, its lock released.
A while after the end, the sweeper runs steps 3 and 4 once more (``settled``): a message that was
being ingested for the other contact while it was merged lands on the survivor too.

After it, the other contact's id answers 404 and ``merged_into`` says where it went (for its page
to redirect there). Contacts of another workspace are never touched: they are not found (404).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import parse_object_id, utcnow
from app.domains.contacts.duplicates import DuplicatePair, find_duplicates
from app.domains.contacts.merge_fields import complete_picks, identities_of_snapshot, survivor_update
from app.domains.contacts.merge_preview import MergePreview, pair_of, preview_merge
from app.domains.contacts.models import Contact, ContactMerge, FoldedConversation, holding, sort_name_of
from app.domains.conversations.models import Conversation, ConversationStatus, MessagePreview
from app.domains.conversations.search import contact_tokens_of
from app.domains.conversations.services import ConversationService
from app.domains.messages.models import Message
from app.domains.messages.preview import preview_text
from app.domains.reports import rollups
from app.errors import Conflict, NotFound
from app.logging import get_logger

log = get_logger(__name__)

STEPS = ("release", "survivor", "conversations", "messages", "remove")
RESUME_AFTER = timedelta(seconds=60)
"""A running merge untouched this long was cut short: the sweeper finishes it."""
SETTLE_AFTER = timedelta(minutes=2)
"""The late pass of a finished merge (a message ingested for the other contact meanwhile)."""


class ContactMerger:
    def __init__(self, live: Any = None, integrations: Any = None) -> None:
        self.live = live
        self.integrations = integrations
        self.conversations = ConversationService()

    # -- finding and previewing -----------------------------------------------------------------
    async def duplicates(self, workspace_id: PydanticObjectId, limit: int = 50) -> list[DuplicatePair]:
        return await find_duplicates(workspace_id, limit)

    async def pair(self, workspace_id: PydanticObjectId, survivor_id: Any, other_id: Any) -> tuple[Contact, Contact]:
        return await pair_of(workspace_id, survivor_id, other_id)

    async def preview(self, workspace_id: PydanticObjectId, survivor_id: Any, other_id: Any) -> MergePreview:
        return await preview_merge(workspace_id, survivor_id, other_id)

    async def merged_into(self, workspace_id: PydanticObjectId, contact_id: Any) -> PydanticObjectId | None:
        """Where a merged contact went (following merges of merges), None when it was not merged."""
        current, hops = parse_object_id(contact_id), 0
        found = None
        while current is not None and hops < 10:
            merge = await ContactMerge.find_one({"workspace_id": workspace_id, "other_id": current,
                                                 "state": "done"})
            if merge is None:
                break
            found = current = merge.survivor_id
            hops += 1
        return found

    # -- merging ----------------------------------------------------------------------------------
    async def merge(self, workspace_id: PydanticObjectId, survivor_id: Any, other_id: Any, *,
                    choose: dict[str, str] | None = None, by: str = "") -> ContactMerge:
        """Merge ``other_id`` into ``survivor_id``. Calling it again for the same pair finishes a merge
        that was cut short, or returns the finished one."""
        earlier = await ContactMerge.find({"workspace_id": workspace_id, "survivor_id": parse_object_id(survivor_id),
                                           "other_id": parse_object_id(other_id), "state": {"$ne": "failed"}}
                                          ).sort([("created_at", -1)]).first_or_none()
        if earlier is not None:
            return earlier if earlier.state == "done" else await self.run(earlier)
        return await self.run(await self.plan(workspace_id, survivor_id, other_id, choose=choose, by=by))

    async def merge_and_show(self, workspace_id: PydanticObjectId, survivor_id: Any, other_id: Any, *,
                             choose: dict[str, str] | None = None, by: str = "") -> tuple[ContactMerge, Contact | None]:
        """``merge``, and the merged contact as it is now."""
        merge = await self.merge(workspace_id, survivor_id, other_id, choose=choose, by=by)
        return merge, await Contact.find_one({"_id": merge.survivor_id, "workspace_id": workspace_id})

    async def plan(self, workspace_id: PydanticObjectId, survivor_id: Any, other_id: Any, *,
                   choose: dict[str, str] | None = None, by: str = "") -> ContactMerge:
        """Check the pair and the picks, and write the merge record (nothing else changes yet)."""
        survivor, other = await self.pair(workspace_id, survivor_id, other_id)
        picks = complete_picks(survivor, other, choose)
        snapshot = other.model_dump()
        snapshot["identities"] = identities_of_snapshot(other)
        merge = ContactMerge(workspace_id=workspace_id, survivor_id=survivor.id, other_id=other.id, picks=picks,
                             by=by, other=snapshot, locked=[survivor.id, other.id])
        try:
            await merge.insert()
        except DuplicateKeyError:
            raise Conflict("One of these contacts is being merged already; try again in a minute.",
                           error_code="MERGE_RUNNING") from None
        log.info("contact merge planned", merge_id=str(merge.id), survivor_id=str(survivor.id),
                 other_id=str(other.id))
        return merge

    async def run(self, merge: ContactMerge) -> ContactMerge:
        """Apply the steps not applied yet, in order; the merge is done after the last one."""
        if await Contact.find_one({"_id": merge.survivor_id, "workspace_id": merge.workspace_id}) is None:
            await self._abandon(merge, "The surviving contact was deleted during the merge.")
            raise NotFound("contact not found", details={"id": str(merge.survivor_id)})
        for step in STEPS:
            if step not in merge.steps:
                await self.run_step(merge, step)
        return merge

    async def run_step(self, merge: ContactMerge, step: str) -> None:
        """One step (STEPS), then noted on the record. Running a step again changes nothing more."""
        await getattr(self, f"_{step}")(merge)
        now = utcnow()
        await ContactMerge.get_motor_collection().update_one(
            {"_id": merge.id}, {"$addToSet": {"steps": step}, "$set": {"updated_at": now}})
        if step not in merge.steps:
            merge.steps.append(step)
        merge.updated_at = now

    def _merged(self, merge: ContactMerge) -> list[PydanticObjectId]:
        return [merge.other_id, *merge.absorbed_ids]

    async def _release(self, merge: ContactMerge) -> None:
        raw = await Contact.get_motor_collection().find_one({"_id": merge.other_id, "workspace_id": merge.workspace_id})
        current = identities_of_snapshot(Contact.model_validate(raw)) if raw else []
        extra = [i for i in current if i not in (merge.other.get("identities") or [])]
        if extra:  # it gained one since the plan: the survivor takes it too
            await ContactMerge.get_motor_collection().update_one(
                {"_id": merge.id}, {"$addToSet": {"other.identities": {"$each": extra}}})
            merge.other["identities"] = [*(merge.other.get("identities") or []), *extra]
        await self._give_up_identities(merge, merge.other_id)

    async def _give_up_identities(self, merge: ContactMerge, contact_id: PydanticObjectId) -> None:
        suffix = "" if contact_id == merge.other_id else f":{contact_id}"
        await Contact.get_motor_collection().update_one(
            {"_id": contact_id, "workspace_id": merge.workspace_id},
            {"$set": {"identities": [], "key": f"merged:{merge.id}{suffix}", "updated_at": utcnow()}})

    async def _survivor(self, merge: ContactMerge) -> None:
        collection = Contact.get_motor_collection()
        other = Contact.model_validate(merge.other)
        for _ in range(5):
            raw = await collection.find_one({"_id": merge.survivor_id, "workspace_id": merge.workspace_id})
            if raw is None:
                return
            survivor = Contact.model_validate(raw)
            try:
                await collection.update_one({"_id": survivor.id, "consent.by": {"$ne": str(merge.id)}},
                                            survivor_update(merge, survivor, other))
                break
            except DuplicateKeyError:  # a webhook made a contact for one of the identities meanwhile
                await self._absorb(merge)
        else:
            raise RuntimeError(f"merge {merge.id}: the other contact's identities stay taken")
        await collection.update_one({"_id": merge.survivor_id}, {"$pull": {"identity_notes": {
            "kind": "linked", "other_contact_id": {"$in": self._merged(merge)}}}})
        raw = await collection.find_one({"_id": merge.survivor_id})
        if raw is not None:  # its inbox search words and list order follow the new name or number
            await collection.update_one({"_id": merge.survivor_id}, {"$set": {
                "search_tokens": contact_tokens_of(raw), "sort_name": sort_name_of(raw)}})

    async def _absorb(self, merge: ContactMerge) -> None:
        identities = list(merge.other.get("identities") or [])
        async for raw in Contact.get_motor_collection().find(
                {"workspace_id": merge.workspace_id, **holding(*identities),
                 "_id": {"$nin": [merge.survivor_id, merge.other_id]}}, projection={"_id": 1}):
            await ContactMerge.get_motor_collection().update_one(
                {"_id": merge.id}, {"$addToSet": {"absorbed_ids": raw["_id"]}})
            if raw["_id"] not in merge.absorbed_ids:
                merge.absorbed_ids.append(raw["_id"])
            await self._give_up_identities(merge, raw["_id"])

    async def _conversations(self, merge: ContactMerge) -> None:
        ws, survivor_id = merge.workspace_id, merge.survivor_id
        for contact_id in self._merged(merge):
            for conversation in await Conversation.find({"workspace_id": ws, "contact_id": contact_id}).to_list():
                target = await Conversation.find_one({"workspace_id": ws, "account_id": conversation.account_id,
                                                      "contact_id": survivor_id})
                if target is None:
                    try:
                        moved = await Conversation.get_motor_collection().update_one(
                            {"_id": conversation.id, "contact_id": contact_id},
                            {"$set": {"contact_id": survivor_id, "updated_at": utcnow()}})
                    except DuplicateKeyError:  # the survivor's arrived meanwhile: fold into it
                        target = await Conversation.find_one({"workspace_id": ws, "contact_id": survivor_id,
                                                              "account_id": conversation.account_id})
                    else:
                        if moved.modified_count:
                            await self._note_conversation(merge, conversation, conversation.id)
                        continue
                if target is not None:
                    await self._fold(merge, conversation, target)

    async def _note_conversation(self, merge: ContactMerge, conversation: Conversation,
                                 into: PydanticObjectId) -> None:
        folded = FoldedConversation(conversation_id=conversation.id, account_id=conversation.account_id, into_id=into)
        await ContactMerge.get_motor_collection().update_one(
            {"_id": merge.id, "conversations.conversation_id": {"$ne": conversation.id}},
            {"$push": {"conversations": folded.model_dump()}})
        if all(c.conversation_id != conversation.id for c in merge.conversations):
            merge.conversations.append(folded)

    async def _fold(self, merge: ContactMerge, source: Conversation, target: Conversation) -> None:
        """The other's conversation on a number where the survivor has one: its summary is added to
        the survivor's once (``merged_from``), its messages move there, and it is deleted."""
        await self._note_conversation(merge, source, target.id)
        newer = {"$gt": [{"$literal": source.last_message_at}, {"$ifNull": ["$last_message_at", None]}]}
        changes: dict[str, Any] = {
            "merged_from": {"$concatArrays": [{"$ifNull": ["$merged_from", []]}, [source.id]]},
            "unread_count": {"$add": [{"$ifNull": ["$unread_count", 0]}, source.unread_count]},
            "last_message_at": {"$max": ["$last_message_at", {"$literal": source.last_message_at}]},
            "last_inbound_at": {"$max": ["$last_inbound_at", {"$literal": source.last_inbound_at}]},
            "window_expires_at": {"$max": ["$window_expires_at", {"$literal": source.window_expires_at}]},
            "labels": {"$setUnion": [{"$ifNull": ["$labels", []]}, {"$literal": list(source.labels)}]},
            "assignee_id": {"$ifNull": ["$assignee_id", {"$literal": source.assignee_id}]},
            "team_id": {"$ifNull": ["$team_id", {"$literal": source.team_id}]},
            "updated_at": utcnow(),
            "sliced_at": utcnow(),
        }
        if source.last_message is not None and source.last_message_at is not None:
            changes["last_message"] = {"$cond": [newer, {"$literal": source.last_message.model_dump()},
                                                 "$last_message"]}
        if source.status is ConversationStatus.OPEN:  # the other's open thread stays in the inbox
            changes["status"], changes["snoozed_until"] = ConversationStatus.OPEN.value, None
        await Conversation.get_motor_collection().update_one(
            {"_id": target.id, "merged_from": {"$ne": source.id}}, [{"$set": changes}])
        messages = Message.get_motor_collection()
        for _ in range(3):  # a message being ingested into it meanwhile is moved by the next round
            moved = await messages.update_many({"workspace_id": merge.workspace_id, "conversation_id": source.id},
                                               {"$set": {"conversation_id": target.id, "contact_id": merge.survivor_id}})
            await self._count_moved(merge, moved.modified_count)
            if await messages.find_one({"workspace_id": merge.workspace_id, "conversation_id": source.id}) is None:
                await Conversation.get_motor_collection().delete_one({"_id": source.id})
                break

    async def _count_moved(self, merge: ContactMerge, moved: int) -> None:
        if moved:
            await ContactMerge.get_motor_collection().update_one({"_id": merge.id}, {"$inc": {"messages_moved": moved}})
            merge.messages_moved += moved

    async def _messages(self, merge: ContactMerge) -> None:
        ws, survivor_id = merge.workspace_id, merge.survivor_id
        messages = Message.get_motor_collection()
        for contact_id in self._merged(merge):
            for account_id in await messages.distinct("account_id", {"workspace_id": ws, "contact_id": contact_id}):
                target, _ = await self.conversations.open_for(ws, account_id, survivor_id, reopen=False)
                stray = {"workspace_id": ws, "contact_id": contact_id, "account_id": account_id,
                         "conversation_id": {"$ne": target.id}}
                newest = await messages.find({**stray, "direction": "inbound"}).sort([("_id", -1)]).limit(1).to_list(1)
                moved = await messages.update_many({"workspace_id": ws, "contact_id": contact_id,
                                                    "account_id": account_id},
                                                   {"$set": {"contact_id": survivor_id, "conversation_id": target.id,
                                                             "updated_at": utcnow()}})
                await self._count_moved(merge, moved.modified_count)
                if newest:  # written to a conversation that was folded meanwhile: the survivor's shows it
                    m = Message.model_validate(newest[0])
                    await self.conversations.record_inbound(target, m.timestamp, MessagePreview(
                        text=preview_text(m.type, m.content), direction="inbound", type=m.type,
                        status=m.status.value, message_id=m.id), unread=True, reopen=True)
            # In a group's thread, what they wrote names the survivor; and the survivor is the participant.
            groups = [raw["_id"] async for raw in Contact.get_motor_collection().find(
                {"workspace_id": ws, "kind": "group", "group.participant_ids": {"$in": [contact_id, survivor_id]}},
                projection={"_id": 1})]
            if groups:
                threads = [raw["_id"] async for raw in Conversation.get_motor_collection().find(
                    {"workspace_id": ws, "contact_id": {"$in": groups}}, projection={"_id": 1})]
                if threads:
                    await messages.update_many({"workspace_id": ws, "conversation_id": {"$in": threads},
                                                "sender_contact_id": contact_id},
                                               {"$set": {"sender_contact_id": survivor_id}})
                await Contact.get_motor_collection().update_many(
                    {"_id": {"$in": groups}, "group.participant_ids": contact_id},
                    {"$addToSet": {"group.participant_ids": survivor_id}})
                await Contact.get_motor_collection().update_many(
                    {"_id": {"$in": groups}}, {"$pull": {"group.participant_ids": contact_id}})

    async def _remove(self, merge: ContactMerge) -> None:
        ws = merge.workspace_id
        for contact_id in self._merged(merge):
            left = {"workspace_id": ws, "contact_id": contact_id}
            if await Conversation.find_one(left) is not None or await Message.find_one(left) is not None:
                await self._conversations(merge)  # arrived since those steps ran: moved first
                await self._messages(merge)
            gone = await Contact.get_motor_collection().find_one_and_delete(
                {"_id": contact_id, "workspace_id": ws}, projection={"created_at": 1, "consent.at": 1})
            if gone is not None:  # the reports count it no more (its consent history now counts on the survivor)
                await rollups.forget(ws, rollups.contact_times(gone))
        now = utcnow()
        await ContactMerge.get_motor_collection().update_one(
            {"_id": merge.id}, {"$set": {"state": "done", "finished_at": now, "updated_at": now},
                                "$unset": {"locked": ""}})
        merge.state, merge.finished_at, merge.locked = "done", now, None
        log.info("contacts merged", merge_id=str(merge.id), survivor_id=str(merge.survivor_id),
                 other_id=str(merge.other_id), messages_moved=merge.messages_moved)
        await self._announce(merge)

    async def _announce(self, merge: ContactMerge) -> None:
        """Open inboxes redraw the moved conversations and drop the folded ones; integrations hear
        ``contact.merged`` (once, by the merge's id)."""
        if self.live is not None:
            for folded in merge.conversations:
                if folded.into_id != folded.conversation_id:
                    await self.live.publish(merge.workspace_id, "conversation.removed",
                                            conversation_id=str(folded.conversation_id))
                await self.live.publish(merge.workspace_id, "conversation.updated",
                                        conversation_id=str(folded.into_id))
        if self.integrations is not None:
            from app.domains.contacts.schemas import contact_out
            from app.domains.subscriptions.models import EventType

            survivor = await Contact.get(merge.survivor_id)
            if survivor is not None:
                await self.integrations.emit(merge.workspace_id, EventType.CONTACT_MERGED, f"contact.merged:{merge.id}", {
                    "contact": contact_out(survivor).model_dump(mode="json"), "merged_contact_id": str(merge.other_id),
                    "merge_id": str(merge.id)}, merge.finished_at)

    async def _abandon(self, merge: ContactMerge, reason: str) -> None:
        """The survivor is gone (erased meanwhile): the other contact gets its identities back."""
        if "remove" not in merge.steps:
            try:
                await Contact.get_motor_collection().update_one(
                    {"_id": merge.other_id, "workspace_id": merge.workspace_id},
                    {"$set": {"identities": list(merge.other.get("identities") or []),
                              "key": merge.other.get("key")}})
            except DuplicateKeyError:
                log.warning("merge abandoned; identities taken meanwhile", merge_id=str(merge.id))
        await ContactMerge.get_motor_collection().update_one(
            {"_id": merge.id}, {"$set": {"state": "failed", "error": reason, "updated_at": utcnow()},
                                "$unset": {"locked": ""}})
        merge.state, merge.error = "failed", reason

    # -- the sweeper ------------------------------------------------------------------------------
    async def sweep(self, now: datetime | None = None, *, resume_after: timedelta = RESUME_AFTER,
                    settle_after: timedelta = SETTLE_AFTER) -> int:
        """Finish merges that were cut short, and give finished ones their late pass; returns how many."""
        now = now or utcnow()
        collection = ContactMerge.get_motor_collection()
        handled = 0
        for query, work in (({"state": "running", "updated_at": {"$lte": now - resume_after}}, self._resume),
                            ({"state": "done", "settled": False, "finished_at": {"$lte": now - settle_after}},
                             self._settle)):
            for raw in await collection.find(query, projection={"_id": 1, "updated_at": 1}).limit(100).to_list(None):
                # Claimed by moving updated_at: another worker's sweep skips it.
                claimed = await collection.find_one_and_update(
                    {"_id": raw["_id"], "updated_at": raw["updated_at"]}, {"$set": {"updated_at": utcnow()}},
                    return_document=ReturnDocument.AFTER)
                if claimed is None:
                    continue
                try:
                    await work(ContactMerge.model_validate(claimed))
                    handled += 1
                except Exception as exc:  # noqa: BLE001 - the next sweep tries again
                    log.warning("contact merge not finished", merge_id=str(raw["_id"]), error=type(exc).__name__)
        return handled

    async def _resume(self, merge: ContactMerge) -> None:
        try:
            await self.run(merge)
        except NotFound:
            pass  # abandoned: the survivor is gone

    async def _settle(self, merge: ContactMerge) -> None:
        await self._conversations(merge)
        await self._messages(merge)
        # Nothing needs the other contact's snapshot any more: the record keeps only who it was.
        await ContactMerge.get_motor_collection().update_one({"_id": merge.id}, {"$set": {
            "settled": True, "other": {"display_name": Contact.model_validate(merge.other).display_name
                                       if merge.other.get("key") else ""}}})
