"""The side panel's Automations section: this conversation's workflow runs, stop one, run a workflow.

Any signed-in agent who sees the conversation may do this (the same scope check as the panel's other
actions; the JSON API's rule, ``WorkflowRunsApi``). The section loads after the panel, off the
thread's path, and answers each action with itself; a refusal (the workflow is off, a run is already
in progress for the contact, the run has ended) is said inside it, never as an error page. While a
run is "running" (a worker is doing its steps, a second or so) the list asks again a few times, so
the agent sees it reach "waiting" or "completed" without reloading.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from app.auth import requires_login
from app.domains.conversations.models import Conversation
from app.domains.inbox.context import html, me, render
from app.domains.inbox.service import InboxService
from app.domains.inbox.views import RunView
from app.domains.workflows.models import ACTIVE
from app.domains.workspaces.services import Principal
from app.errors import ClientError, NotFound
from app.runtime import Runtime

ENDED_SHOWN = 5
POLLS = 20
"""How many times (every 2 s) a list with a run still "running" asks again before it waits for the agent."""


def _who(principal: Principal) -> str:
    return (principal.user.name or principal.user.email) if principal.user is not None else "an agent"


async def automations_context(runtime: Runtime, principal: Principal, conversation: Conversation,
                              **extra: Any) -> dict[str, Any]:
    """The runs of ``conversation`` (those in progress, then the last few ended) and the workflows an
    agent may start here (the workspace's enabled ones)."""
    workflows = runtime.workflows
    active = await workflows.runs(principal.workspace_id, conversation_id=str(conversation.id), status="active")
    # The newest len(active) + ENDED_SHOWN runs hold at least ENDED_SHOWN ended ones when there are that many.
    recent = await workflows.runs(principal.workspace_id, conversation_id=str(conversation.id),
                                  limit=len(active) + ENDED_SHOWN)
    active_ids = {run.id for run in active}
    ended = [RunView(run) for run in recent if run.id not in active_ids and run.status not in ACTIVE]
    choices = [(str(w.id), w.name) for w in await workflows.all(principal.workspace_id) if w.enabled]
    return {"conversation_id": str(conversation.id), "active_runs": [RunView(run) for run in active],
            "ended_runs": ended[:ENDED_SHOWN], "workflow_choices": choices, "automation_error": None,
            "automation_notice": None, "chosen_workflow": "", "poll": 0, "max_polls": POLLS, **extra}


class AutomationsController(Controller):
    path = "/inbox/c/{conversation_id:str}/automations"
    guards = [requires_login]
    include_in_schema = False

    @get("/")
    async def section(self, request: Request, runtime: NamedDependency[Runtime],
                      conversation_id: FromPath[str]) -> Response[str]:
        """The whole section (loaded after the panel); ``?part=runs&poll=n``: only the list of runs."""
        conversation = await InboxService(runtime).conversation(me(request).scope, conversation_id)
        try:
            poll = max(0, int(request.query_params.get("poll") or 0))
        except ValueError:
            poll = 0
        context = await automations_context(runtime, me(request), conversation, poll=poll)
        if request.query_params.get("part") == "runs":
            return html(render(request, "inbox/_automation_runs.html", **context))
        return html(render(request, "inbox/_automations.html", **context))

    @post("/run", status_code=200)
    async def run_workflow(self, request: Request, runtime: NamedDependency[Runtime],
                           conversation_id: FromPath[str]) -> Response[str]:
        principal = me(request)
        conversation = await InboxService(runtime).conversation(principal.scope, conversation_id)
        form = await request.form()
        workflow_id = str(form.get("workflow_id") or "").strip()
        if not workflow_id:
            return await self._answer(request, runtime, conversation, error="Pick a workflow to run.")
        try:
            run = await runtime.workflows.start_by_hand(principal.workspace_id, workflow_id,
                                                        conversation_id=str(conversation.id),
                                                        by=principal.user_id, by_name=_who(principal))
        except NotFound:
            return await self._answer(request, runtime, conversation, error="That workflow does not exist any more.")
        except ClientError as error:
            return await self._answer(request, runtime, conversation, error=error.message, chosen=workflow_id)
        return await self._answer(request, runtime, conversation, notice=f"Started “{run.workflow_name}”.")

    @post("/runs/{run_id:str}/stop", status_code=200)
    async def stop_run(self, request: Request, runtime: NamedDependency[Runtime], conversation_id: FromPath[str],
                       run_id: FromPath[str]) -> Response[str]:
        principal = me(request)
        conversation = await InboxService(runtime).conversation(principal.scope, conversation_id)
        try:
            run = await runtime.workflows.visible_run(principal.scope, run_id)
            if run.conversation_id != conversation.id:
                raise NotFound("workflowrun not found", details={"id": run_id})
            stopped = await runtime.workflows.stop(principal.workspace_id, str(run.id), by=_who(principal))
        except NotFound:
            return await self._answer(request, runtime, conversation, error="That run is not in this conversation.")
        except ClientError as error:
            return await self._answer(request, runtime, conversation, error=error.message)
        return await self._answer(request, runtime, conversation, notice=f"Stopped “{stopped.workflow_name}”.")

    async def _answer(self, request: Request, runtime: Runtime, conversation: Conversation, *,
                      error: str | None = None, notice: str | None = None, chosen: str = "") -> Response[str]:
        context = await automations_context(runtime, me(request), conversation, automation_error=error,
                                            automation_notice=notice, chosen_workflow=chosen)
        # A refusal is shown in the section (HTMX swaps 4xx only when told to), marked for scripts and tests.
        return html(render(request, "inbox/_automations.html", **context),
                    headers={"X-Inbox-Error": "1"} if error else None)
