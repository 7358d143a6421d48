"""JSON API v1: one conversation: read it, change status / assignee / team / labels / snooze, add a note;
react to a message. Thin handlers over ConversationActions (the inbox's own write path) and the outbox.

The list (GET /api/v1/conversations) lives in conversations/api.py; these routes complete it.
"""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, ConfigDict, Field

from app.auth import requires_login
from app.db import utcnow
from app.domains.catalog.services import Catalog
from app.domains.conversations.actions import ConversationActions
from app.domains.conversations.models import Conversation, ConversationStatus
from app.domains.conversations.schemas import ConversationOut, ConversationPatch, NoteIn, conversation_out
from app.domains.messages.schemas import MessageOut, message_out
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.runtime import Runtime


class ReactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    emoji: str = Field(max_length=16, description="One emoji; an empty string removes our reaction",
                       examples=["👍"])


async def _out(actions: ConversationActions, conversation: Conversation) -> ConversationOut:
    fresh, contact = await actions.with_contact(conversation)
    return conversation_out(fresh, contact)


class ConversationActionsApi(Controller):
    path = "/api/v1/conversations"
    guards = [requires_login]
    tags = ["conversations"]

    @get("/{conversation_id:str}", summary="One conversation")
    async def get_conversation(self, conversation_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> ConversationOut:
        actions = ConversationActions(runtime.live)
        return await _out(actions, await actions.get(principal.scope, conversation_id))

    @patch("/{conversation_id:str}", summary="Change status, assignee, team, labels, priority or snooze")
    async def update_conversation(self, conversation_id: FromPath[str], data: JSONBody[ConversationPatch], runtime: NamedDependency[Runtime],
                                  principal: NamedDependency[Principal]) -> ConversationOut:
        actions = ConversationActions(runtime.live)
        conversation = await actions.get(principal.scope, conversation_id)
        sent = data.model_fields_set
        if not sent:
            raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})
        by = principal.user
        ws = principal.workspace_id
        if "status" in sent and data.status is None:
            raise ValidationFailed("status cannot be null.", details={"status": "cannot be null"})
        if "labels" in sent and data.labels is None:
            raise ValidationFailed("labels cannot be null: send [] to remove every label.",
                                   details={"labels": "cannot be null"})
        # Check everything before changing anything, so a 4xx leaves the conversation as it was.
        team = await actions.team(ws, data.team_id) if data.team_id else None
        known = {str(label.id): label.name for label in await Catalog().labels(ws)} if data.labels is not None else {}
        if data.labels is not None:
            unknown = [x for x in data.labels if x not in known]
            if unknown:
                raise ValidationFailed("Unknown label ids (see /api/v1/labels).", error_code="UNKNOWN_LABEL",
                                       details={"labels": ", ".join(unknown)[:100]})
        snooze = data.status is ConversationStatus.SNOOZED or "snoozed_until" in sent
        if snooze and data.snoozed_until is None:
            raise ValidationFailed("Snoozing needs snoozed_until.", error_code="SNOOZE_NEEDS_TIME",
                                   details={"snoozed_until": "required"})
        if snooze and data.status not in (None, ConversationStatus.SNOOZED):
            raise ValidationFailed("snoozed_until goes with status snoozed.", details={"status": data.status})
        if snooze and data.snoozed_until is not None and data.snoozed_until.tzinfo is None:
            raise ValidationFailed("snoozed_until needs a time zone (e.g. ...Z).", details={"snoozed_until": "naive"})
        if snooze and data.snoozed_until is not None and data.snoozed_until <= utcnow():
            raise ValidationFailed("Pick a time in the future.", error_code="SNOOZE_IN_PAST",
                                   details={"snoozed_until": data.snoozed_until.isoformat()})
        if "assignee_id" in sent:
            conversation = await actions.assign(conversation, assignee_id=data.assignee_id, by=by,
                                                may_reassign=principal.may_reassign)
        if "team_id" in sent:
            conversation = await actions.assign_team(conversation, team_id=team.id if team else None,
                                                     team_name=team.name if team else None, by=by)
        if data.labels is not None:
            conversation = await actions.set_labels(conversation, data.labels, by=by, known=known)
        if data.priority is not None:
            conversation = await actions.set_priority(conversation, data.priority, by=by)
        if snooze and data.snoozed_until is not None:
            conversation = await actions.snooze(conversation, data.snoozed_until, by=by)
        elif data.status is not None:
            conversation = await actions.set_status(conversation, data.status.value, by=by)
        return await _out(actions, conversation)

    @post("/{conversation_id:str}/notes", summary="Add an internal note (agents see it; never sent)",
          status_code=201)
    async def add_note(self, conversation_id: FromPath[str], data: JSONBody[NoteIn], runtime: NamedDependency[Runtime],
                       principal: NamedDependency[Principal]) -> MessageOut:
        actions = ConversationActions(runtime.live)
        conversation = await actions.get(principal.scope, conversation_id)
        return message_out(await actions.add_note(conversation, data.text, by=principal.user))


class MessageReactionsApi(Controller):
    path = "/api/v1/messages"
    guards = [requires_login]
    tags = ["messages"]

    @post("/{message_id:str}/reactions", summary="React to a message with an emoji (sent on WhatsApp)",
          status_code=202)
    async def react(self, message_id: FromPath[str], data: JSONBody[ReactionIn], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> MessageOut:
        target = await runtime.outbox.get(principal.scope, message_id)
        reaction, _ = await runtime.outbox.react(principal.workspace_id, target, data.emoji, by=principal.user_id,
                                                 via="api")
        return message_out(reaction)
