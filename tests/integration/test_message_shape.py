"""One JSON shape for a message (issue 13): reading a thread, reading one message, sending, retrying,
adding a note and reacting all answer the same fields, which the OpenAPI document describes."""

from __future__ import annotations

from tests.support.api_world import build_world


async def test_every_route_answers_a_message_in_the_one_shape(client_factory):
    client = await client_factory(settings={"api_rate_limit_per_minute": 100_000})
    world = await build_world(client.app.state.runtime, "Shapes")
    conversation = world.conversations[0]
    auth = world.auth
    thread = (await client.get(f"/api/v1/conversations/{conversation.id}/messages", headers=auth)).json()["data"]
    quoted = next(m for m in thread if m["direction"] == "inbound")
    answers = {
        "thread": thread[0],
        "one": (await client.get(f"/api/v1/messages/{world.messages[0].id}", headers=auth)).json(),  # a picture
        "send": (await client.post(f"/api/v1/conversations/{conversation.id}/messages", headers=auth,
                                   json={"type": "text", "content": {"body": "Here you go"},
                                         "reply_to": quoted["id"]})).json(),
        "note": (await client.post(f"/api/v1/conversations/{conversation.id}/notes", headers=auth,
                                   json={"text": "VIP"})).json(),
        "retry": (await client.post(f"/api/v1/messages/{world.messages[3].id}/retry", headers=auth)).json(),
    }
    document = (await client.get("/schema/openapi.json")).json()
    described = set(document["components"]["schemas"]["MessageOut"]["properties"])
    for route, answer in answers.items():
        assert set(answer) == described, (route, set(answer) ^ described)
    sent = answers["send"]
    assert sent["reply_to"] == {"id": quoted["id"], "wamid": quoted["wamid"]}  # quotes say what they quote
    assert sent["to"] and sent["priority"] == "agent" and sent["status"] == "queued"
    assert answers["one"]["media"]["id"] and answers["one"]["media"]["url"].endswith(answers["one"]["media"]["id"])
    assert answers["retry"]["error"] is None and answers["retry"]["status"] == "queued"
