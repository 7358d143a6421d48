"""JSON API v1: workflows (admins), their runs (agents may start and stop them), the dry run, and the
incoming-webhook trigger's public endpoint."""

from __future__ import annotations

import json
from typing import Any, Literal

from litestar import Controller, MediaType, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, FromQuery, JSONBody
from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import ApiShape, documented
from app.auth import requires_admin, requires_login
from app.domains.workflows.definition import Definition
from app.domains.workflows.models import run_summary
from app.domains.workspaces.services import Principal
from app.error_handlers import handle_exception
from app.errors import PayloadTooLarge, ValidationFailed
from app.runtime import Runtime

MAX_HOOK_BODY = 64 * 1024


class WorkflowShape(ApiShape):
    id: str
    name: str
    description: str
    enabled: bool
    trigger: dict[str, Any]
    conditions: dict[str, Any]
    steps: list[dict[str, Any]]
    account_id: str | None
    max_messages_per_hour: int
    max_runs_per_hour: int
    version: int
    updated_at: str
    webhook_url: str | None = Field(None, description="The incoming-webhook trigger's secret URL (webhook triggers)")
    signing_secret_last4: str = Field("", description="The end of the key HTTP steps sign with (X-Inbox-Signature, "
                                                      "as event webhooks); the key is shown once")


class SigningSecretShape(ApiShape):
    secret: str = Field(description="The new signing secret of the workflow's HTTP steps: shown this once")


class WorkflowList(ApiShape):
    data: list[WorkflowShape]


class RunShape(ApiShape):
    id: str
    workflow_id: str
    workflow_name: str
    contact_id: str
    conversation_id: str | None
    status: Literal["running", "waiting", "completed", "stopped", "failed"]
    steps_done: int
    trigger: dict[str, Any]
    waiting: dict[str, Any] | None
    wake_at: str | None
    started_at: str
    ended_at: str | None
    end_reason: str | None
    log: list[dict[str, Any]] = Field(description="Each step: when, what it did (the last 200)")


class RunList(ApiShape):
    data: list[RunShape]


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact_id: str | None = None
    conversation_id: str | None = None
    data: dict[str, Any] | None = Field(None, description="Kept in the run as vars.webhook")


class EnabledIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workflow: Definition
    contact_id: str | None = Field(None, description="Test conditions on this contact (none: a sample contact)")
    text: str | None = Field(None, max_length=4096, description="The customer's message (message triggers)")
    answers: list[str] = Field(default_factory=list, max_length=20, description="Answers to questions, in order")


class ReadyMade(ApiShape):
    key: str = Field(description="What POST /api/v1/workflows/ready-made/{key} takes")
    name: str
    description: str


class ReadyMadeList(ApiShape):
    data: list[ReadyMade]


class DryRunShape(ApiShape):
    trigger_matches: bool
    conditions_hold: bool
    steps: list[dict[str, Any]]


def _who(principal: Principal) -> str:
    if principal.user is not None:
        return principal.user.name or principal.user.email
    return f"API key {principal.api_key.name}" if principal.api_key is not None else "the API"


def _definition(data: Definition) -> dict[str, Any]:
    return data.model_dump(mode="json", exclude_none=True)


def _refused_definition(prefix: str = "") -> dict[type[Exception], Any]:
    """A definition refused by its shape (a step type, a condition field, a JSON type, an unknown key) answers as
    one refused by ``check_definition``: 422 WORKFLOW_INVALID, ``details`` keyed by the place
    (``steps.0.type``), so an integrator reads every mistake of a workflow one way. ``prefix``: where the
    definition sits in the body (the dry run's ``workflow.``); other fields' mistakes keep the usual answer.
    (These routes take no query parameters to get wrong; unknown ones are refused before, as everywhere.)"""

    def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        extra = exc.extra if isinstance(exc, ValidationException) and isinstance(exc.extra, list) else []
        places: dict[str, str] = {}
        for e in extra:
            key = str(e.get("key") or "") if isinstance(e, dict) else ""
            if not isinstance(e, dict) or (prefix and not key.startswith(prefix) and key != prefix.rstrip(".")):
                return handle_exception(request, exc)
            place = key.removeprefix(prefix) if key.startswith(prefix) else ""
            places[place if place not in ("", "data") else "definition"] = str(e.get("message"))
        if not places:
            return handle_exception(request, exc)
        error = ValidationFailed("The workflow has mistakes: " + "; ".join(f"{k}: {v}" for k, v in
                                                                         list(places.items())[:5]),
                                 error_code="WORKFLOW_INVALID", details=places)
        return Response(error.to_dict(), status_code=error.status_code, media_type=MediaType.JSON)

    return {ValidationException: handler}


class WorkflowsApi(Controller):
    path = "/api/v1/workflows"
    guards = [requires_admin]
    tags = ["automations"]

    @get("/", summary="Workflows", responses=documented(200, WorkflowList, "Every workflow, by name"))
    async def list_workflows(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]
                             ) -> dict[str, Any]:
        service = runtime.workflows
        return {"data": [service.view(w) for w in await service.all(principal.workspace_id)]}

    @post("/", summary="Create a workflow", status_code=201, exception_handlers=_refused_definition(),
          description="A trigger, conditions and steps (see the README's Automations). Anything wrong is 422 "
                      "WORKFLOW_INVALID with one message per place in ``details`` (``steps.2.params.text``).",
          responses=documented(201, WorkflowShape, "The workflow"))
    async def create_workflow(self, data: JSONBody[Definition], principal: NamedDependency[Principal],
                              runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        service = runtime.workflows
        return service.view(await service.save(principal.workspace_id, _definition(data), by=principal.user_id))

    @get("/ready-made", summary="Ready-made workflows to copy",
         responses=documented(200, ReadyMadeList, "Each with its key, name and what it does"))
    async def ready_made(self, runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        return {"data": runtime.workflows.ready_made()}

    @post("/ready-made/{key:str}", summary="Create a workflow from a ready-made one (turned off)", status_code=201,
          responses=documented(201, WorkflowShape, "The new workflow"))
    async def copy_ready_made(self, key: FromPath[str], principal: NamedDependency[Principal],
                              runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        service = runtime.workflows
        return service.view(await service.from_ready_made(principal.workspace_id, key, by=principal.user_id))

    @post("/dry-run", summary="What a workflow would do for a contact and a message", status_code=200,
          exception_handlers=_refused_definition("workflow."), description="Nothing is sent, written or called.",
          responses=documented(200, DryRunShape, "Each step"))
    async def dry_run(self, data: JSONBody[DryRunIn], principal: NamedDependency[Principal],
                      runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        return await runtime.workflows.dry_run(principal.workspace_id, _definition(data.workflow),
                                               contact_id=data.contact_id, text=data.text, answers=data.answers)

    @get("/{workflow_id:str}", summary="One workflow", responses=documented(200, WorkflowShape, "It"))
    async def get_workflow(self, workflow_id: FromPath[str], principal: NamedDependency[Principal],
                           runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        service = runtime.workflows
        return service.view(await service.get(principal.workspace_id, workflow_id))

    @put("/{workflow_id:str}", summary="Replace a workflow", exception_handlers=_refused_definition(),
         description="Runs in progress keep the steps they started with.",
         responses=documented(200, WorkflowShape, "The workflow"))
    async def replace_workflow(self, workflow_id: FromPath[str], data: JSONBody[Definition],
                               principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]
                               ) -> dict[str, Any]:
        service = runtime.workflows
        return service.view(await service.save(principal.workspace_id, _definition(data), workflow_id=workflow_id,
                                               by=principal.user_id))

    @post("/{workflow_id:str}/enabled", summary="Turn a workflow on or off", status_code=200,
          description="Turning it off stops its runs in progress.",
          responses=documented(200, WorkflowShape, "The workflow"))
    async def set_enabled(self, workflow_id: FromPath[str], data: JSONBody[EnabledIn],
                          principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        service = runtime.workflows
        return service.view(await service.set_enabled(principal.workspace_id, workflow_id, data.enabled,
                                                      by=principal.user_id))

    @post("/{workflow_id:str}/webhook-token", summary="A new secret URL for the incoming-webhook trigger",
          status_code=200, responses=documented(200, WorkflowShape, "The workflow with its new webhook_url"))
    async def new_token(self, workflow_id: FromPath[str], principal: NamedDependency[Principal],
                        runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        service = runtime.workflows
        return service.view(await service.new_webhook_token(principal.workspace_id, workflow_id))

    @post("/{workflow_id:str}/signing-secret", summary="A new key for the HTTP steps' signatures (shown once)",
          status_code=200, responses=documented(200, SigningSecretShape, "The new secret"))
    async def rotate_signing_secret(self, workflow_id: FromPath[str], principal: NamedDependency[Principal],
                                    runtime: NamedDependency[Runtime]) -> dict[str, str]:
        return {"secret": await runtime.workflows.rotate_signing_secret(principal.workspace_id, workflow_id)}

    @delete("/{workflow_id:str}", summary="Delete a workflow (its runs in progress stop)", status_code=204)
    async def delete_workflow(self, workflow_id: FromPath[str], principal: NamedDependency[Principal],
                              runtime: NamedDependency[Runtime]) -> None:
        await runtime.workflows.delete(principal.workspace_id, workflow_id)


class WorkflowRunsApi(Controller):
    """Runs: agents start a workflow for a conversation they see and stop a run; admins list them all."""

    path = "/api/v1"
    guards = [requires_login]
    tags = ["automations"]

    @post("/workflows/{workflow_id:str}/runs", summary="Start a workflow for a contact or a conversation",
          status_code=201, description="Any workflow that is on, whatever its trigger; its conditions apply. "
                                       "409 RUN_NOT_STARTED when they do not hold, a run is in progress for the "
                                       "contact, or the workflow reached its runs per hour.",
          responses=documented(201, RunShape, "The run"))
    async def start_run(self, workflow_id: FromPath[str], data: JSONBody[RunIn], principal: NamedDependency[Principal],
                        runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        if data.conversation_id:  # an agent starts it only in a conversation they can see
            await runtime.workflows.visible_conversation(principal.scope, data.conversation_id)
        elif not principal.is_admin:
            raise ValidationFailed("Agents start a workflow in a conversation: send conversation_id.",
                                   error_code="RUN_TARGET_MISSING", details={"conversation_id": "missing"})
        run = await runtime.workflows.start_by_hand(principal.workspace_id, workflow_id, contact_id=data.contact_id,
                                                    conversation_id=data.conversation_id, by=principal.user_id,
                                                    by_name=_who(principal), data=data.data)
        return run_summary(run)

    @get("/workflow-runs", summary="Runs, newest first", responses=documented(200, RunList, "Up to limit runs"))
    async def list_runs(self, principal: NamedDependency[Principal], runtime: NamedDependency[Runtime],
                        workflow_id: FromQuery[str | None] = None, contact_id: FromQuery[str | None] = None,
                        conversation_id: FromQuery[str | None] = None,
                        status: FromQuery[Literal["active", "running", "waiting", "completed", "stopped",
                                                  "failed"] | None] = None,
                        limit: FromQuery[int] = 50) -> dict[str, Any]:
        if conversation_id:
            await runtime.workflows.visible_conversation(principal.scope, conversation_id)
        elif not principal.is_admin:
            raise ValidationFailed("Agents list the runs of a conversation: send conversation_id.",
                                   error_code="RUN_TARGET_MISSING", details={"conversation_id": "missing"})
        runs = await runtime.workflows.runs(principal.workspace_id, workflow_id=workflow_id, contact_id=contact_id,
                                            conversation_id=conversation_id, status=status, limit=limit)
        return {"data": [run_summary(r) for r in runs]}

    @get("/workflow-runs/{run_id:str}", summary="One run with its log", responses=documented(200, RunShape, "It"))
    async def get_run(self, run_id: FromPath[str], principal: NamedDependency[Principal],
                      runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        return run_summary(await runtime.workflows.visible_run(principal.scope, run_id))

    @post("/workflow-runs/{run_id:str}/stop", summary="Stop a run", status_code=200,
          description="422 RUN_ENDED when it has already ended.", responses=documented(200, RunShape, "The run"))
    async def stop_run(self, run_id: FromPath[str], principal: NamedDependency[Principal],
                       runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        run = await runtime.workflows.visible_run(principal.scope, run_id)
        return run_summary(await runtime.workflows.stop(principal.workspace_id, str(run.id), by=_who(principal)))


class WorkflowHooks(Controller):
    """The incoming-webhook trigger: a POST to the workflow's secret URL starts a run."""

    path = "/webhooks/workflows"
    tags = ["automations"]

    @post("/{workflow_id:str}/{token:str}", summary="Start a workflow from another system", status_code=202,
          description="Body: {\"phone\": \"+15551234567\"} or {\"contact_id\": ...}, optional \"data\" (kept as "
                      "vars.webhook) and \"id\" (an event id: the same id starts one run). 404 for a wrong URL.",
          responses=documented(202, RunShape, "The run"))
    async def hook(self, workflow_id: FromPath[str], token: FromPath[str], request: Request[Any, Any, Any],
                   runtime: NamedDependency[Runtime]) -> dict[str, Any]:
        too_large = PayloadTooLarge("The body is larger than 64 KB.", error_code="BODY_TOO_LARGE",
                                    details={"limit": MAX_HOOK_BODY})
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_HOOK_BODY:
            raise too_large
        raw = b""
        async for chunk in request.stream():  # read no more than the limit, whatever the sender declared
            raw += chunk
            if len(raw) > MAX_HOOK_BODY:
                raise too_large
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            raise ValidationFailed("The body must be JSON.", error_code="INVALID_JSON", details={}) from None
        if not isinstance(body, dict):
            raise ValidationFailed("The body must be a JSON object.", error_code="INVALID_JSON", details={})
        run = await runtime.workflows.from_webhook(workflow_id, token, body)
        return run_summary(run)
