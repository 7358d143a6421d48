"""Reading messages: a conversation's thread, page by page, with quoted messages resolved."""

from __future__ import annotations

from beanie import PydanticObjectId
from beanie.operators import In

from app.domains.access.scope import Scope
from app.domains.access.services import visible_conversation
from app.domains.messages.models import Message
from app.pagination import DEFAULT_LIMIT, Page, paginate


def thread_listing(conversation_id: PydanticObjectId) -> str:
    """The cursor listing of a conversation's messages, newest first by _id (the API's and the inbox's)."""
    return f"messages:{conversation_id}"


class MessageQueries:
    async def thread(self, who: PydanticObjectId | Scope, conversation_id: str, *, limit: int = DEFAULT_LIMIT,
                     cursor: str | None = None) -> Page[Message]:
        """Newest first, by insertion order (_id): new messages never shift pages a client already has.
        NotFound for a conversation ``who`` does not see (access/scope.py)."""
        conversation = await visible_conversation(who, conversation_id)
        return await paginate(Message.scoped(conversation.workspace_id, Message.conversation_id == conversation.id),
                              thread_listing(conversation.id), field="_id", limit=limit, cursor=cursor)

    async def quoted_ids(self, workspace_id: PydanticObjectId, messages: list[Message]) -> dict[str, PydanticObjectId]:
        """wamid -> message id for the quoted messages that were stored after the reply was."""
        missing = list({m.reply_to_wamid for m in messages if m.reply_to_wamid and m.reply_to_id is None})
        if not missing:
            return {}
        found = await Message.scoped(workspace_id, In(Message.wamid, missing)).to_list()
        return {m.wamid: m.id for m in found if m.wamid}
