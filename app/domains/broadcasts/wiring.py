"""Builds the broadcast sender and service for a Runtime, queuing their jobs on the runtime's pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.domains.broadcasts.sending import BroadcastSender
from app.domains.broadcasts.services import BroadcastService
from app.queue import enqueue_broadcast_reply, enqueue_broadcast_slice, enqueue_contact_import

if TYPE_CHECKING:
    from app.runtime import Runtime


def build_broadcasts(runtime: Runtime) -> BroadcastService:
    async def slice_job(broadcast_id: str, generation: int, defer: float) -> None:
        if runtime.arq is not None:
            await enqueue_broadcast_slice(runtime.arq, broadcast_id, generation, defer=defer)

    async def import_job(import_id: str, generation: int) -> None:
        if runtime.arq is not None:
            await enqueue_contact_import(runtime.arq, import_id, generation)

    service = BroadcastService(BroadcastSender(runtime.outbox, runtime.live, slice_job,
                                               emit=runtime.integrations.emit), continue_import=import_job)

    async def on_live_event(workspace_id: Any, event: str, data: dict[str, Any]) -> None:
        """A customer's message may answer a broadcast: a job marks its recipient replied (only in workspaces
        that sent a broadcast lately: a cached answer, no database operation otherwise). A broadcast's message
        failed with a code that means the number must stop: the broadcast pauses."""
        if event == "message.updated" and data.get("status") == "failed" and data.get("broadcast_id"):
            await service.sender.on_failed(str(data["broadcast_id"]), data.get("error_code"))
            return
        if event != "message.created" or data.get("direction") != "inbound" or "message_id" not in data:
            return
        if runtime.arq is not None and await service.has_recent(workspace_id):
            await enqueue_broadcast_reply(runtime.arq, str(workspace_id), str(data["message_id"]))

    runtime.live.listeners.append(on_live_event)
    return service
