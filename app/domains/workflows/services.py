"""Workflows for the admin screen, the API and agents: save, turn on and off, start by hand or by an
incoming webhook, stop a run, list runs, and the dry run."""

from __future__ import annotations

import secrets
from typing import Any

from beanie import PydanticObjectId
from beanie.operators import In

from app.db import parse_object_id, utcnow
from app.domains.access.scope import Scope
from app.domains.access.services import visible_conversation
from app.domains.accounts.models import WhatsAppAccount
from app.domains.audit import services as audit
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.segments.models import Segment
from app.domains.subscriptions.signing import new_signing_secret
from app.domains.team.models import Team
from app.domains.workflows.definition import Definition, check_definition, dumped_steps, walk
from app.domains.workflows.dry_run import dry_run
from app.domains.workflows.engine import WorkflowEngine
from app.domains.workflows.library import READY_MADE
from app.domains.workflows.models import ACTIVE, Workflow, WorkflowRun
from app.domains.workflows.triggers import WorkflowTriggers
from app.domains.workspaces.models import User
from app.errors import Conflict, NotFound, ValidationFailed
from app.security import SecretBox

MAX_WORKFLOWS = 200


def workflow_view(workflow: Workflow) -> dict[str, Any]:
    """A workflow as the API and the screens show it (the webhook URL only for webhook triggers)."""
    return {"id": str(workflow.id), "name": workflow.name, "description": workflow.description,
            "enabled": workflow.enabled, "trigger": workflow.trigger, "conditions": workflow.conditions,
            "steps": workflow.steps, "account_id": str(workflow.account_id) if workflow.account_id else None,
            "max_messages_per_hour": workflow.max_messages_per_hour, "max_runs_per_hour": workflow.max_runs_per_hour,
            "version": workflow.version, "updated_at": workflow.updated_at.isoformat(),
            "signing_secret_last4": workflow.signing_secret_last4, "webhook_url": None}


class WorkflowService:
    def __init__(self, engine: WorkflowEngine, triggers: WorkflowTriggers, secrets_box: SecretBox,
                 public_url: str) -> None:
        self.engine = engine
        self.triggers = triggers
        self.box = secrets_box
        self.public_url = public_url.rstrip("/")

    def view(self, workflow: Workflow) -> dict[str, Any]:
        view = workflow_view(workflow)
        if workflow.trigger.get("type") == "webhook" and workflow.webhook_secret:
            view["webhook_url"] = self.webhook_url(workflow)
        return view

    def webhook_url(self, workflow: Workflow) -> str:
        token = self.box.decrypt(workflow.webhook_secret or "")
        return f"{self.public_url}/webhooks/workflows/{workflow.id}/{token}"

    # -- reading -----------------------------------------------------------------------------------
    async def all(self, workspace_id: PydanticObjectId) -> list[Workflow]:
        return await Workflow.scoped(workspace_id).sort("name").to_list()

    async def get(self, workspace_id: PydanticObjectId, workflow_id: str) -> Workflow:
        return await Workflow.get_scoped(workspace_id, workflow_id)

    async def active_counts(self, workspace_id: PydanticObjectId) -> dict[str, int]:
        rows = await WorkflowRun.get_motor_collection().aggregate([
            {"$match": {"workspace_id": workspace_id, "status": {"$in": list(ACTIVE)}}},
            {"$group": {"_id": "$workflow_id", "n": {"$sum": 1}}}]).to_list(None)
        return {str(row["_id"]): int(row["n"]) for row in rows}

    # -- saving ------------------------------------------------------------------------------------
    async def save(self, workspace_id: PydanticObjectId, raw: dict[str, Any], *, workflow_id: str | None = None,
                   by: PydanticObjectId | None = None) -> Workflow:
        """Create (no ``workflow_id``) or replace a workflow from its whole definition."""
        definition = check_definition(raw)
        await self._check_refs(workspace_id, definition)
        if workflow_id is None:
            if await Workflow.scoped(workspace_id).count() >= MAX_WORKFLOWS:
                raise ValidationFailed(f"At most {MAX_WORKFLOWS} workflows.", error_code="TOO_MANY_WORKFLOWS",
                                       details={})
            workflow = Workflow(workspace_id=workspace_id, name=definition.name)
        else:
            workflow = await self.get(workspace_id, workflow_id)
            workflow.version += 1
        was_enabled = workflow.enabled
        self._apply(workflow, definition)
        if workflow.webhook_secret is None:
            workflow.webhook_secret = self.box.encrypt(secrets.token_urlsafe(24))
        if workflow.signing_secret is None:
            self._new_signing_secret(workflow)
        workflow.updated_at = utcnow()
        workflow.updated_by = by
        if workflow.enabled and not was_enabled:
            workflow.scanned_until = None
        await workflow.save()
        if was_enabled and not workflow.enabled:
            await self.engine.stop_all(workflow.id, "the workflow was turned off")  # type: ignore[arg-type]
        await self.triggers.changed(workspace_id)
        action = ("workflow.created" if workflow_id is None else
                  "workflow.turned_on" if workflow.enabled and not was_enabled else
                  "workflow.turned_off" if was_enabled and not workflow.enabled else "workflow.changed")
        await audit.record(workspace_id, action, "workflow", workflow.id, workflow.name,
                           {"version": workflow.version, "enabled": workflow.enabled})
        return workflow

    @staticmethod
    def _apply(workflow: Workflow, definition: Definition) -> None:
        workflow.name = definition.name
        workflow.description = definition.description
        workflow.enabled = definition.enabled
        workflow.trigger = definition.trigger.model_dump(mode="json", exclude_none=True)
        workflow.conditions = definition.conditions.model_dump(mode="json")
        workflow.steps = dumped_steps(definition)
        workflow.account_id = parse_object_id(definition.account_id)
        workflow.max_messages_per_hour = definition.max_messages_per_hour
        workflow.max_runs_per_hour = definition.max_runs_per_hour

    async def _check_refs(self, workspace_id: PydanticObjectId, definition: Definition) -> None:
        """Numbers, segments, workflows, agents and teams named by the definition are this workspace's."""
        problems: dict[str, str] = {}
        for where, value in (("account_id", definition.account_id), ("trigger.account_id",
                                                                     definition.trigger.account_id)):
            if value and await WhatsAppAccount.find_one({"_id": parse_object_id(value),
                                                         "workspace_id": workspace_id}) is None:
                problems[where] = "not one of this workspace's numbers"
        trigger = definition.trigger
        if trigger.segment_id and await Segment.find_one({"_id": parse_object_id(trigger.segment_id),
                                                          "workspace_id": workspace_id}) is None:
            problems["trigger.segment_id"] = "not one of this workspace's segments"
        for step, where, _ in walk(definition.steps):
            p = step.params
            refs: list[tuple[str, Any, Any]] = []
            if step.type == "start_workflow":
                refs.append(("workflow_id", Workflow, p.get("workflow_id")))
            if step.type == "assign" and p.get("to") == "agent":
                refs.append(("user_id", User, p.get("user_id")))
            if step.type == "assign" and p.get("team_id"):
                refs.append(("team_id", Team, p.get("team_id")))
            if step.type == "notify":
                refs += [("user_ids", User, u) for u in p.get("user_ids") or []]
            for name, model, value in refs:
                found = await model.find_one({"_id": parse_object_id(str(value)), "workspace_id": workspace_id})
                if found is None:
                    problems[f"{where}.params.{name}"] = "not in this workspace (deleted?)"
        if problems:
            raise ValidationFailed("The workflow names something that is not there.", error_code="WORKFLOW_INVALID",
                                   details=problems)

    async def set_enabled(self, workspace_id: PydanticObjectId, workflow_id: str, enabled: bool,
                          by: PydanticObjectId | None = None) -> Workflow:
        workflow = await self.get(workspace_id, workflow_id)
        raw = {**workflow_view(workflow), "enabled": enabled}
        return await self.save(workspace_id, _definition_fields(raw), workflow_id=workflow_id, by=by)

    async def delete(self, workspace_id: PydanticObjectId, workflow_id: str) -> None:
        workflow = await self.get(workspace_id, workflow_id)
        await self.engine.stop_all(workflow.id, "the workflow was deleted")  # type: ignore[arg-type]
        await workflow.delete()
        await self.triggers.changed(workspace_id)
        await audit.record(workspace_id, "workflow.deleted", "workflow", workflow.id, workflow.name)

    def _new_signing_secret(self, workflow: Workflow) -> str:
        secret = new_signing_secret()
        workflow.signing_secret = self.box.encrypt(secret)
        workflow.signing_secret_last4 = secret[-4:]
        return secret

    async def rotate_signing_secret(self, workspace_id: PydanticObjectId, workflow_id: str) -> str:
        """A new key for the HTTP steps' signatures; returned this once (only its last 4 are shown later)."""
        workflow = await self.get(workspace_id, workflow_id)
        secret = self._new_signing_secret(workflow)
        workflow.updated_at = utcnow()
        await workflow.save()
        await audit.record(workspace_id, "workflow.secret_rotated", "workflow", workflow.id, workflow.name,
                           {"signing_secret": audit.CHANGED})
        return secret

    async def new_webhook_token(self, workspace_id: PydanticObjectId, workflow_id: str) -> Workflow:
        workflow = await self.get(workspace_id, workflow_id)
        workflow.webhook_secret = self.box.encrypt(secrets.token_urlsafe(24))
        workflow.updated_at = utcnow()
        await workflow.save()
        return workflow

    # -- ready-made workflows ----------------------------------------------------------------------
    @staticmethod
    def ready_made() -> list[dict[str, Any]]:
        return [{"key": key, "name": item["name"], "description": item["description"]}
                for key, item in READY_MADE.items()]

    async def from_ready_made(self, workspace_id: PydanticObjectId, key: str, *,
                              by: PydanticObjectId | None = None) -> Workflow:
        item = READY_MADE.get(key)
        if item is None:
            raise NotFound("no such ready-made workflow", details={"key": key})
        raw = _definition_fields(item)
        raw["enabled"] = False  # an admin reads it and turns it on
        names = {w.name for w in await self.all(workspace_id)}
        base, n = raw["name"], 2
        while raw["name"] in names:
            raw["name"] = f"{base} ({n})"
            n += 1
        return await self.save(workspace_id, raw, by=by)

    # -- runs --------------------------------------------------------------------------------------
    async def start_by_hand(self, workspace_id: PydanticObjectId, workflow_id: str, *,
                            contact_id: str | None = None, conversation_id: str | None = None,
                            by: PydanticObjectId | None = None, by_name: str = "the API",
                            data: dict[str, Any] | None = None) -> WorkflowRun:
        """A run started by an agent (from a conversation) or the API (a contact or a conversation): any
        workflow that is on, whatever its trigger; its conditions still apply."""
        workflow = await self.get(workspace_id, workflow_id)
        if not workflow.enabled:
            raise ValidationFailed("Turn the workflow on first.", error_code="WORKFLOW_OFF",
                                   details={"workflow_id": workflow_id})
        conversation = None
        if conversation_id:
            conversation = await Conversation.get_scoped(workspace_id, conversation_id)
            contact = await Contact.get_scoped(workspace_id, conversation.contact_id)
        elif contact_id:
            contact = await Contact.get_scoped(workspace_id, contact_id)
        else:
            raise ValidationFailed("Name a contact or a conversation.", error_code="RUN_TARGET_MISSING",
                                   details={"contact_id": "missing", "conversation_id": "missing"})
        run = await self.engine.start(workflow, contact, conversation=conversation, started_by=by,
                                      trigger={"type": "manual", "by": by_name},
                                      vars_={"webhook": data} if data else None)
        if run is None:
            raise Conflict("Not started: the workflow's conditions do not hold for this contact, it is already "
                           "running for them, or it reached its runs per hour.", error_code="RUN_NOT_STARTED",
                           details={"workflow_id": workflow_id})
        return run

    async def from_webhook(self, workflow_id: str, token: str, body: dict[str, Any]) -> WorkflowRun:
        """The incoming-webhook trigger: the workflow's secret URL, a contact by phone or id, optional data."""
        workflow = await Workflow.find_one({"_id": parse_object_id(workflow_id)})
        if workflow is None or not workflow.webhook_secret or \
                not secrets.compare_digest(self.box.decrypt(workflow.webhook_secret).encode(), token.encode()):
            raise NotFound("no such workflow webhook")
        if workflow.trigger.get("type") != "webhook" or not workflow.enabled:
            raise ValidationFailed("This workflow is off or not started by a webhook.", error_code="WORKFLOW_OFF",
                                   details={})
        contact = await self._contact_of(workflow.workspace_id, body)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        run = await self.engine.start(workflow, contact, trigger={"type": "webhook"},
                                      dedupe_key=f"webhook:{body['id']}" if isinstance(body.get("id"), str) else None,
                                      vars_={"webhook": data})
        if run is None:
            raise Conflict("Not started: conditions, a run in progress, this event id seen before, or the runs "
                           "per hour.", error_code="RUN_NOT_STARTED", details={})
        return run

    async def _contact_of(self, workspace_id: PydanticObjectId, body: dict[str, Any]) -> Contact:
        if isinstance(body.get("contact_id"), str):
            return await Contact.get_scoped(workspace_id, body["contact_id"])
        phone = body.get("phone")
        if isinstance(phone, str) and phone.strip():
            from app.domains.contacts.services import ContactService
            from app.whatsapp import payloads
            from app.whatsapp.validation import PayloadError

            try:
                number = payloads.normalize_recipient(phone)
            except PayloadError as exc:
                raise ValidationFailed(exc.message, error_code="RECIPIENT_INVALID", details={"phone": exc.message}
                                       ) from None
            contact, _ = await ContactService().upsert(workspace_id, wa_id=number[1:])
            return contact
        raise ValidationFailed("Send {\"phone\": \"+15551234567\"} or {\"contact_id\": ...}.",
                               error_code="RUN_TARGET_MISSING", details={"phone": "missing"})

    async def runs(self, workspace_id: PydanticObjectId, *, workflow_id: str | None = None,
                   contact_id: str | None = None, conversation_id: str | None = None, status: str | None = None,
                   limit: int = 50) -> list[WorkflowRun]:
        query: dict[str, Any] = {"workspace_id": workspace_id}
        for field, value in (("workflow_id", workflow_id), ("contact_id", contact_id),
                             ("conversation_id", conversation_id)):
            if value:
                oid = parse_object_id(value)
                if oid is None:
                    raise NotFound(f"{field.removesuffix('_id')} not found", details={field: value})
                query[field] = oid
        if status == "active":
            query["status"] = {"$in": list(ACTIVE)}
        elif status:
            query["status"] = status
        return await WorkflowRun.find(query).sort("-_id").limit(max(1, min(limit, 200))).to_list()

    async def run(self, workspace_id: PydanticObjectId, run_id: str) -> WorkflowRun:
        return await WorkflowRun.get_scoped(workspace_id, run_id)

    @staticmethod
    async def visible_conversation(scope: Scope, conversation_id: str) -> Conversation:
        return await visible_conversation(scope, conversation_id)

    async def visible_run(self, scope: Scope, run_id: str) -> WorkflowRun:
        """A run the caller may see: admins any of the workspace's, others those of conversations they see."""
        run = await WorkflowRun.get_scoped(scope.workspace_id, run_id)
        if not scope.everything:
            if run.conversation_id is None:
                raise NotFound("workflowrun not found", details={"id": run_id})
            try:
                await visible_conversation(scope, run.conversation_id)
            except NotFound:
                raise NotFound("workflowrun not found", details={"id": run_id}) from None
        return run

    async def stop(self, workspace_id: PydanticObjectId, run_id: str, *, by: str) -> WorkflowRun:
        return await self.engine.stop(workspace_id, run_id, by=by)

    async def names(self, workspace_id: PydanticObjectId, ids: list[PydanticObjectId]) -> dict[str, str]:
        found = await Workflow.find(Workflow.workspace_id == workspace_id, In(Workflow.id, ids)).to_list()
        return {str(w.id): w.name for w in found}

    # -- the dry run -------------------------------------------------------------------------------
    async def dry_run(self, workspace_id: PydanticObjectId, raw: dict[str, Any], *, contact_id: str | None = None,
                      text: str | None = None, answers: list[str] | None = None) -> dict[str, Any]:
        definition = check_definition(raw)
        contact = await Contact.get_scoped(workspace_id, contact_id) if contact_id else Contact(
            workspace_id=workspace_id, key="dry-run", name="Sample contact")
        conversation = await Conversation.find(Conversation.workspace_id == workspace_id,
                                               Conversation.contact_id == contact.id
                                               ).sort("-last_message_at").first_or_none() if contact_id else None
        return await dry_run(self.engine, definition, contact, conversation, text, list(answers or []))


def _definition_fields(raw: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "description", "enabled", "trigger", "conditions", "steps", "account_id",
            "max_messages_per_hour", "max_runs_per_hour")
    return {k: raw[k] for k in keys if k in raw and raw[k] is not None}
