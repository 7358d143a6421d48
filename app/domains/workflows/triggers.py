"""What starts runs: live events (messages, conversations, contact changes), timers, dates and segments.

The listener (``on_live_event``) runs in every process that publishes; it asks a per-process cached
question (which trigger types do this workspace's enabled workflows have?) and queues one arq job
(``workflow_event``, job id = the event's id) only when one of them cares. A workspace without
workflows pays no database operation on the webhook path. The job reads the message or conversation
and starts runs through the engine; each start has a key (the message, the conversation, the date
value ...) unique per workflow, so a job run twice starts nothing twice.

"No reply" and date triggers keep timers (``WorkflowTimer``, read by their due time's index); the
tick fires the due ones after checking that they still hold (the other side did not write; the
date did not move). Date timers, and segment entries, come from a scan of the contacts changed since
the last scan (the contacts' ``updated_at`` index), so edits, API calls, imports and bulk changes are
all seen; turning a date workflow on scans its contacts once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from app.cache import SharedCache
from app.changes import Changes
from app.db import as_utc, parse_object_id, utcnow
from app.domains.business_hours.rules import business_deadline
from app.domains.contacts.filters import contact_query, parse_filter
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.messages.preview import preview_text
from app.domains.segments.models import Segment
from app.domains.workflows.conditions import has_word
from app.domains.workflows.engine import WorkflowEngine
from app.domains.workflows.models import Workflow, WorkflowRun, WorkflowTimer
from app.logging import get_logger

log = get_logger(__name__)

TOPIC = "workflows"
_CACHE_SECONDS = 300.0  # a change is heard at once (app/changes.py); this bounds a lost one
MESSAGE_TRIGGERS = frozenset({"message_received", "no_agent_reply", "no_customer_reply", "contact_created"})
NOT_WRITING = frozenset({"reaction", "system", "edit", "revoke", "request_welcome", "ephemeral"})
SCAN_OVERLAP = timedelta(seconds=5)
"""Each scan looks this far back past the last one (clocks of processes, writes in flight)."""



class NotYet(Exception):
    """The message's conversation does not show its service window yet (ingestion is finishing): try later."""


Enqueue = Callable[[str, str, dict[str, str]], Awaitable[Any]]


def message_words(message: Message) -> str:
    """The words a customer wrote: a text's body, a button's or list's title, a caption."""
    content = message.content if isinstance(message.content, dict) else {}
    if message.type == "text":
        return str(content.get("body") or "")
    if message.type == "button":
        return str(content.get("text") or content.get("payload") or "")
    if message.type == "interactive":
        reply = content.get("button_reply") or content.get("list_reply") or {}
        return str(reply.get("title") or "")
    return preview_text(message.type, content) if content.get("caption") else ""


def matches(trigger: dict[str, Any], text: str) -> bool:
    """Does a message_received trigger fire for ``text``?"""
    how = trigger.get("match", "any")
    words = [w for w in trigger.get("keywords", []) if str(w).strip()]
    if how == "any":
        return True
    if how == "keywords":
        return has_word(text, words)
    if how == "phrase":
        return any(" ".join(w.split()).casefold() in " ".join(text.split()).casefold() for w in words)
    if how == "exact":
        return any(" ".join(w.split()).casefold() == " ".join(text.split()).casefold() for w in words)
    if how == "regex":
        try:
            return re.search(trigger.get("pattern") or "", text, re.IGNORECASE) is not None
        except re.error:
            return False
    return False


class WorkflowTriggers:
    def __init__(self, engine: WorkflowEngine, enqueue: Enqueue, *, changes: Changes | None = None) -> None:
        self.engine = engine
        self._enqueue = enqueue
        self._cache: SharedCache[list[Workflow]] = SharedCache(TOPIC, _CACHE_SECONDS, changes)

    # -- which workflows listen (cached per process) -----------------------------------------------
    async def enabled(self, workspace_id: PydanticObjectId | str) -> list[Workflow]:
        key = str(workspace_id)

        async def load() -> list[Workflow]:
            oid = parse_object_id(key)
            return await Workflow.find({"workspace_id": oid, "enabled": True}).to_list() if oid else []

        return await self._cache.get(key, load)

    async def types(self, workspace_id: PydanticObjectId | str) -> set[str]:
        return {str(w.trigger.get("type")) for w in await self.enabled(workspace_id)}

    async def changed(self, workspace_id: PydanticObjectId | str) -> None:
        """A workflow of the workspace changed: no process starts runs from its old list."""
        await self._cache.changed(workspace_id)

    # -- the LiveEvents listener: a cached question, then one job ---------------------------------
    async def on_live_event(self, workspace_id: PydanticObjectId | str, event: str, data: dict[str, Any]) -> None:
        kind, ident = _job_of(event, data)
        if kind is None or ident is None:
            return
        types = await self.types(workspace_id)
        # A customer's message may answer a run; a changed attribute may move a run's wait ("2 h before
        # appointment_at"): both matter wherever a workflow is on. The rest only to their triggers.
        if not types or not (kind == "inbound" or types & _CARES[kind] or (kind == "contact" and data.get("attributes"))):
            return
        await self._enqueue(str(workspace_id), kind, {k: str(v) for k, v in data.items()
                                                      if k in ("message_id", "conversation_id", "contact_id")}
                            | {"tags_added": ",".join(data.get("tags_added", [])),
                               "tags_removed": ",".join(data.get("tags_removed", [])),
                               "attributes": ",".join(data.get("attributes", []))})

    # -- the job -----------------------------------------------------------------------------------
    async def handle(self, workspace_id: str, kind: str, ids: dict[str, str]) -> str:
        wid = parse_object_id(workspace_id)
        if wid is None:
            return "bad id"
        workflows = await self.enabled(wid)
        if kind in ("inbound", "outbound", "internal"):
            message = await Message.find_one({"_id": parse_object_id(ids.get("message_id")), "workspace_id": wid})
            if message is None:
                return "no message"
            if kind == "inbound":
                return await self._inbound(wid, message, workflows)
            if kind == "outbound":
                return await self._outbound(message, workflows)
            return await self._internal(message, workflows)
        if kind == "conversation":
            conversation = await Conversation.find_one({"_id": parse_object_id(ids.get("conversation_id")),
                                                        "workspace_id": wid})
            if conversation is None:
                return "no conversation"
            return await self._start_all(workflows, "conversation_opened", conversation.contact_id, conversation,
                                         f"opened:{conversation.id}:{as_utc(conversation.created_at).timestamp()}",
                                         {"type": "conversation_opened"})
        if kind == "contact":
            return await self._contact_changed(wid, ids, workflows)
        if kind == "new_contact":
            contact_id = parse_object_id(ids.get("contact_id"))
            if contact_id is None:
                return "bad id"
            return await self._start_all(workflows, "contact_created", contact_id, None, f"contact:{contact_id}",
                                         {"type": "contact_created"})
        return "unknown kind"

    async def _inbound(self, wid: PydanticObjectId, message: Message, workflows: list[Workflow]) -> str:
        if message.direction != "inbound" or message.sender_contact_id is not None or message.type in NOT_WRITING:
            return "not a customer writing"
        text = message_words(message)
        routed = await self.engine.deliver_reply(wid, message.conversation_id, str(message.id), text)
        if routed is not None and routed.startswith("answer"):
            return routed
        conversation = await Conversation.find_one({"_id": message.conversation_id})
        if conversation is None:
            return "no conversation"
        if not conversation.window_open() and as_utc(message.timestamp) > utcnow() - timedelta(hours=23):
            raise NotYet(str(message.id))  # a reply step would be refused for a window about to be recorded
        started = 0
        for workflow in workflows:
            trigger = workflow.trigger
            if not _on_number(trigger, conversation):
                continue
            kind = trigger.get("type")
            if kind == "message_received" and matches(trigger, text):
                started += await self._start(workflow, message.contact_id, conversation, f"message:{message.id}",
                                             {"type": "message_received", "message_id": str(message.id),
                                              "text": text[:500]}, text)
            elif kind == "no_agent_reply":
                await self._start_clock(workflow, conversation, "no_agent_reply", message.timestamp, keep=True)
            elif kind == "no_customer_reply":
                await WorkflowTimer.find({"workflow_id": workflow.id, "key": f"c:{conversation.id}"}).delete()
            elif kind == "contact_created" and await _first_of_contact(message):
                started += await self._start(workflow, message.contact_id, conversation, f"contact:{message.contact_id}",
                                             {"type": "contact_created"}, text)
        return f"{routed or 'no run waiting'}; {started} started"

    async def _outbound(self, message: Message, workflows: list[Workflow]) -> str:
        if message.direction != "outbound":
            return "not ours"
        conversation = await Conversation.find_one({"_id": message.conversation_id})
        if conversation is None:
            return "no conversation"
        by_person = message.via != "automation"
        for workflow in workflows:
            kind = workflow.trigger.get("type")
            if kind == "no_customer_reply" and _on_number(workflow.trigger, conversation):
                await self._start_clock(workflow, conversation, "no_customer_reply", message.timestamp, keep=False)
            elif kind == "no_agent_reply" and by_person:
                await WorkflowTimer.find({"workflow_id": workflow.id, "key": f"c:{conversation.id}"}).delete()
        return "clocks set"

    async def _internal(self, message: Message, workflows: list[Workflow]) -> str:
        content = message.content if isinstance(message.content, dict) else {}
        kind = {"resolved": "conversation_resolved", "reopened": "conversation_opened"}.get(
            str(content.get("kind")) if message.type == "event" else "")
        if kind is None:
            return "nothing"
        conversation = await Conversation.find_one({"_id": message.conversation_id})
        if conversation is None:
            return "no conversation"
        return await self._start_all(workflows, kind, conversation.contact_id, conversation, f"event:{message.id}",
                                     {"type": kind})

    async def _contact_changed(self, wid: PydanticObjectId, ids: dict[str, str], workflows: list[Workflow]) -> str:
        contact_id = parse_object_id(ids.get("contact_id"))
        added = {t.casefold() for t in ids.get("tags_added", "").split(",") if t}
        removed = {t.casefold() for t in ids.get("tags_removed", "").split(",") if t}
        attributes = {a for a in ids.get("attributes", "").split(",") if a}
        if contact_id is None:
            return "bad id"
        if attributes:  # a wait until a date attribute is worked out again from the new value
            await WorkflowRun.find({"workspace_id": wid, "contact_id": contact_id,
                                    "waiting.kind": {"$in": ["time", "until_reply"]}}
                                   ).update({"$set": {"wake_at": utcnow()}})
        started = 0
        stamp = int(utcnow().timestamp())
        for workflow in workflows:
            trigger = workflow.trigger
            kind = trigger.get("type")
            tag = str(trigger.get("tag") or "").casefold()
            if (kind == "tag_added" and tag in added) or (kind == "tag_removed" and tag in removed) or (
                    kind == "attribute_changed" and attributes and
                    (not trigger.get("attribute") or trigger["attribute"] in attributes)):
                started += await self._start(workflow, contact_id, None, f"{kind}:{contact_id}:{stamp}",
                                             {"type": kind, "text": trigger.get("tag") or trigger.get("attribute")},
                                             None)
        return f"{started} started"

    async def _start_all(self, workflows: list[Workflow], kind: str, contact_id: PydanticObjectId,
                         conversation: Conversation | None, key: str, trigger: dict[str, Any]) -> str:
        started = 0
        for workflow in workflows:
            if workflow.trigger.get("type") == kind and (conversation is None or _on_number(workflow.trigger,
                                                                                            conversation)):
                started += await self._start(workflow, contact_id, conversation, key, trigger, None)
        return f"{started} started"

    async def _start(self, workflow: Workflow, contact_id: PydanticObjectId, conversation: Conversation | None,
                     key: str, trigger: dict[str, Any], text: str | None) -> int:
        contact = await Contact.find_one({"_id": contact_id, "workspace_id": workflow.workspace_id})
        if contact is None:
            return 0
        run = await self.engine.start(workflow, contact, conversation=conversation, trigger=trigger, dedupe_key=key,
                                      message_text=text)
        return int(run is not None)

    async def _start_clock(self, workflow: Workflow, conversation: Conversation, kind: str, since: Any, *,
                           keep: bool) -> None:
        """Start (or, ``keep`` False, restart) the conversation's "no reply" clock for the workflow; in business
        hours only when the trigger says so (due when that much open time has passed)."""
        minutes = int(workflow.trigger.get("minutes") or 60)
        since = as_utc(since)
        if workflow.trigger.get("business_hours"):
            settings = await self.engine.tools.business_hours.cached(workflow.workspace_id)
            due = business_deadline(settings, since, minutes * 60)
        else:
            due = since + timedelta(minutes=minutes)
        fields = {"since": since, "due_at": due, "kind": kind, "contact_id": conversation.contact_id,
                  "conversation_id": conversation.id, "workspace_id": conversation.workspace_id}
        await _upsert_timer(workflow, f"c:{conversation.id}", fields, keep=keep)

    # -- the cron: timers, dates, segments ---------------------------------------------------------
    async def tick(self) -> dict[str, int]:
        return {"timers": await self.fire_timers(), "dates": await self.scan("date_reached"),
                "segments": await self.scan("segment_entered"), "woken": await self.engine.due()}

    async def fire_timers(self, limit: int = 500) -> int:
        fired = 0
        for _ in range(limit):
            raw = await WorkflowTimer.get_motor_collection().find_one_and_delete({"due_at": {"$lte": utcnow()}},
                                                                                 sort=[("due_at", 1)])
            if raw is None:
                break
            timer = WorkflowTimer.model_validate(raw)
            workflow = await Workflow.find_one({"_id": timer.workflow_id, "enabled": True})
            if workflow is None:
                continue
            if timer.kind == "date_reached":
                fired += await self._date_due(workflow, timer)
                continue
            conversation = await Conversation.find_one({"_id": timer.conversation_id})
            if conversation is None or not await _still_silent(timer):
                continue
            fired += await self._start(workflow, timer.contact_id, conversation,
                                       f"{timer.kind}:{timer.conversation_id}:{as_utc(timer.since).timestamp()}",
                                       {"type": timer.kind}, None)
        return fired

    async def _date_due(self, workflow: Workflow, timer: WorkflowTimer) -> int:
        contact = await Contact.find_one({"_id": timer.contact_id, "workspace_id": workflow.workspace_id})
        value = _moment_of(contact, workflow) if contact is not None else None
        if contact is None or value is None or value != as_utc(timer.since):
            return 0  # the date moved or went: the scan made (or will make) the timer of the new one
        run = await self.engine.start(workflow, contact, trigger={"type": "date_reached",
                                                                  "text": f"{workflow.trigger.get('attribute')} "
                                                                          f"{value:%Y-%m-%d %H:%M} UTC"},
                                      dedupe_key=f"date:{contact.id}:{value.isoformat()}")
        return int(run is not None)

    async def scan(self, kind: str) -> int:
        """Date triggers: (re)set the timers of contacts changed since the last scan. Segment triggers: start
        runs for contacts changed since the last scan who are in the segment (once per contact)."""
        done = 0
        async for workflow in Workflow.find({"enabled": True, "trigger.type": kind}):
            now = utcnow()
            since = workflow.scanned_until
            changed: dict[str, Any] = {"workspace_id": workflow.workspace_id}
            if since is not None:
                changed["updated_at"] = {"$gt": as_utc(since) - SCAN_OVERLAP}
            if kind == "date_reached":
                if since is None:  # turned on: every contact holding the date, once
                    changed[f"attributes.{workflow.trigger.get('attribute')}"] = {"$exists": True}
                async for contact in Contact.find(changed):
                    done += await _set_date_timer(workflow, contact, now)
            elif since is not None:  # a segment: entries after the workflow was turned on
                segment = await Segment.find_one({"_id": parse_object_id(workflow.trigger.get("segment_id")),
                                                  "workspace_id": workflow.workspace_id})
                if segment is not None:
                    query = {"$and": [await contact_query(workflow.workspace_id, parse_filter(segment.filter)),
                                      changed]}
                    async for contact in Contact.find(query):
                        run = await self.engine.start(workflow, contact, trigger={"type": kind},
                                                      dedupe_key=f"segment:{contact.id}")
                        done += int(run is not None)
            await Workflow.find_one({"_id": workflow.id}).update({"$set": {"scanned_until": now}})
        return done


_CARES: dict[str, frozenset[str]] = {
    "outbound": frozenset({"no_agent_reply", "no_customer_reply"}),
    "internal": frozenset({"conversation_resolved", "conversation_opened"}),
    "conversation": frozenset({"conversation_opened"}),
    "contact": frozenset({"tag_added", "tag_removed", "attribute_changed"}),
    "new_contact": frozenset({"contact_created"}),
}


def _job_of(event: str, data: dict[str, Any]) -> tuple[str | None, str | None]:
    if event == "message.created":
        direction = data.get("direction")
        if direction in ("inbound", "outbound", "internal"):
            return str(direction), data.get("message_id")
        return None, None
    if event == "conversation.created":
        return "conversation", data.get("conversation_id")
    if event == "contact.changed":
        return "contact", data.get("contact_id")
    if event == "contact.created":
        return "new_contact", data.get("contact_id")
    return None, None


def _on_number(trigger: dict[str, Any], conversation: Conversation) -> bool:
    return not trigger.get("account_id") or str(conversation.account_id) == str(trigger["account_id"])


async def _upsert_timer(workflow: Workflow, key: str, fields: dict[str, Any], *, keep: bool) -> None:
    query = {"workflow_id": workflow.id, "key": key}
    update = {"$setOnInsert": {**fields, "created_at": utcnow()}} if keep else {
        "$set": fields, "$setOnInsert": {"created_at": utcnow()}}
    try:
        await WorkflowTimer.get_motor_collection().update_one(query, update, upsert=True)
    except DuplicateKeyError:  # two jobs at once: the other one's clock stands
        pass


def _moment_of(contact: Contact, workflow: Workflow) -> datetime | None:
    value = (contact.attributes or {}).get(str(workflow.trigger.get("attribute")))
    return as_utc(value) if isinstance(value, datetime) else None


async def _set_date_timer(workflow: Workflow, contact: Contact, now: datetime) -> int:
    """The contact's timer for a date trigger: due at the date plus the offset; none when there is no date
    or that moment has passed (a date set too late for "24 h before" is not caught up)."""
    value = _moment_of(contact, workflow)
    key = f"d:{contact.id}"
    due = value + timedelta(minutes=int(workflow.trigger.get("offset_minutes") or 0)) if value else None
    if value is None or due is None or due < now - SCAN_OVERLAP:
        await WorkflowTimer.find({"workflow_id": workflow.id, "key": key}).delete()
        return 0
    await _upsert_timer(workflow, key, {"kind": "date_reached", "contact_id": contact.id, "since": value,
                                        "due_at": due, "workspace_id": contact.workspace_id}, keep=False)
    return 1


async def _still_silent(timer: WorkflowTimer) -> bool:
    """Did the other side stay silent since the clock started? Reads the conversation's messages stored
    since then, newest last, on the (workspace, conversation, _id) index; stops at the first that speaks."""
    newer = {"workspace_id": timer.workspace_id, "conversation_id": timer.conversation_id,
             "_id": {"$gt": ObjectId.from_datetime(as_utc(timer.since) - timedelta(seconds=1))}}
    async for message in Message.find(newer).sort("_id"):
        if as_utc(message.timestamp) <= as_utc(timer.since):
            continue
        if timer.kind == "no_agent_reply" and message.direction == "outbound" and message.via != "automation":
            return False
        if timer.kind == "no_customer_reply" and message.direction == "inbound":
            return False
    return True


async def _first_of_contact(message: Message) -> bool:
    return await Message.find_one({"workspace_id": message.workspace_id, "contact_id": message.contact_id,
                                   "_id": {"$lt": message.id}, "direction": {"$in": ["inbound", "outbound"]}}) is None
