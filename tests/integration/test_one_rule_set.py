"""One rule set for an action, whether an agent does it in the inbox or an integration through the API."""

from __future__ import annotations

from datetime import timedelta

from app.db import utcnow
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.workspaces.models import Workspace
from tests.integration.test_inbox_actions import conversation_of, setup


async def _api_key(client) -> dict[str, str]:
    workspace = await Workspace.find_one({})
    _, key = await client.app.state.runtime.people.create_api_key(workspace.id, "rules", "admin")
    return {"Authorization": f"Bearer {key}"}


async def test_a_reaction_outside_the_window_is_refused_by_the_inbox_and_the_api_alike(client_factory):
    client, headers = await setup(client_factory)
    api = await _api_key(client)
    maria = await conversation_of("Maria Silva")
    target = await Message.find_one(Message.conversation_id == maria.id, Message.direction == "inbound",
                                    Message.wamid != None)  # noqa: E711
    await Conversation.get_motor_collection().update_one(  # the customer last wrote more than 24 h ago
        {"_id": maria.id}, {"$set": {"window_expires_at": utcnow() - timedelta(minutes=1)}})

    from_inbox = await client.post(f"/inbox/m/{target.id}/react", data={"emoji": "👍"}, headers=headers)
    from_api = await client.post(f"/api/v1/messages/{target.id}/reactions", headers=api, json={"emoji": "👍"})
    assert from_inbox.status_code == from_api.status_code == 422
    assert "WINDOW_CLOSED" in from_inbox.text and from_api.json()["error_code"] == "WINDOW_CLOSED"
    assert (await Message.get(target.id)).reactions == []  # no chip the customer would never see
    assert await Message.find(Message.type == "reaction", Message.conversation_id == maria.id).count() == 0


async def test_a_reaction_inside_the_window_is_sent_and_shown_from_either_door(client_factory):
    client, headers = await setup(client_factory)
    api = await _api_key(client)
    maria = await conversation_of("Maria Silva")
    await Conversation.get_motor_collection().update_one(
        {"_id": maria.id}, {"$set": {"window_expires_at": utcnow() + timedelta(hours=2)}})
    first, second = await Message.find(Message.conversation_id == maria.id, Message.direction == "inbound",
                                       Message.wamid != None).limit(2).to_list()  # noqa: E711

    from_inbox = await client.post(f"/inbox/m/{first.id}/react", data={"emoji": "👍"}, headers=headers)
    from_api = await client.post(f"/api/v1/messages/{second.id}/reactions", headers=api, json={"emoji": "🙏"})
    assert from_inbox.status_code == 200 and 'class="chip"' in from_inbox.text
    assert from_api.status_code == 202 and from_api.json()["content"] == {"message_id": second.wamid, "emoji": "🙏"}
    assert [r.emoji for r in (await Message.get(first.id)).reactions if r.by == "agent"] == ["👍"]
    assert [r.emoji for r in (await Message.get(second.id)).reactions if r.by == "agent"] == ["🙏"]
    sent = await Message.find(Message.type == "reaction", Message.conversation_id == maria.id).to_list()
    assert sorted(m.content["emoji"] for m in sent) == ["👍", "🙏"]
