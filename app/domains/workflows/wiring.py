"""Builds the workflow engine, its triggers and the service for a Runtime (app/runtime.py gains two lines)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from app.domains.contacts.editing import ContactEditing
from app.domains.conversations.actions import ConversationActions
from app.domains.workflows.engine import Tools, WorkflowEngine
from app.domains.workflows.services import WorkflowService
from app.domains.workflows.triggers import WorkflowTriggers
from app.queue import enqueue_workflow_event, enqueue_workflow_run

if TYPE_CHECKING:
    from app.runtime import Runtime


def build_workflows(runtime: Runtime) -> WorkflowService:
    """The service (``.engine``, ``.triggers``), queuing its jobs on the runtime's pool."""

    async def run_job(run_id: str, marker: str, at: datetime | None = None) -> None:
        if runtime.arq is not None:
            await enqueue_workflow_run(runtime.arq, run_id, marker, at)

    async def event_job(workspace_id: str, kind: str, ids: dict[str, str]) -> None:
        if runtime.arq is not None:
            await enqueue_workflow_event(runtime.arq, workspace_id, kind, ids)

    tools = Tools(outbox=runtime.outbox, actions=ConversationActions(runtime.live), editing=ContactEditing(runtime.live),
                  assigner=runtime.auto_assigner, business_hours=runtime.business_hours, http=runtime.webhook_http,
                  secrets=runtime.secrets, redis=runtime.redis, live=runtime.live, enqueue_run=run_job)
    engine = WorkflowEngine(tools)
    triggers = WorkflowTriggers(engine, event_job, changes=runtime.changes)
    return WorkflowService(engine, triggers, runtime.secrets, runtime.settings.public_url)
