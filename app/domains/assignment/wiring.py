"""Builds presence and the auto-assigner for a Runtime (kept here so app/runtime.py gains two lines)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.domains.assignment.presence import Presence
from app.domains.assignment.services import AssignmentRules, AutoAssigner
from app.domains.conversations.actions import ConversationActions
from app.queue import enqueue_assign_waiting, enqueue_auto_assign, enqueue_reassign_offline

if TYPE_CHECKING:
    from app.runtime import Runtime


def build_assignment(runtime: Runtime) -> tuple[Presence, AutoAssigner]:
    """Presence (heartbeats, chosen statuses) and the AutoAssigner, queuing its jobs on the runtime's pool."""

    async def assign_job(workspace_id: str, conversation_id: str, message_id: str) -> None:
        if runtime.arq is not None:
            await enqueue_auto_assign(runtime.arq, workspace_id, conversation_id, message_id)

    async def waiting_job(workspace_id: str) -> None:
        if runtime.arq is not None:
            await enqueue_assign_waiting(runtime.arq, workspace_id)

    async def reassign_job(workspace_id: str) -> None:
        if runtime.arq is not None:
            await enqueue_reassign_offline(runtime.arq, workspace_id)

    presence = Presence(runtime.redis, runtime.settings.presence_timeout_seconds)
    assigner = AutoAssigner(AssignmentRules(changes=runtime.changes), presence, ConversationActions(runtime.live),
                            runtime.redis, enqueue_assign=assign_job, enqueue_waiting=waiting_job,
                            enqueue_reassign=reassign_job)
    presence.came_online.append(assigner.on_came_online)
    presence.went_away.append(assigner.on_went_away)
    return presence, assigner

