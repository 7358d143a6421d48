"""Finding one conversation or message for a caller: 404 outside their scope (access/scope.py)."""

from __future__ import annotations

from beanie import PydanticObjectId

from app.domains.access.scope import Scope, scope_of
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.errors import NotFound


async def visible_conversation(who: PydanticObjectId | Scope, conversation_id: str | PydanticObjectId | None
                               ) -> Conversation:
    """The conversation, or NotFound when it is another workspace's or outside the caller's scope (the
    same answer as a made-up id: nobody learns it exists)."""
    scope = scope_of(who)
    conversation = await Conversation.get_scoped(scope.workspace_id, conversation_id)
    if not scope.sees(conversation):
        raise NotFound("conversation not found", details={"id": str(conversation_id)})
    return conversation


async def visible_message(who: PydanticObjectId | Scope, message_id: str | PydanticObjectId | None) -> Message:
    """The message, or NotFound when its conversation is not visible (as ``visible_conversation``)."""
    scope = scope_of(who)
    message = await Message.get_scoped(scope.workspace_id, message_id)
    if not scope.everything and message.account_id not in scope.account_ids:
        conversation = await Conversation.get(message.conversation_id)
        if conversation is None or not scope.sees(conversation):
            raise NotFound("message not found", details={"id": str(message_id)})
    return message
