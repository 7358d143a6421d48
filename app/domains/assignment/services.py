"""Auto-assignment: rules kept by admins, and the worker job that gives a conversation to an agent.

The hook (``on_live_event``, a LiveEvents listener like subscriptions/events.py): an inbound message
(``message.created``) in a workspace that has an enabled rule queues one ``auto_assign_conversation``
job; a workspace without one costs nothing but a lookup in this process's cache (the answer is kept a
few seconds, and dropped in every process at once when a rule changes: app/changes.py).

The job assigns an open, unassigned conversation through ConversationActions.assign, the path the
inbox and the API use (thread event, live update, integration event), on the condition that it is
still unassigned when written: a human's choice is never overridden. A conversation that a customer
starts or reopens is open; so is one they keep writing to while nobody takes it. A conversation
already given to somebody is left alone.

Rules are tried most specific first (number and team, then number, then team, then the rest; older
first among equals); the first with an eligible agent assigns. Eligible: the team's members (team
rule) or the agents and supervisors who see the number (app/domains/access), active, **online**
(chose online and have an inbox tab open: presence.py), under the rule's cap of open conversations.
Round-robin takes the next of them from the rule's counter in Redis (INCR: each job gets its own
turn, whatever the number of workers); least-open the one with the fewest open conversations. Rules
that count (least-open, or a cap) pick under a short per-rule lock in Redis, so concurrent jobs never
both see one agent as the least busy or below the cap.

Nobody eligible: the conversation waits unassigned. When an agent comes online (first inbox tab, or
chooses online), ``assign_waiting`` gives out the workspace's waiting conversations, oldest first.

Reassignment (a rule's ``reassign_when_offline``): an agent who is gone (chose away or offline, or has
had no inbox tab open for the presence timeout; busy keeps theirs) loses their open conversations that
such a rule governs to an online agent, by the rule's method and under its cap, through
ConversationActions.assign, with a line in the thread saying why. A conversation's rule is the most
specific enabled rule that applies to it (as for new conversations); when it has the setting on, it and
then the next applying rules with the setting on are tried. Every open conversation of the gone agent
counts, however it came to them (a person's assignment too: that is what the setting asks for);
pending, snoozed and resolved ones stay. Nobody online: they stay, and a later pass moves them. Passes:
a cron job every 30 s over the workspaces with such a rule (one indexed query), and a job at once when
an agent chooses away or offline, or someone comes online.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from beanie import PydanticObjectId
from beanie.operators import In
from redis.asyncio import Redis

from app.changes import Changes
from app.db import parse_object_id, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.assignment.models import AssignmentMethod, AssignmentRule
from app.domains.assignment.presence import Presence, Status
from app.domains.conversations.actions import ConversationActions
from app.domains.conversations.models import Conversation, ConversationStatus
from app.domains.messages.models import Message
from app.domains.team.models import Team
from app.domains.workspaces.models import Availability, Role, User
from app.errors import ValidationFailed
from app.logging import get_logger

log = get_logger(__name__)

TOPIC = "assignment-rules"
CACHE_SECONDS = 5.0
"""How long a process trusts its "has this workspace an enabled rule?" answer (a change is heard at once)."""
MAX_RULES = 50
MAX_NAME = 80
MAX_CAP = 1000
WAITING_BATCH = 200
"""At most this many waiting conversations are given out when an agent comes online."""
REASSIGN_BATCH = 200
"""At most this many of gone agents' conversations are looked at per workspace per pass (the next pass goes on)."""
GONE = (Availability.AWAY, Availability.OFFLINE)
"""Statuses (as others see them) whose holder's open conversations a reassigning rule gives to someone else."""
LOCK_MS = 10_000
POINTER = "inbox:assignment:rr:"
LOCK = "inbox:assignment:lock:"
RULE_LOCK = "inbox:assignment:rule-lock:"

EnqueueAssign = Callable[[str, str, str], Awaitable[Any]]
EnqueueWaiting = Callable[[str], Awaitable[Any]]
EnqueueReassign = Callable[[str], Awaitable[Any]]


def rule_view(rule: AssignmentRule) -> dict[str, Any]:
    return {"id": str(rule.id), "name": rule.name, "enabled": rule.enabled,
            "account_id": str(rule.account_id) if rule.account_id else None,
            "team_id": str(rule.team_id) if rule.team_id else None, "method": rule.method.value,
            "max_open_per_agent": rule.max_open_per_agent, "reassign_when_offline": rule.reassign_when_offline,
            "created_at": rule.created_at.isoformat() if rule.created_at else None,
            "updated_at": rule.updated_at.isoformat() if rule.updated_at else None}


def _specificity(rule: AssignmentRule) -> tuple[int, Any]:
    return (-(2 * (rule.account_id is not None) + (rule.team_id is not None)), rule.id)


def applies(rule: AssignmentRule, conversation: Conversation) -> bool:
    """The rule gives out this conversation: its number (or any), and no other team's conversation."""
    if rule.account_id is not None and rule.account_id != conversation.account_id:
        return False
    return rule.team_id is None or conversation.team_id in (None, rule.team_id)


class AssignmentRules:
    """The admins' rules (screen and API), and which workspaces have one enabled (cached per process)."""

    def __init__(self, *, changes: Changes | None = None) -> None:
        self.changes = changes
        self._enabled: dict[str, tuple[float, bool]] = {}
        self._reassigning: dict[str, tuple[float, bool]] = {}
        if changes is not None:
            changes.on(TOPIC, self._forget)

    async def has_enabled(self, workspace_id: PydanticObjectId | str) -> bool:
        key = str(workspace_id)
        cached = self._enabled.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        oid = parse_object_id(key)
        found = oid is not None and await AssignmentRule.find_one(
            AssignmentRule.workspace_id == oid, AssignmentRule.enabled == True) is not None  # noqa: E712
        self._enabled[key] = (time.monotonic() + CACHE_SECONDS, found)
        return found

    async def has_reassigning(self, workspace_id: PydanticObjectId | str) -> bool:
        """The workspace has an enabled rule with ``reassign_when_offline`` (cached like ``has_enabled``)."""
        key = str(workspace_id)
        cached = self._reassigning.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        oid = parse_object_id(key)
        found = oid is not None and await AssignmentRule.find_one(
            {"reassign_when_offline": True, "enabled": True, "workspace_id": oid}) is not None
        self._reassigning[key] = (time.monotonic() + CACHE_SECONDS, found)
        return found

    async def reassigning_workspaces(self) -> list[PydanticObjectId]:
        """Every workspace with an enabled rule that reassigns a gone agent's conversations (the cron's list)."""
        ids = await AssignmentRule.distinct("workspace_id", {"reassign_when_offline": True, "enabled": True})
        return sorted(PydanticObjectId(i) for i in ids)

    def _forget(self, workspace_id: str | None) -> None:
        if workspace_id is None:
            self._enabled.clear()
            self._reassigning.clear()
        else:
            self._enabled.pop(workspace_id, None)
            self._reassigning.pop(workspace_id, None)

    async def _changed(self, workspace_id: PydanticObjectId) -> None:
        if self.changes is None:
            self._forget(str(workspace_id))
        else:
            await self.changes.publish(TOPIC, str(workspace_id))

    async def list(self, workspace_id: PydanticObjectId) -> list[AssignmentRule]:
        return await AssignmentRule.scoped(workspace_id).sort("created_at", "_id").to_list()

    async def enabled(self, workspace_id: PydanticObjectId) -> builtins.list[AssignmentRule]:
        rules = await AssignmentRule.scoped(workspace_id, AssignmentRule.enabled == True).to_list()  # noqa: E712
        return sorted(rules, key=_specificity)

    async def get(self, workspace_id: PydanticObjectId, rule_id: str) -> AssignmentRule:
        return await AssignmentRule.get_scoped(workspace_id, rule_id)

    async def save(self, workspace_id: PydanticObjectId, fields: dict[str, Any],
                   rule: AssignmentRule | None = None) -> AssignmentRule:
        """Create (``rule`` None) or change a rule; ``fields`` holds only what is set. Bad input: 422 naming it."""
        errors: dict[str, str] = {}
        current = rule_view(rule) if rule else {"name": "", "enabled": True, "account_id": None, "team_id": None,
                                                "method": AssignmentMethod.ROUND_ROBIN.value,
                                                "max_open_per_agent": None, "reassign_when_offline": False}
        wanted = {**current, **fields}
        name = " ".join(str(wanted.get("name") or "").split())
        if not name or len(name) > MAX_NAME:
            errors["name"] = f"Give the rule a name of up to {MAX_NAME} characters."
        try:
            method = AssignmentMethod(str(wanted.get("method") or ""))
        except ValueError:
            errors["method"] = "Choose round_robin or least_open."
            method = AssignmentMethod.ROUND_ROBIN
        cap = wanted.get("max_open_per_agent")
        if cap in ("", None):
            cap = None
        else:
            try:
                cap = int(cap)
                if isinstance(wanted.get("max_open_per_agent"), bool) or not 1 <= cap <= MAX_CAP:
                    raise ValueError
            except (TypeError, ValueError):
                errors["max_open_per_agent"] = f"A whole number from 1 to {MAX_CAP}, or empty for no cap."
                cap = None
        enabled = wanted.get("enabled")
        if not isinstance(enabled, bool):
            errors["enabled"] = "true or false."
        reassign = wanted.get("reassign_when_offline")
        if not isinstance(reassign, bool):
            errors["reassign_when_offline"] = "true or false."
        account_id = await self._ref(workspace_id, WhatsAppAccount, wanted.get("account_id"), "account_id",
                                     "No such number.", errors)
        team_id = await self._ref(workspace_id, Team, wanted.get("team_id"), "team_id", "No such team.", errors)
        if rule is None and await AssignmentRule.scoped(workspace_id).count() >= MAX_RULES:
            errors["name"] = f"At most {MAX_RULES} rules per workspace."
        if errors:
            raise ValidationFailed("Check the highlighted fields.", error_code="BAD_ASSIGNMENT_RULE", details=errors)
        now = utcnow()
        rule = rule or AssignmentRule(workspace_id=workspace_id, name=name, created_at=now)
        rule.name, rule.method, rule.max_open_per_agent = name, method, cap
        rule.enabled, rule.account_id, rule.team_id, rule.updated_at = bool(enabled), account_id, team_id, now
        rule.reassign_when_offline = bool(reassign)
        await (rule.insert() if rule.id is None else rule.save())
        await self._changed(workspace_id)
        return rule

    async def _ref(self, workspace_id: PydanticObjectId, model: Any, value: Any, field: str, message: str,
                   errors: dict[str, str]) -> PydanticObjectId | None:
        if value in (None, ""):
            return None
        oid = parse_object_id(str(value))
        if oid is None or await model.find_one({"_id": oid, "workspace_id": workspace_id}) is None:
            errors[field] = message
            return None
        return oid

    async def delete(self, rule: AssignmentRule) -> None:
        await rule.delete()
        await self._changed(rule.workspace_id)


class AutoAssigner:
    """Picks an agent for a conversation and assigns it (the worker's side), and the hooks that queue it."""

    def __init__(self, rules: AssignmentRules, presence: Presence, actions: ConversationActions, redis: Redis, *,
                 enqueue_assign: EnqueueAssign, enqueue_waiting: EnqueueWaiting,
                 enqueue_reassign: EnqueueReassign | None = None) -> None:
        self.rules = rules
        self.presence = presence
        self.actions = actions
        self.redis = redis
        self._enqueue_assign = enqueue_assign
        self._enqueue_waiting = enqueue_waiting
        self._enqueue_reassign = enqueue_reassign

    async def screen(self, workspace_id: PydanticObjectId) -> dict[str, Any]:
        """What the admin screen shows: the rules, the numbers and teams to choose from, and who is online."""
        rules = await self.rules.list(workspace_id)
        numbers = await WhatsAppAccount.scoped(workspace_id).sort("name").to_list()
        teams = await Team.scoped(workspace_id).sort("name").to_list()
        users = await User.scoped(workspace_id, User.active == True).sort("name").to_list()  # noqa: E712
        statuses = await self.presence.statuses(users)
        return {"rules": [rule_view(r) for r in rules],
                "numbers": {str(n.id): n.name for n in numbers}, "teams": {str(t.id): t.name for t in teams},
                "people": [{"id": str(u.id), "name": u.name or u.email, "role": u.role.value,
                            "status": statuses[u.id].value.value, "label": statuses[u.id].label}
                           for u in users if u.id is not None and u.id in statuses]}

    # -- hooks (web and worker processes): cheap checks, then a job -------------------------------
    async def on_live_event(self, workspace_id: PydanticObjectId | str, event: str, data: dict[str, Any]) -> None:
        """A LiveEvents listener. A new conversation always comes with its first message.created, so that
        event alone is enough (conversation.created would only queue a second job for the same turn)."""
        if event != "message.created" or data.get("direction") != "inbound" or \
                not await self.rules.has_enabled(workspace_id):
            return
        conversation_id, message_id = data.get("conversation_id"), data.get("message_id")
        if conversation_id and message_id:
            await self._enqueue_assign(str(workspace_id), str(conversation_id), str(message_id))

    async def on_came_online(self, workspace_id: PydanticObjectId, user_id: PydanticObjectId) -> None:
        """A presence listener: someone may now take the conversations that found nobody."""
        if await self.rules.has_enabled(workspace_id):
            await self._enqueue_waiting(str(workspace_id))
        await self._queue_reassign(workspace_id)  # gone agents' conversations may now find someone

    async def on_went_away(self, workspace_id: PydanticObjectId, user_id: PydanticObjectId) -> None:
        """A presence listener (chose away or offline): a rule may give their open conversations to others."""
        await self._queue_reassign(workspace_id)

    async def _queue_reassign(self, workspace_id: PydanticObjectId) -> None:
        if self._enqueue_reassign is not None and await self.rules.has_reassigning(workspace_id):
            await self._enqueue_reassign(str(workspace_id))

    # -- the jobs ---------------------------------------------------------------------------------
    async def after_message(self, workspace_id: str, conversation_id: str, message_id: str) -> str:
        """The job for one new message: only a customer's message gives its conversation out."""
        wid, mid = parse_object_id(workspace_id), parse_object_id(message_id)
        if wid is None or mid is None:
            return "bad-ids"
        message = await Message.find_one({"_id": mid, "workspace_id": wid})
        if message is None or message.direction != "inbound":
            return "not-inbound"
        return await self.assign(wid, message.conversation_id)

    async def assign(self, workspace_id: PydanticObjectId, conversation_id: PydanticObjectId) -> str:
        """Give one open, unassigned conversation to an eligible agent; returns what happened."""
        rules = await self.rules.enabled(workspace_id)
        if not rules:
            return "no-rule"
        lock = f"{LOCK}{conversation_id}"
        # One job at a time per conversation: a burst of customer messages must not spend several turns.
        if not await self.redis.set(lock, "1", nx=True, px=LOCK_MS):
            return "busy"
        try:
            conversation = await Conversation.find_one({"_id": conversation_id, "workspace_id": workspace_id})
            if conversation is None or conversation.assignee_id is not None \
                    or conversation.status is not ConversationStatus.OPEN:
                return "not-waiting"
            for rule in rules:
                if not applies(rule, conversation):
                    continue
                # Counting rules (least-open, a cap) pick from counts: one pick at a time per rule, in any
                # worker, so two jobs never both see the same agent below the cap or as the least busy.
                counting = rule.method is AssignmentMethod.LEAST_OPEN or rule.max_open_per_agent is not None
                async with self.redis.lock(f"{RULE_LOCK}{rule.id}", timeout=LOCK_MS / 1000, blocking_timeout=5,
                                           sleep=0.01) if counting else contextlib.nullcontext():
                    agent = await self.pick(rule, conversation)
                    if agent is None:
                        continue
                    await self.actions.assign(conversation, assignee_id=agent.id, by=None, only_if_unassigned=True,
                                              rule_name=rule.name)
                return "assigned" if conversation.assignee_id == agent.id else "taken"
            return "nobody"
        finally:
            await self.redis.delete(lock)

    async def assign_waiting(self, workspace_id: str) -> int:
        """Give out the workspace's open, unassigned conversations (someone came online); returns how many."""
        wid = parse_object_id(workspace_id)
        if wid is None or not await self.rules.enabled(wid):
            return 0
        waiting = await Conversation.find({"workspace_id": wid, "assignee_id": None,
                                           "status": ConversationStatus.OPEN.value}
                                          ).sort("last_message_at").limit(WAITING_BATCH).to_list()
        assigned = 0
        for conversation in waiting:
            if conversation.id is not None and await self.assign(wid, conversation.id) == "assigned":
                assigned += 1
        return assigned

    async def reassign_offline_everywhere(self) -> int:
        """The cron pass: every workspace with a reassigning rule; returns how many conversations moved."""
        moved = 0
        for workspace_id in await self.rules.reassigning_workspaces():
            try:
                moved += await self.reassign_offline(str(workspace_id))
            except Exception as exc:  # noqa: BLE001 - one workspace's trouble must not stop the others'
                log.warning("reassignment pass failed", workspace_id=str(workspace_id), error=type(exc).__name__)
        return moved

    async def reassign_offline(self, workspace_id: str) -> int:
        """Give the open conversations of the workspace's gone agents (away, offline, no inbox open) to
        online agents, where their rule says so; returns how many moved."""
        wid = parse_object_id(workspace_id)
        rules = await self.rules.enabled(wid) if wid is not None else []
        if wid is None or not any(r.reassign_when_offline for r in rules):
            return 0
        users = await User.scoped(wid).to_list()
        statuses = await self.presence.statuses(users)
        if not any(s.takes_conversations for s in statuses.values()):
            return 0  # nobody to give them to: they stay, a later pass moves them
        gone = {u.id: u for u in users if u.id is not None and u.id in statuses and statuses[u.id].value in GONE}
        held = await self.open_counts(wid, list(gone))
        moved, budget = 0, REASSIGN_BATCH
        for holder_id in sorted((i for i, n in held.items() if n), key=str):
            if budget <= 0:
                break
            conversations = await Conversation.find({"workspace_id": wid, "assignee_id": holder_id,
                                                     "status": ConversationStatus.OPEN.value}
                                                    ).sort("last_message_at").limit(budget).to_list()
            budget -= len(conversations)
            for conversation in conversations:
                if await self._reassign(rules, conversation, gone[holder_id], statuses[holder_id]) == "reassigned":
                    moved += 1
        return moved

    async def _reassign(self, rules: list[AssignmentRule], conversation: Conversation, holder: User,
                        status: Status) -> str:
        """One gone agent's open conversation to an online agent by its rule (when that rule reassigns)."""
        applying = [r for r in rules if applies(r, conversation)]
        if not applying or not applying[0].reassign_when_offline:
            return "not-reassigning"  # its rule (the most specific that applies) leaves it with its agent
        lock = f"{LOCK}{conversation.id}"
        if not await self.redis.set(lock, "1", nx=True, px=LOCK_MS):
            return "busy"
        try:
            for rule in (r for r in applying if r.reassign_when_offline):
                counting = rule.method is AssignmentMethod.LEAST_OPEN or rule.max_open_per_agent is not None
                async with self.redis.lock(f"{RULE_LOCK}{rule.id}", timeout=LOCK_MS / 1000, blocking_timeout=5,
                                           sleep=0.01) if counting else contextlib.nullcontext():
                    fresh = await Conversation.find_one({"_id": conversation.id, "workspace_id": conversation.workspace_id})
                    if fresh is None or fresh.assignee_id != holder.id or fresh.status is not ConversationStatus.OPEN:
                        return "changed"  # somebody took it, or it was resolved, meanwhile
                    agent = await self.pick(rule, fresh)
                    if agent is None:
                        continue
                    went = "went away" if status.value is Availability.AWAY else \
                        "went offline (no inbox open)" if status.inactive else "went offline"
                    done = await self.actions.assign(
                        fresh, assignee_id=agent.id, by=None, rule_name=rule.name, only_if_assignee=holder.id,
                        event_text=f"{holder.name or holder.email} {went}: reassigned to {agent.name or agent.email} "
                                   f"(rule {rule.name})",
                        previous_assignee_id=str(holder.id), reason=status.value.value)
                    return "reassigned" if done.assignee_id == agent.id else "changed"
            return "nobody"
        finally:
            await self.redis.delete(lock)

    # -- choosing ---------------------------------------------------------------------------------
    async def candidates(self, rule: AssignmentRule, conversation: Conversation) -> list[User]:
        """The rule's pool for this conversation, online only, in a stable order (by id)."""
        workspace_id = conversation.workspace_id
        if rule.team_id is not None:
            team = await Team.find_one({"_id": rule.team_id, "workspace_id": workspace_id})
            if team is None or not team.member_ids:
                return []
            users = await User.scoped(workspace_id, In(User.id, team.member_ids),
                                      User.active == True).to_list()  # noqa: E712
        else:
            users = await User.scoped(workspace_id, In(User.role, [Role.AGENT.value, Role.SUPERVISOR.value]),
                                      User.active == True).to_list()  # noqa: E712
            users = [u for u in users if u.role is Role.SUPERVISOR or u.all_numbers
                     or conversation.account_id in u.number_ids]
        users = [u for u in users if u.availability is Availability.ONLINE and u.id is not None]
        connected = await self.presence.connected(u.id for u in users if u.id is not None)
        return sorted((u for u in users if u.id in connected), key=lambda u: str(u.id))

    async def open_counts(self, workspace_id: PydanticObjectId, user_ids: list[PydanticObjectId]
                          ) -> dict[PydanticObjectId, int]:
        """Open conversations assigned to each of these users (one aggregation)."""
        if not user_ids:
            return {}
        rows = await Conversation.find({"workspace_id": workspace_id, "assignee_id": {"$in": user_ids},
                                        "status": ConversationStatus.OPEN.value}).aggregate(
            [{"$group": {"_id": "$assignee_id", "n": {"$sum": 1}}}]).to_list()
        counts = {u: 0 for u in user_ids}
        for row in rows:
            counts[row["_id"]] = int(row["n"])
        return counts

    async def pick(self, rule: AssignmentRule, conversation: Conversation) -> User | None:
        pool = await self.candidates(rule, conversation)
        if not pool:
            return None
        ids = [u.id for u in pool if u.id is not None]
        counts: dict[PydanticObjectId, int] = {}
        if rule.method is AssignmentMethod.LEAST_OPEN or rule.max_open_per_agent is not None:
            counts = await self.open_counts(conversation.workspace_id, ids)
        if rule.max_open_per_agent is not None:
            pool = [u for u in pool if counts.get(u.id, 0) < rule.max_open_per_agent]  # type: ignore[arg-type]
            if not pool:
                return None
        if rule.method is AssignmentMethod.LEAST_OPEN:
            return min(pool, key=lambda u: (counts.get(u.id, 0), str(u.id)))  # type: ignore[arg-type]
        turn = await self.next_turn(rule)
        return pool[(turn - 1) % len(pool)]

    async def next_turn(self, rule: AssignmentRule) -> int:
        """The rule's next turn: INCR is atomic, so concurrent jobs in any number of workers never share one."""
        return int(await self.redis.incr(f"{POINTER}{rule.id}"))
