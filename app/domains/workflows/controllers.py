"""Admin pages "Workflows": the list (trigger in words, on / off, runs in progress, ready-made ones to copy),
the editor (the whole definition travels as JSON in one hidden field, built by static/js/workflows.js from
its forms; a refused one comes back 422 with each message placed next to its field), the dry run (JSON,
for the editor's panel) and a workflow's runs with their logs (stop an active one).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from app.auth import requires_admin
from app.domains.contacts.directory import ContactDirectory
from app.domains.segments.services import SegmentService
from app.domains.team.services import TeamAdmin
from app.domains.workflows.definition import CONDITION_FIELDS, MAX_TEXT, OPS, PRIORITIES, STEP_TYPES, TRIGGERS
from app.domains.workflows.models import run_summary
from app.domains.workspaces.services import Principal
from app.errors import AppError, NotFound, ValidationFailed
from app.forms import errors_of, go_to, read_form
from app.runtime import Runtime

RUN_FILTERS = ("active", "completed", "stopped", "failed")
RECENT_CONTACTS = 50
MAX_ANSWERS = 20
BLANK = {"name": "", "description": "", "enabled": False, "trigger": {"type": "message_received", "match": "any"},
         "conditions": {"match": "all", "conditions": []}, "steps": []}
STEP_NAMES = {"send_text": "Send a text", "send_media": "Send media", "send_buttons": "Send buttons",
              "send_template": "Send a template", "ask": "Ask a question", "condition": "Condition",
              "assign": "Assign", "tags": "Change tags", "labels": "Change labels",
              "set_attribute": "Set an attribute", "set_status": "Set the status", "set_priority": "Set the priority",
              "note": "Add a note", "notify": "Notify agents", "wait": "Wait", "http": "Call a URL (HTTP)",
              "start_workflow": "Start another workflow", "jump": "Jump to a step", "stop": "Stop"}
PARAM_NAMES = {"text": "Text", "question": "Question", "buttons": "Buttons", "kind": "Kind", "link": "Link",
               "caption": "Caption", "name": "Template name", "language": "Language", "params": "Parameters",
               "answer_type": "Answer type", "choices": "Choices", "save_as": "Save the answer as",
               "timeout_minutes": "Timeout (minutes)", "retries": "Retries", "retry_text": "Retry text",
               "to": "To", "user_id": "Agent", "team_id": "Team", "add": "Add", "remove": "Remove", "key": "Key",
               "value": "Value", "status": "Status", "snooze_minutes": "Snooze (minutes)", "priority": "Priority",
               "user_ids": "Agents", "minutes": "Minutes", "until_time": "Until", "attribute": "Attribute",
               "offset_minutes": "Offset", "method": "Method", "url": "URL", "save": "Save", "workflow_id": "Workflow"}


DEFINITION_KEYS = ("name", "description", "enabled", "trigger", "conditions", "steps", "account_id",
                   "max_messages_per_hour", "max_runs_per_hour")


def _definition_of(view: dict[str, Any]) -> dict[str, Any]:
    """The editable definition of a workflow's view (without its id, version, dates and webhook URL)."""
    return {key: view[key] for key in DEFINITION_KEYS if view.get(key) is not None}


def _directory(runtime: Runtime) -> ContactDirectory:
    return ContactDirectory(runtime.live, runtime.integrations)


def duration(minutes: int) -> str:
    """Minutes as people say them: 30 min, 2 h, 1 h 30 min, 24 h."""
    minutes = abs(int(minutes))
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" + (f" {rest} min" if rest else "")


def trigger_words(trigger: dict[str, Any], names: dict[str, str] | None = None) -> str:  # noqa: C901 - one per type
    """A trigger in words for the list: "Message contains: urgent, refund", "24 h before appointment_at"."""
    names = names or {}
    kind = trigger.get("type", "")
    words = ", ".join(str(k) for k in trigger.get("keywords") or [])
    if kind == "message_received":
        match = trigger.get("match", "any")
        said = {"any": "Any message", "keywords": f"Message contains: {words}",
                "phrase": f"Message contains the phrase: {words}", "exact": f"Message is exactly: {words}",
                "regex": f"Message matches: {trigger.get('pattern') or ''}"}.get(match, "A message")
    elif kind in ("no_agent_reply", "no_customer_reply"):
        who = "agent" if kind == "no_agent_reply" else "customer"
        said = f"No {who} reply for {duration(trigger.get('minutes') or 0)}"
    elif kind in ("tag_added", "tag_removed"):
        said = f"Tag {'added' if kind == 'tag_added' else 'removed'}: {trigger.get('tag') or ''}"
    elif kind == "attribute_changed":
        said = "Attribute changed" + (f": {trigger['attribute']}" if trigger.get("attribute") else "")
    elif kind == "date_reached":
        offset = int(trigger.get("offset_minutes") or 0)
        attribute = trigger.get("attribute") or ""
        said = f"At {attribute}" if not offset else \
            f"{duration(offset)} {'before' if offset < 0 else 'after'} {attribute}"
    elif kind == "segment_entered":
        said = f"Enters the segment {names.get(str(trigger.get('segment_id')), 'a removed segment')}"
    else:
        said = {"conversation_opened": "A conversation opens", "conversation_resolved": "A conversation is resolved",
                "contact_created": "A contact is created", "webhook": "An incoming webhook",
                "manual": "Started by hand (an agent or the API)"}.get(kind, kind)
    if trigger.get("account_id"):
        said += f" (on {names.get(str(trigger['account_id']), 'a removed number')})"
    return said


def _step_at(definition: Any, parts: list[str]) -> tuple[list[str], list[str]]:
    """Walk ``steps.2.branches.0.steps.1...``: the words of the place, and what is left of the path."""
    words: list[str] = []
    steps = definition.get("steps") if isinstance(definition, dict) else None
    step: Any = None
    while len(parts) >= 2 and parts[0] in ("steps", "branches") and parts[1].isdigit():
        index = int(parts[1])
        if parts[0] == "steps":
            step = steps[index] if isinstance(steps, list) and index < len(steps) else None
            kind = STEP_NAMES.get(str(step.get("type")), "") if isinstance(step, dict) else ""
            words.append(f"step {index + 1}" + (f" ({kind})" if kind else ""))
        else:
            branches = step.get("branches") if isinstance(step, dict) else None
            branch = branches[index] if isinstance(branches, list) and index < len(branches) else None
            label = branch.get("label") if isinstance(branch, dict) else None
            words.append(f"branch “{label}”" if label else f"branch {index + 1}")
            steps = branch.get("steps") if isinstance(branch, dict) else None
        parts = parts[2:]
    return words, parts


def place_words(path: str, definition: Any) -> str:
    """A place named by WORKFLOW_INVALID's details, in words: "Step 3 (Condition) › branch “urgent” › step 1
    (Send a text) › Text"."""
    parts = path.split(".")
    words, rest = _step_at(definition, parts)
    if rest and rest[0] == "params" and len(rest) > 1:
        words.append(PARAM_NAMES.get(rest[1], rest[1]))
    elif rest and rest[0] == "trigger":
        words.append("Trigger" + (f": {rest[1].replace('_', ' ')}" if len(rest) > 1 else ""))
    elif rest and rest[0] == "conditions":
        words.append("Conditions")
    elif rest and rest != ["params"]:
        words.append(" ".join(p.replace("_", " ") for p in rest))
    text = " › ".join(words) or path
    return text[:1].upper() + text[1:]


class WorkflowPages(Controller):
    path = "/admin/workflows"
    guards = [requires_admin]
    include_in_schema = False

    # -- the list ----------------------------------------------------------------------------------
    @get("/")
    async def index(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime],
                    deleted: FromQuery[str | None] = None) -> Template:
        ws = principal.workspace_id
        service = runtime.workflows
        workflows = await service.all(ws)
        counts = await service.active_counts(ws)
        names = await self._names(runtime, principal)
        rows = [{"id": str(w.id), "name": w.name, "description": w.description, "enabled": w.enabled,
                 "trigger": trigger_words(w.trigger, names), "active_runs": counts.get(str(w.id), 0),
                 "updated_at": w.updated_at} for w in workflows]
        return Template("admin/workflows/index.html", context={
            "active": "workflows", "rows": rows, "ready_made": service.ready_made(), "deleted": deleted})

    @post("/ready-made/{key:str}", status_code=303)
    async def use_ready_made(self, key: FromPath[str], request: Request, principal: NamedDependency[Principal],
                             runtime: NamedDependency[Runtime]) -> Response[Any]:
        workflow = await runtime.workflows.from_ready_made(principal.workspace_id, key, by=principal.user_id)
        return go_to(request, f"/admin/workflows/{workflow.id}?created=1")

    @post("/{workflow_id:str}/enabled", status_code=303)
    async def toggle(self, workflow_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> Response[Any]:
        form, _ = await read_form(request)
        await runtime.workflows.set_enabled(principal.workspace_id, workflow_id, form.get("enabled") == "on",
                                            by=principal.user_id)
        return go_to(request, "/admin/workflows")

    @post("/{workflow_id:str}/delete", status_code=303)
    async def delete(self, workflow_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> Response[Any]:
        await runtime.workflows.delete(principal.workspace_id, workflow_id)
        return go_to(request, "/admin/workflows?deleted=1")

    # -- the editor --------------------------------------------------------------------------------
    @get("/new")
    async def new(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> Template:
        return Template("admin/workflows/edit.html", context=await self._editor(runtime, principal, BLANK))

    @post("/new", status_code=303)
    async def create(self, request: Request, principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        return await self._save(request, runtime, principal, None)

    @get("/{workflow_id:str}")
    async def edit(self, workflow_id: FromPath[str], principal: NamedDependency[Principal],
                   runtime: NamedDependency[Runtime], saved: FromQuery[str | None] = None,
                   created: FromQuery[str | None] = None) -> Template:
        service = runtime.workflows
        view = service.view(await service.get(principal.workspace_id, workflow_id))
        notice = "Saved." if saved else ("Created from the ready-made workflow, turned off: read it, then turn "
                                         "it on." if created else None)
        return Template("admin/workflows/edit.html", context=await self._editor(
            runtime, principal, _definition_of(view), workflow_id=workflow_id, webhook_url=view.get("webhook_url"), notice=notice))

    @post("/{workflow_id:str}", status_code=303)
    async def update(self, workflow_id: FromPath[str], request: Request, principal: NamedDependency[Principal],
                     runtime: NamedDependency[Runtime]) -> Response[Any] | Template:
        return await self._save(request, runtime, principal, workflow_id)

    async def _save(self, request: Request, runtime: Runtime, principal: Principal,
                    workflow_id: str | None) -> Response[Any] | Template:
        form, _ = await read_form(request)
        service = runtime.workflows
        webhook_url = None
        if workflow_id is not None:  # 404 before anything else for a workflow that is not there
            webhook_url = service.view(await service.get(principal.workspace_id, workflow_id)).get("webhook_url")
        typed = form.get("definition", "")
        try:
            raw = json.loads(typed)
        except ValueError:
            raw = None
        try:
            if not isinstance(raw, dict):
                raise ValidationFailed("The editor sent no workflow: is JavaScript on?", error_code="WORKFLOW_INVALID",
                                       details={"definition": "not a JSON object"})
            workflow = await service.save(principal.workspace_id, raw, workflow_id=workflow_id, by=principal.user_id)
        except AppError as error:
            context = await self._editor(runtime, principal, raw if isinstance(raw, dict) else BLANK,
                                         workflow_id=workflow_id, webhook_url=webhook_url, error=error)
            return Template("admin/workflows/edit.html", context=context, status_code=error.status_code)
        return go_to(request, f"/admin/workflows/{workflow.id}?saved=1")

    async def _names(self, runtime: Runtime, principal: Principal) -> dict[str, str]:
        ws = principal.workspace_id
        segments = await SegmentService().list(ws)
        numbers = await runtime.accounts.list(ws)
        return {**{str(s.id): s.name for s in segments}, **{str(n.id): n.name for n in numbers}}

    async def _editor(self, runtime: Runtime, principal: Principal, definition: dict[str, Any], *,
                      workflow_id: str | None = None, webhook_url: str | None = None, notice: str | None = None,
                      error: AppError | None = None) -> dict[str, Any]:
        ws = principal.workspace_id
        people = TeamAdmin(runtime.people, runtime.settings.public_url)
        users = [u for u in await people.list_users(ws) if u.active]
        teams = await people.list_teams(ws)
        segments = await SegmentService().list(ws)
        numbers = await runtime.accounts.list(ws)
        workflows = await runtime.workflows.all(ws)
        recent = await _directory(runtime).page(ws, sort="last_inbound", limit=RECENT_CONTACTS)
        errors = errors_of(error)
        options = {
            "triggers": list(TRIGGERS), "step_types": [[t, STEP_NAMES[t]] for t in STEP_TYPES],
            "condition_fields": list(CONDITION_FIELDS), "ops": list(OPS), "priorities": list(PRIORITIES),
            "users": [{"id": str(u.id), "name": u.name or u.email} for u in users],
            "teams": [{"id": str(t.id), "name": t.name} for t in teams],
            "segments": [{"id": str(s.id), "name": s.name} for s in segments],
            "numbers": [{"id": str(n.id), "name": f"{n.name} ({n.display_phone_number})"} for n in numbers],
            "workflows": [{"id": str(w.id), "name": w.name} for w in workflows if str(w.id) != workflow_id],
        }
        data = {"definition": definition, "options": options, "errors": errors, "webhook_url": webhook_url,
                "workflow_id": workflow_id}
        return {"active": "workflows", "workflow_id": workflow_id, "name": definition.get("name") or "",
                "data": data, "error": error, "notice": notice, "webhook_url": webhook_url,
                "problems": [{"path": path, "place": place_words(path, definition), "message": message}
                             for path, message in errors.items()],
                "contacts": [{"id": str(c.id), "name": c.display_name, "phone": c.phone or ""} for c in recent.items]}

    # -- the dry run -------------------------------------------------------------------------------
    @post("/dry-run", status_code=200)
    async def dry_run(self, request: Request, principal: NamedDependency[Principal],
                      runtime: NamedDependency[Runtime]) -> Response[Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        try:
            if not isinstance(body, dict) or not isinstance(body.get("workflow"), dict):
                raise ValidationFailed("Send {\"workflow\": {...}}.", error_code="WORKFLOW_INVALID",
                                       details={"definition": "not a JSON object"})
            answers = body.get("answers") or []
            result = await runtime.workflows.dry_run(
                principal.workspace_id, body["workflow"], contact_id=str(body.get("contact_id") or "") or None,
                text=str(body.get("text") or "")[:MAX_TEXT] or None,  # the API's limits
                answers=[str(a)[:MAX_TEXT] for a in answers][:MAX_ANSWERS] if isinstance(answers, list) else [])
        except AppError as error:
            answer = error.to_dict()
            if error.error_code == "WORKFLOW_INVALID":
                answer["places"] = {path: place_words(path, body["workflow"] if isinstance(body, dict) else {})
                                    for path in error.details}
            return Response(answer, status_code=error.status_code)
        return Response(result, status_code=200)

    # -- runs --------------------------------------------------------------------------------------
    @get("/{workflow_id:str}/runs")
    async def runs(self, workflow_id: FromPath[str], principal: NamedDependency[Principal],
                   runtime: NamedDependency[Runtime], status: FromQuery[str | None] = None,
                   stopped: FromQuery[str | None] = None) -> Template:
        ws = principal.workspace_id
        service = runtime.workflows
        workflow = await service.get(ws, workflow_id)
        wanted = status if status in RUN_FILTERS else None
        runs = [run_summary(r) for r in await service.runs(ws, workflow_id=workflow_id, status=wanted, limit=100)]
        contacts = await self._contact_names(runtime, principal, {r["contact_id"] for r in runs})
        return Template("admin/workflows/runs.html", context={
            "active": "workflows", "workflow": {"id": str(workflow.id), "name": workflow.name}, "runs": runs,
            "status": wanted, "filters": RUN_FILTERS, "contacts": contacts, "stopped": stopped})

    @post("/{workflow_id:str}/runs/{run_id:str}/stop", status_code=303)
    async def stop_run(self, workflow_id: FromPath[str], run_id: FromPath[str], request: Request,
                       principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> Response[Any]:
        run = await runtime.workflows.run(principal.workspace_id, run_id)
        if str(run.workflow_id) != workflow_id:
            raise NotFound("workflowrun not found", details={"id": run_id})
        who = principal.user.name or principal.user.email if principal.user else "an admin"
        await runtime.workflows.stop(principal.workspace_id, run_id, by=who)
        return go_to(request, f"/admin/workflows/{workflow_id}/runs?stopped=1")

    @staticmethod
    async def _contact_names(runtime: Runtime, principal: Principal, ids: set[str]) -> dict[str, str]:
        directory = _directory(runtime)

        async def name(contact_id: str) -> tuple[str, str]:
            try:
                return contact_id, (await directory.get(principal.workspace_id, contact_id)).display_name
            except NotFound:
                return contact_id, "a deleted contact"

        return dict(await asyncio.gather(*(name(i) for i in ids)))
