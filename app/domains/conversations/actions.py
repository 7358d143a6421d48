"""What agents (and the JSON API) do to a conversation: assign, change status, snooze, label, note.

Every change bumps ``updated_at`` (the inbox catches up on it after a dropped connection), leaves a
system event in the thread as an internal message (who did what), and is published live.
Used by the inbox controllers now and by the JSON API (issue 8) later; no Litestar here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app.db import as_utc, utcnow
from app.domains.access.scope import Scope
from app.domains.access.services import visible_conversation
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation, ConversationStatus
from app.domains.conversations.services import internal_line
from app.domains.messages.models import Message
from app.domains.team.models import Team
from app.domains.workspaces.models import User
from app.errors import Forbidden, NotFound, ValidationFailed
from app.realtime import LiveEvents

MAX_NOTE = 4096
MAX_LABELS = 20
MAX_LABEL_LENGTH = 40
MAX_SNOOZE = timedelta(days=365)
PRIORITIES = ("urgent", "high", "medium", "low")
_LABEL = re.compile(r"^[\w][\w .:/&+-]*$", re.UNICODE)


SLICES = frozenset({"assignee_id", "team_id", "labels"})
"""What the reports filter conversations by: a change of one marks the conversation (Conversation.sliced_at)."""


def clean_labels(labels: list[str] | str) -> list[str]:
    """Trimmed, de-duplicated (case-insensitively), order kept; a bad label is a 422 naming it."""
    if isinstance(labels, str):
        labels = labels.split(",")
    cleaned: list[str] = []
    seen: set[str] = set()
    for raw in labels:
        label = " ".join(str(raw).split())
        if not label:
            continue
        if len(label) > MAX_LABEL_LENGTH or not _LABEL.match(label):
            raise ValidationFailed("Labels are words of up to 40 letters, digits, spaces or - _ . : / & +.",
                                   error_code="BAD_LABEL", details={"labels": label[:60]})
        if label.lower() not in seen:
            seen.add(label.lower())
            cleaned.append(label)
    if len(cleaned) > MAX_LABELS:
        raise ValidationFailed(f"At most {MAX_LABELS} labels per conversation.", error_code="TOO_MANY_LABELS",
                               details={"labels": f"{len(cleaned)} given"})
    return cleaned


def _actor(by: User | None) -> str:
    return (by.name or by.email) if by else "An integration"


async def mentioned_users(workspace_id: PydanticObjectId, body: str) -> list[str]:
    """The active agents a note names as ``@Their Name`` (case does not matter): each is told (live)."""
    if "@" not in body:
        return []
    text = body.lower()
    users = await User.find(User.workspace_id == workspace_id, User.active == True).to_list()  # noqa: E712
    return [str(u.id) for u in users if u.name and f"@{u.name.lower()}" in text]


class ConversationActions:
    """The write side of a conversation for agents and integrations."""

    def __init__(self, live: LiveEvents) -> None:
        self.live = live

    async def get(self, who: PydanticObjectId | Scope, conversation_id: str | PydanticObjectId) -> Conversation:
        """The conversation if ``who`` (a caller's scope, or a whole workspace) sees it, else NotFound."""
        return await visible_conversation(who, conversation_id)

    async def with_contact(self, conversation: Conversation) -> tuple[Conversation, Contact | None]:
        """The conversation as stored now, and its contact (what the API answers with)."""
        fresh = await Conversation.get(conversation.id) or conversation
        return fresh, await Contact.get(fresh.contact_id)

    async def team(self, workspace_id: PydanticObjectId, team_id: str | PydanticObjectId) -> Team:
        """A team of this workspace (404 otherwise), for assigning a conversation to it."""
        return await Team.get_scoped(workspace_id, team_id)

    # --- assignment, status, snooze, labels ------------------------------------------------------
    async def assign(self, conversation: Conversation, *, assignee_id: str | PydanticObjectId | None,
                     by: User | None, may_reassign: bool = True, only_if_unassigned: bool = False,
                     rule_name: str | None = None, only_if_assignee: PydanticObjectId | None = None,
                     event_text: str | None = None, **event_data: Any) -> Conversation:
        """Give the conversation to an agent of the same workspace (None: unassign). Without
        ``may_reassign`` (an agent, not a supervisor or admin) only a conversation that is unassigned or
        the caller's own can be given. ``only_if_unassigned`` (auto-assignment by the rule ``rule_name``):
        written only if nobody holds it in the database at that moment, so a person's choice made
        meanwhile stands; then ``conversation.assignee_id`` stays as it was. ``only_if_assignee`` (taking it
        from an agent who went offline): written only if that agent still holds it. ``event_text`` (and
        ``event_data``) replace the thread's line, which then says why."""
        if not may_reassign and conversation.assignee_id not in (None, by.id if by else None):
            raise Forbidden("Only a supervisor or an admin can reassign a conversation another agent has.",
                            error_code="REASSIGN_NOT_ALLOWED", details={"assignee_id": str(conversation.assignee_id)})
        assignee: User | None = None
        if assignee_id not in (None, ""):
            assignee = await User.get_scoped(conversation.workspace_id, assignee_id)
            if not assignee.active:
                raise ValidationFailed("That user is deactivated.", error_code="USER_INACTIVE",
                                       details={"assignee_id": str(assignee_id)})
        new_id = assignee.id if assignee else None
        if conversation.assignee_id == new_id:
            return conversation
        if only_if_unassigned or only_if_assignee is not None:
            held = {"assignee_id": only_if_assignee}  # None: nobody holds it
            if not await self._save(conversation, {"assignee_id": new_id}, only_if=held):
                return conversation
        else:
            await self._save(conversation, {"assignee_id": new_id})
        conversation.assignee_id = new_id
        if event_text is not None:
            text = event_text
        elif assignee is not None and rule_name is not None:
            text = f"Auto-assigned to {assignee.name or assignee.email} (rule {rule_name})"
        elif assignee is None:
            text = f"{_actor(by)} unassigned the conversation"
        elif by is not None and by.id == assignee.id:
            text = f"{_actor(by)} took the conversation"
        else:
            text = f"{_actor(by)} assigned the conversation to {assignee.name or assignee.email}"
        await self.record_event(conversation, "assigned", text, by, assignee_id=str(new_id) if new_id else None,
                                **({"rule": rule_name} if rule_name is not None else {}), **event_data)
        return conversation

    async def assign_team(self, conversation: Conversation, *, team_id: str | PydanticObjectId | None,
                          team_name: str | None, by: User | None) -> Conversation:
        """Route to a team; the caller checked the team exists in this workspace (teams live in their own area)."""
        new_id = PydanticObjectId(team_id) if team_id not in (None, "") else None
        if conversation.team_id == new_id:
            return conversation
        conversation.team_id = new_id
        await self._save(conversation, {"team_id": new_id})
        text = f"{_actor(by)} moved the conversation to team {team_name}" if new_id else f"{_actor(by)} removed the team"
        await self.record_event(conversation, "team", text, by, team_id=str(new_id) if new_id else None)
        return conversation

    async def set_status(self, conversation: Conversation, status: str, *, by: User | None) -> Conversation:
        """open / pending / resolved (snoozing has its own method because it needs a time)."""
        try:
            new = ConversationStatus(status)
        except ValueError:
            raise ValidationFailed("Status must be open, pending, snoozed or resolved.", error_code="BAD_STATUS",
                                   details={"status": str(status)[:40]}) from None
        if new is ConversationStatus.SNOOZED:
            raise ValidationFailed("Snoozing needs a time: use snooze.", error_code="SNOOZE_NEEDS_TIME",
                                   details={"status": "snoozed"})
        if conversation.status is new:
            return conversation
        old = conversation.status
        now = utcnow()
        changes: dict[str, Any] = {"status": new.value, "snoozed_until": None}
        facts: dict[str, Any] = {}
        if new is ConversationStatus.RESOLVED:  # how long it was open, and by whom it was closed (reports)
            opened = as_utc(conversation.opened_at or conversation.created_at)
            facts = {"open_seconds": max(0, round((now - opened).total_seconds())), "by_person": by is not None}
        elif old is ConversationStatus.RESOLVED:
            changes["opened_at"] = conversation.opened_at = now
        conversation.status = new
        conversation.snoozed_until = None
        await self._save(conversation, changes)
        verb = {ConversationStatus.RESOLVED: "resolved the conversation",
                ConversationStatus.PENDING: "marked the conversation pending",
                ConversationStatus.OPEN: "reopened the conversation"}[new]
        await self.record_event(conversation, new.value if new is not ConversationStatus.OPEN else "reopened",
                                f"{_actor(by)} {verb}", by, previous=old.value, **facts)
        return conversation

    async def snooze(self, conversation: Conversation, until: datetime, *, by: User | None) -> Conversation:
        """Hidden from the open list until ``until`` (or until the customer writes)."""
        until = as_utc(until)
        now = utcnow()
        if until <= now:
            raise ValidationFailed("Pick a time in the future.", error_code="SNOOZE_IN_PAST",
                                   details={"until": until.isoformat()})
        if until - now > MAX_SNOOZE:
            raise ValidationFailed("Snooze for at most a year.", error_code="SNOOZE_TOO_LONG",
                                   details={"until": until.isoformat()})
        conversation.status = ConversationStatus.SNOOZED
        conversation.snoozed_until = until
        await self._save(conversation, {"status": ConversationStatus.SNOOZED.value, "snoozed_until": until})
        await self.record_event(conversation, "snoozed",
                                f"{_actor(by)} snoozed the conversation until {until:%Y-%m-%d %H:%M} UTC", by,
                                until=until.isoformat())
        return conversation

    async def wake_snoozed(self, now: datetime | None = None) -> int:
        """Reopen conversations whose snooze ran out (a cron job calls this); returns how many."""
        now = now or utcnow()
        woken = 0
        async for conversation in Conversation.find({"status": ConversationStatus.SNOOZED.value,
                                                     "snoozed_until": {"$lte": now}}):
            conversation.status = ConversationStatus.OPEN
            conversation.snoozed_until = None
            await self._save(conversation, {"status": ConversationStatus.OPEN.value, "snoozed_until": None})
            await self.record_event(conversation, "reopened", "The snooze ended; the conversation is open again", None)
            woken += 1
        return woken

    async def set_labels(self, conversation: Conversation, labels: list[str] | str, *, by: User | None,
                         known: dict[str, str] | None = None) -> Conversation:
        """Replace the labels. With ``known`` (label id -> name, from the admin's label list) every
        label must be one of those ids; without it labels are free words."""
        if known is not None:
            wanted = [labels] if isinstance(labels, str) else list(labels)
            cleaned = list(dict.fromkeys(str(x).strip() for x in wanted if str(x).strip()))
            unknown = [x for x in cleaned if x not in known]
            if unknown:
                raise ValidationFailed("Pick labels from the list.", error_code="UNKNOWN_LABEL",
                                       details={"labels": ", ".join(unknown)[:100]})
            if len(cleaned) > MAX_LABELS:
                raise ValidationFailed(f"At most {MAX_LABELS} labels per conversation.", error_code="TOO_MANY_LABELS",
                                       details={"labels": f"{len(cleaned)} given"})
        else:
            cleaned = clean_labels(labels)
        if cleaned == conversation.labels:
            return conversation
        name = (lambda x: known.get(x, x)) if known else (lambda x: x)
        added = [name(x) for x in cleaned if x not in conversation.labels]
        removed = [name(x) for x in conversation.labels if x not in cleaned]
        conversation.labels = cleaned
        await self._save(conversation, {"labels": cleaned})
        parts = []
        if added:
            parts.append("added the label " + ", ".join(added))
        if removed:
            parts.append("removed the label " + ", ".join(removed))
        await self.record_event(conversation, "labels", f"{_actor(by)} {' and '.join(parts)}", by, labels=cleaned)
        return conversation

    async def set_priority(self, conversation: Conversation, priority: str | None, *, by: User | None,
                           by_name: str | None = None) -> Conversation:
        """urgent / high / medium / low, or None (or "none") to clear it."""
        new = None if priority in (None, "", "none") else priority
        if new is not None and new not in PRIORITIES:
            raise ValidationFailed("Priority must be urgent, high, medium, low or none.", error_code="BAD_PRIORITY",
                                   details={"priority": str(priority)[:40]})
        if conversation.priority == new:
            return conversation
        conversation.priority = new  # type: ignore[assignment]
        await self._save(conversation, {"priority": new})
        who = by_name or _actor(by)
        text = f"{who} set the priority to {new}" if new else f"{who} cleared the priority"
        await self.record_event(conversation, "priority", text, by, priority=new)
        return conversation

    async def mark_read(self, conversation: Conversation) -> bool:
        """The agent opened it: unread back to 0; returns whether anything changed."""
        if not conversation.unread_count:
            return False
        conversation.unread_count = 0
        await self._save(conversation, {"unread_count": 0})
        return True

    # --- notes and system events -----------------------------------------------------------------
    async def add_note(self, conversation: Conversation, text: str, *, by: User | None,
                       idempotency_key: str | None = None) -> Message:
        """An internal note: seen by agents only, never sent to WhatsApp. With ``idempotency_key`` (a
        workflow's step) a second call with the same key adds nothing and returns the first note."""
        body = (text or "").strip()
        if not body:
            raise ValidationFailed("Write something first.", error_code="EMPTY_NOTE", details={"text": "empty"})
        if len(body) > MAX_NOTE:
            raise ValidationFailed(f"Notes are at most {MAX_NOTE} characters.", error_code="NOTE_TOO_LONG",
                                   details={"text": f"{len(body)} characters"})
        content: dict[str, Any] = {"body": body}
        mentions = await mentioned_users(conversation.workspace_id, body)
        if mentions:
            content["mentions"] = mentions
        if idempotency_key is not None:
            found = await Message.find_one({"workspace_id": conversation.workspace_id,
                                            "idempotency_key": idempotency_key})
            if found is not None:
                return found
        try:
            note = await self._internal(conversation, "note", content, by, idempotency_key=idempotency_key)
        except DuplicateKeyError:  # the same step, done twice at once
            found = await Message.find_one({"workspace_id": conversation.workspace_id,
                                            "idempotency_key": idempotency_key})
            if found is None:
                raise
            return found
        await self._touch(conversation)
        return note

    async def record_event(self, conversation: Conversation, kind: str, text: str, by: User | None,
                           **data: Any) -> Message:
        """A system event line in the thread (assigned, resolved, reopened ...)."""
        return await self._internal(conversation, "event", {"kind": kind, "text": text, **data}, by)

    async def _internal(self, conversation: Conversation, type_: str, content: dict[str, Any],
                        by: User | None, *, idempotency_key: str | None = None) -> Message:
        message = internal_line(conversation, type_, content, by=by.id if by else None,
                                idempotency_key=idempotency_key)
        await message.insert()
        await self.live.publish(conversation.workspace_id, "message.created", direction="internal",
                                conversation_id=str(conversation.id), message_id=str(message.id))
        return message

    async def _touch(self, conversation: Conversation) -> None:
        await self._save(conversation, {})

    async def _save(self, conversation: Conversation, changes: dict[str, Any],
                    only_if: dict[str, Any] | None = None) -> bool:
        """Write the changes; with ``only_if`` (conditions on the stored document) False when they no longer
        hold (nothing written, nothing published)."""
        now = utcnow()
        if SLICES & changes.keys():  # the reports' team / agent / label figures follow it
            changes = {**changes, "sliced_at": now}
        result = await Conversation.find_one(
            Conversation.id == conversation.id, Conversation.workspace_id == conversation.workspace_id,
            only_if or {},
        ).update({"$set": {**changes, "updated_at": now}})
        if result.matched_count == 0:
            if only_if:
                return False
            raise NotFound("conversation not found", details={"id": str(conversation.id)})
        conversation.updated_at = now
        await self.live.publish(conversation.workspace_id, "conversation.updated", conversation_id=str(conversation.id))
        return True

