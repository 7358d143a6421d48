"""Durable runs: start, advance step by step under a lease, wait (for a time or an answer), stop.

A run is a document (``WorkflowRun``): its cursor, its next wake-up and its log are stored after
every step, in one write conditioned on the lease, so a worker killed at any point leaves a run that
another worker resumes at the step it was on (the step's key makes doing it again harmless, see
steps.py). Workers advance runs in jobs (``advance_workflow_run``, job id = run and visit); a cron
(``wake_workflow_runs``) queues the runs whose time has come, including those whose worker died.

Guards: at most MAX_STEPS steps per run (a jump loop ends there), MAX_DEPTH workflows started from
one another, a per-workflow cap of messages per contact per hour and of runs per contact per hour
(Redis sorted sets keyed by the step's key, so a step done twice counts once).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import as_utc, parse_object_id, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.assignment.services import AutoAssigner
from app.domains.business_hours.rules import is_open
from app.domains.business_hours.services import BusinessHoursService
from app.domains.contacts.editing import ContactEditing
from app.domains.contacts.filters import contact_query, parse_filter
from app.domains.contacts.models import Contact
from app.domains.conversations.actions import ConversationActions
from app.domains.conversations.models import Conversation
from app.domains.conversations.services import ConversationService
from app.domains.outbox.service import OutboxService
from app.domains.segments.models import Segment
from app.domains.workflows.conditions import Facts, holds
from app.domains.workflows.definition import locate
from app.domains.workflows.models import ACTIVE, LOG_KEPT, RunLogEntry, Workflow, WorkflowRun
from app.domains.workflows.steps import Failed, Outcome, StepRunner
from app.domains.workspaces.models import User
from app.errors import NotFound, ValidationFailed
from app.logging import get_logger
from app.realtime import LiveEvents
from app.security import SecretBox

log = get_logger(__name__)

MAX_STEPS = 100
"""Steps one run may do in all: a loop of jumps or questions ends there, failed, saying so."""
MAX_DEPTH = 3
"""A workflow started by a workflow started by a workflow ... at most this deep."""
SLICE_STEPS = 25
LEASE = timedelta(seconds=60)
HOUR = 3600.0


@dataclass
class Tools:
    """The services a step acts through (the same ones people use), built once per process."""

    outbox: OutboxService
    actions: ConversationActions
    editing: ContactEditing
    assigner: AutoAssigner
    business_hours: BusinessHoursService
    http: Any
    """The SSRF-guarded client of event webhooks (runtime.webhook_http)."""
    secrets: SecretBox
    redis: Any
    live: LiveEvents
    enqueue_run: Callable[..., Awaitable[Any]]
    """(run id, marker, at=None): queue a job that advances the run, not before ``at``."""

    async def conversation_for(self, run: WorkflowRun, facts: Facts) -> Conversation:
        """The run's conversation; for a run started without one (a date, a webhook, a new contact), the
        contact's latest conversation, else a new one on the workflow's number (or the workspace's first)."""
        if facts.conversation is not None:
            return facts.conversation
        conversation = await Conversation.find(Conversation.workspace_id == run.workspace_id,
                                               Conversation.contact_id == run.contact_id
                                               ).sort("-last_message_at").first_or_none()
        if conversation is None:
            workflow = await Workflow.find_one({"_id": run.workflow_id})
            account_id = workflow.account_id if workflow is not None else None
            query: dict[str, Any] = {"workspace_id": run.workspace_id, "enabled": True}
            if account_id is not None:
                query["_id"] = account_id
            account = await WhatsAppAccount.find(query).sort("_id").first_or_none()
            if account is None or account.id is None:
                raise Failed("no WhatsApp number to write from")
            conversation, created = await ConversationService().open_for(run.workspace_id, account.id,
                                                                         run.contact_id, reopen=False)
            if created:
                await self.live.publish(run.workspace_id, "conversation.created", conversation_id=str(conversation.id))
        facts.conversation = conversation
        if run.conversation_id != conversation.id:
            run.conversation_id = conversation.id
            await WorkflowRun.find_one({"_id": run.id}).update({"$set": {"conversation_id": conversation.id}})
        return conversation

    @staticmethod
    def limit_of(run: WorkflowRun) -> int:
        return int(run.vars.get("_max_messages_per_hour", 5))

    async def within_rate(self, run: WorkflowRun, key: str) -> bool:
        """Count this send against the workflow's cap for the contact (a key counted before counts once)."""
        return await self._within(f"inbox:wf:sent:{run.workflow_id}:{run.contact_id}", key, self.limit_of(run))

    async def may_start(self, workflow: Workflow, contact_id: PydanticObjectId, key: str) -> bool:
        return await self._within(f"inbox:wf:runs:{workflow.id}:{contact_id}", key, workflow.max_runs_per_hour)

    async def _within(self, zset: str, member: str, limit: int) -> bool:
        now = utcnow().timestamp()
        pipe = self.redis.pipeline(transaction=True)
        pipe.zremrangebyscore(zset, "-inf", now - HOUR)
        pipe.zscore(zset, member)
        pipe.zcard(zset)
        _, seen, count = await pipe.execute()
        if seen is not None:
            return True
        if count >= limit:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(zset, {member: now})
        pipe.expire(zset, int(HOUR) + 60)
        await pipe.execute()
        return True

    async def note_once(self, conversation: Conversation, text: str, key: str) -> None:
        await self.actions.add_note(conversation, text, by=None, idempotency_key=key)

    async def names_to_notify(self, conversation: Conversation, user_ids: list[str]) -> list[str]:
        ids = [oid for oid in (parse_object_id(u) for u in user_ids) if oid is not None]
        if not ids and conversation.assignee_id is not None:
            ids = [conversation.assignee_id]
        users = await User.find({"workspace_id": conversation.workspace_id, "_id": {"$in": ids},
                                 "active": True}).to_list() if ids else []
        return [u.name for u in users if u.name]

    async def time_zone(self, workspace_id: PydanticObjectId) -> str:
        settings = await self.business_hours.cached(workspace_id)
        return settings.time_zone if settings is not None else "UTC"

    async def signing_secret(self, run: WorkflowRun) -> str:
        workflow = await Workflow.find_one({"_id": run.workflow_id})
        if workflow is None or not workflow.signing_secret:
            raise Failed("the workflow is gone, or has no signing secret yet (save it once)")
        return self.secrets.decrypt(workflow.signing_secret)


class WorkflowEngine:
    def __init__(self, tools: Tools) -> None:
        self.tools = tools
        self.steps = StepRunner(tools)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    # -- starting ----------------------------------------------------------------------------------
    async def start(self, workflow: Workflow, contact: Contact, *, conversation: Conversation | None = None,
                    trigger: dict[str, Any] | None = None, dedupe_key: str | None = None, depth: int = 0,
                    started_by: PydanticObjectId | None = None, vars_: dict[str, Any] | None = None,
                    check_conditions: bool = True, message_text: str | None = None) -> WorkflowRun | None:
        """A run of ``workflow`` for ``contact``, queued at once; None when its conditions do not hold, the
        same trigger already started one, one is in progress for the contact, or the hourly cap is reached."""
        if workflow.id is None or contact.id is None:
            return None
        if check_conditions and workflow.conditions.get("conditions"):
            facts = await self.facts(workflow.workspace_id, contact, conversation, message_text, dict(vars_ or {}))
            if not await holds(facts, workflow.conditions):
                return None
        key = dedupe_key or f"run:{PydanticObjectId()}"
        if not await self.tools.may_start(workflow, contact.id, key):
            log.info("workflow run not started: hourly cap", workflow=str(workflow.id))
            return None
        now = utcnow()
        run = WorkflowRun(workspace_id=workflow.workspace_id, workflow_id=workflow.id, workflow_name=workflow.name,
                          steps=workflow.steps, contact_id=contact.id,
                          conversation_id=conversation.id if conversation is not None else None,
                          depth=depth, trigger=trigger or {"type": "manual"},
                          vars={**(vars_ or {}), "_max_messages_per_hour": workflow.max_messages_per_hour},
                          wake_at=now, active_key=f"{workflow.id}:{contact.id}", dedupe_key=dedupe_key,
                          started_by=started_by, created_at=now, updated_at=now,
                          log=[RunLogEntry(type="trigger", outcome="info", text=_started_text(trigger))])
        try:
            await run.insert()
        except DuplicateKeyError:
            return None
        await self.tools.enqueue_run(str(run.id), "0")
        return run

    # -- advancing ---------------------------------------------------------------------------------
    async def advance(self, run_id: str) -> str:
        """Do the run's steps until it waits or ends (at most SLICE_STEPS; then it queues itself again)."""
        oid = parse_object_id(run_id)
        if oid is None:
            return "bad id"
        now = utcnow()
        raw = await WorkflowRun.get_motor_collection().find_one_and_update(
            {"_id": oid, "status": {"$in": list(ACTIVE)}, "wake_at": {"$lte": now},
             "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]},
            {"$set": {"owner": self.owner, "lease_until": now + LEASE, "status": "running"}},
            return_document=ReturnDocument.AFTER)
        if raw is None:
            return "not due, ended, or held by another worker"
        run = WorkflowRun.model_validate(raw)
        contact = await Contact.find_one({"_id": run.contact_id, "workspace_id": run.workspace_id})
        if contact is None:
            await self._end(run, "stopped", "the contact was deleted")
            return "stopped"
        conversation = await Conversation.find_one({"_id": run.conversation_id}) if run.conversation_id else None
        facts = await self.facts(run.workspace_id, contact, conversation, run.trigger.get("text"), run.vars)
        for _ in range(SLICE_STEPS):
            step = locate(run.steps, run.cursor)
            if step is None:
                await self._end(run, "completed", "all steps done")
                return "completed"
            if run.visits >= MAX_STEPS:
                await self._end(run, "failed", f"stopped after {MAX_STEPS} steps: does a jump loop forever?")
                return "failed"
            key = f"wf:{run.id}:{step['id']}:{run.visits}"
            try:
                outcome = await self.steps.run(run, step, facts, key)
            except Failed as exc:
                await self._failed(run, step, facts, str(exc))
                return "failed"
            if outcome.start is not None:
                await self._start_other(run, contact, facts.conversation, *outcome.start, key=key)
            if not await self._record(run, step, outcome):
                return "lease lost"
            if outcome.end is not None:
                await self._end(run, outcome.end, outcome.text)
                return outcome.end
            if outcome.cursor is None:
                await self._end(run, "completed", "all steps done")
                return "completed"
            if outcome.waiting is not None:
                if outcome.wake_at is not None:  # woken on time by a deferred job; the tick is the safety net
                    await self.tools.enqueue_run(str(run.id), f"{run.visits}:wake", outcome.wake_at)
                return "waiting"
            facts.vars = run.vars
        # Long runs give the worker back between slices: released, then queued again.
        await WorkflowRun.find_one({"_id": run.id, "owner": self.owner}).update(
            {"$set": {"lease_until": None, "owner": None}})
        await self.tools.enqueue_run(str(run.id), str(run.visits))
        return "continues"

    async def _record(self, run: WorkflowRun, step: dict[str, Any], outcome: Outcome) -> bool:
        """Move the cursor and log the step, only while this worker holds the run."""
        now = utcnow()
        if outcome.vars:
            run.vars = {**run.vars, **outcome.vars}
        waiting = outcome.waiting
        # Woken early (a contact's attribute changed) to the same wait: not a step done, nothing to log.
        same_wait = waiting is not None and run.waiting is not None and waiting.model_dump() == run.waiting.model_dump()
        fields: dict[str, Any] = {
            "cursor": outcome.cursor if outcome.cursor is not None else run.cursor, "vars": run.vars,
            "waiting": waiting.model_dump() if waiting is not None else None, "reply": None,
            "updated_at": now, "visits": run.visits + (0 if same_wait else 1)}
        if waiting is not None:
            fields.update(status="waiting", wake_at=outcome.wake_at, lease_until=None, owner=None)
        else:
            fields.update(lease_until=now + LEASE)
        entry = RunLogEntry(step_id=step["id"], type=step["type"], outcome=outcome.outcome,  # type: ignore[arg-type]
                            text=outcome.text, at=now)
        update: dict[str, Any] = {"$set": fields}
        if not same_wait:
            update["$push"] = {"log": {"$each": [entry.model_dump()], "$slice": -LOG_KEPT}}
        result = await WorkflowRun.find_one({"_id": run.id, "owner": self.owner}).update(update)
        if result.matched_count == 0:
            return False
        run.cursor = fields["cursor"]
        run.visits = fields["visits"]
        run.waiting = waiting
        run.reply = None
        return True

    async def _failed(self, run: WorkflowRun, step: dict[str, Any], facts: Facts, why: str) -> None:
        await self._end(run, "failed", why, step=step)
        conversation = facts.conversation
        if conversation is not None:
            await self.tools.actions.record_event(conversation, "workflow_failed",
                                                  f"Workflow {run.workflow_name} stopped: {why}", None,
                                                  run_id=str(run.id))

    async def _end(self, run: WorkflowRun, status: str, why: str, *, step: dict[str, Any] | None = None,
                   only_if: dict[str, Any] | None = None) -> bool:
        now = utcnow()
        entry = RunLogEntry(step_id=step["id"] if step else None, type=step["type"] if step else "end",
                            outcome="failed" if status == "failed" else "info", text=why, at=now)
        result = await WorkflowRun.find_one({"_id": run.id, **(only_if or {"owner": self.owner})}).update(
            {"$set": {"status": status, "ended_at": now, "end_reason": why, "active_key": None, "wake_at": None,
                      "lease_until": None, "owner": None, "waiting": None, "updated_at": now},
             "$push": {"log": {"$each": [entry.model_dump()], "$slice": -LOG_KEPT}}})
        if result.matched_count:
            run.status = status  # type: ignore[assignment]
        return bool(result.matched_count)

    async def _start_other(self, run: WorkflowRun, contact: Contact, conversation: Conversation | None,
                           workflow_id: str, depth: int, *, key: str) -> None:
        if depth > MAX_DEPTH:
            raise Failed(f"workflows start each other more than {MAX_DEPTH} deep")
        other = await Workflow.find_one({"_id": parse_object_id(workflow_id), "workspace_id": run.workspace_id})
        if other is None or not other.enabled:
            raise Failed("the workflow to start is gone or turned off")
        await self.start(other, contact, conversation=conversation, depth=depth, dedupe_key=f"from:{key}",
                         trigger={"type": "workflow", "by_workflow": run.workflow_name}, check_conditions=True,
                         vars_={k: v for k, v in run.vars.items() if not k.startswith("_")})

    # -- from outside: replies, stops --------------------------------------------------------------
    async def deliver_reply(self, workspace_id: PydanticObjectId, conversation_id: PydanticObjectId,
                            message_id: str, text: str) -> str | None:
        """A customer's message for a run of this conversation that waits: an answer goes to the run that
        asked (and wakes it), a wait that ends on a reply ends its run. Returns what happened, None when no
        run waits (the message may then start new runs)."""
        now = utcnow()
        here = {"workspace_id": workspace_id, "conversation_id": conversation_id}
        if await WorkflowRun.find_one({**here, "waiting.kind": {"$in": ["reply", "answered", "until_reply"]}}) is None:
            return None  # the usual case: nothing waits on this conversation (one indexed read)
        raw = await WorkflowRun.get_motor_collection().find_one_and_update(
            {**here, "waiting.kind": "reply", "status": "waiting"},
            {"$set": {"reply": {"message_id": message_id, "text": text}, "waiting.kind": "answered", "wake_at": now,
                      "updated_at": now}},
            return_document=ReturnDocument.AFTER)
        if raw is not None:
            await self.tools.enqueue_run(str(raw["_id"]), f"reply:{message_id}")
            return "answer"
        if await WorkflowRun.find_one({**here, "waiting.kind": "answered"}) is not None:
            return "answer (the run is reading an earlier one)"
        ended = 0
        async for run in WorkflowRun.find({**here, "waiting.kind": "until_reply", "status": "waiting"}):
            if await self._end(run, "completed", "the customer replied", only_if={"status": "waiting"}):
                ended += 1
        return "ended on reply" if ended else None

    async def stop(self, workspace_id: PydanticObjectId, run_id: str, *, by: str) -> WorkflowRun:
        run = await WorkflowRun.get_scoped(workspace_id, run_id)
        if run.status not in ACTIVE:
            raise ValidationFailed("This run has already ended.", error_code="RUN_ENDED",
                                   details={"status": run.status})
        await self._end(run, "stopped", f"stopped by {by}", only_if={"status": {"$in": list(ACTIVE)}})
        found = await WorkflowRun.find_one({"_id": run.id})
        if found is None:
            raise NotFound("run not found")
        return found

    async def stop_all(self, workflow_id: PydanticObjectId, why: str) -> int:
        stopped = 0
        async for run in WorkflowRun.find({"workflow_id": workflow_id, "status": {"$in": list(ACTIVE)}}):
            stopped += await self._end(run, "stopped", why, only_if={"status": {"$in": list(ACTIVE)}})
        return stopped

    async def due(self, limit: int = 500) -> int:
        """Queue the runs whose time has come and that no worker holds (the cron)."""
        now = utcnow()
        queued = 0
        async for run in WorkflowRun.find({"wake_at": {"$lte": now}}  # only runs in progress have one
                                          ).sort("wake_at").limit(limit):
            if run.lease_until is not None and as_utc(run.lease_until) >= now:
                continue  # a worker is on it
            await self.tools.enqueue_run(str(run.id), f"{run.visits}:{int(as_utc(run.wake_at or now).timestamp())}")
            queued += 1
        return queued

    # -- what a run knows --------------------------------------------------------------------------
    async def facts(self, workspace_id: PydanticObjectId, contact: Contact, conversation: Conversation | None,
                    message_text: str | None, vars_: dict[str, Any]) -> Facts:
        async def open_now() -> bool:
            settings = await self.tools.business_hours.cached(workspace_id)
            return settings is None or not settings.enabled or is_open(settings, utcnow())

        async def in_segment(segment_id: str) -> bool:
            segment = await Segment.find_one({"_id": parse_object_id(segment_id), "workspace_id": workspace_id})
            if segment is None:
                return False
            query = await contact_query(workspace_id, parse_filter(segment.filter))
            return await Contact.find_one({"$and": [query, {"_id": contact.id}]}) is not None

        return Facts(workspace_id=workspace_id, contact=contact, conversation=conversation, message_text=message_text,
                     vars=vars_, open_now=open_now, in_segment=in_segment)


def _started_text(trigger: dict[str, Any] | None) -> str:
    trigger = trigger or {}
    kind = str(trigger.get("type", "manual")).replace("_", " ")
    detail = trigger.get("text") or trigger.get("by") or trigger.get("by_workflow") or ""
    return f"started: {kind}" + (f" ({str(detail)[:80]})" if detail else "")
