"""The typing indicator: an agent typing a reply sends Meta's "typing…" (a read receipt with
``typing_indicator``) at most once per 20 s per conversation, across web processes, only in an open
24-h window, never for a note, never without an inbound message; the composer never waits for it."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest

from app.db import utcnow
from app.domains.contacts.services import ContactService
from app.domains.conversations.models import Conversation, MessagePreview
from app.domains.conversations.services import ConversationService
from app.domains.inbox.typing import TYPING_EVERY, typing_key
from app.domains.messages.models import Message
from tests.conftest import csrf_from, sign_in
from tests.support.inbound import deliver, envelope, make_setup, text_message, wait_for


class RecordingGraph:
    """Meta's Graph API for the app's HTTP pool: records every call, answers like Meta."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.url.path, json.loads(request.content or b"{}")))
        return httpx.Response(200, json={"success": True})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


@pytest.fixture
async def world(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    graph = RecordingGraph()
    runtime.accounts.http = graph.client()
    await sign_in(client, setup.email, setup.password)
    yield client, runtime, setup, graph
    await runtime.accounts.http.aclose()


async def _typing(client, conversation_id, mode: str = "text") -> httpx.Response:
    token = csrf_from((await client.get("/inbox")).text)
    return await client.post(f"/inbox/c/{conversation_id}/typing", data={"mode": mode},
                             headers={"HX-Request": "true", "X-CSRFToken": token})


async def _conversation_with(runtime, setup, wa_id: str, *, hours_ago: float = 0) -> tuple[Conversation, str]:
    """A customer's message (Meta's webhook, ingested) ``hours_ago``: its conversation and wamid."""
    message = text_message("hello", from_=wa_id, timestamp=int(time.time() - hours_ago * 3600))
    await deliver(runtime, setup, envelope(messages=[message]))
    stored = await Message.find_one(Message.wamid == message["id"])
    return await Conversation.get(stored.conversation_id), message["id"]


async def test_several_keystrokes_send_one_indicator_per_20_seconds(world, client_factory):
    client, runtime, setup, graph = world
    conversation, wamid = await _conversation_with(runtime, setup, "972500000001")
    page = await client.get(f"/inbox?c={conversation.id}")
    assert f'hx-post="/inbox/c/{conversation.id}/typing"' in page.text  # the composer asks while the agent types

    for _ in range(4):  # keystrokes within 20 s (the composer's own throttle would send fewer)
        answer = await _typing(client, conversation.id)
        assert answer.status_code == 204 and answer.content == b""
    await wait_for(lambda: _async(graph.calls))
    assert graph.calls == [(f"/{runtime.settings.graph_api_version}/{setup.account.phone_number_id}/messages", {
        "messaging_product": "whatsapp", "status": "read", "message_id": wamid, "typing_indicator": {"type": "text"}})]
    assert 0 < await runtime.redis.ttl(typing_key(conversation.id)) <= TYPING_EVERY

    # Another web process (same Redis, same database) within the 20 s: nothing either.
    other = await client_factory()
    other_graph = RecordingGraph()
    other.app.state.runtime.accounts.http = other_graph.client()
    await sign_in(other, setup.email, setup.password)
    assert (await _typing(other, conversation.id)).status_code == 204
    assert other_graph.calls == [] and len(graph.calls) == 1
    await other.app.state.runtime.accounts.http.aclose()

    # 20 s later (the key expired): the next keystroke sends again, for the customer's newest message.
    newer = text_message("one more thing", from_="972500000001")
    await deliver(runtime, setup, envelope(messages=[newer]))
    await runtime.redis.delete(typing_key(conversation.id))
    assert (await _typing(client, conversation.id)).status_code == 204
    await wait_for(lambda: _async(len(graph.calls) == 2))
    assert graph.calls[1][1]["message_id"] == newer["id"]


async def test_no_indicator_with_a_closed_window_a_note_or_nothing_inbound(world):
    client, runtime, setup, graph = world
    closed, _ = await _conversation_with(runtime, setup, "972500000002", hours_ago=30)
    assert not closed.window_open()
    assert (await _typing(client, closed.id)).status_code == 204

    open_, _ = await _conversation_with(runtime, setup, "972500000003")
    assert (await _typing(client, open_.id, mode="note")).status_code == 204  # an internal note: the customer is not told

    # An open window but no inbound message to point at (opened some other way).
    contact, _ = await ContactService().upsert(setup.workspace_id, wa_id="972500000004", profile_name="Quiet")
    quiet, _ = await ConversationService().open_for(setup.workspace_id, setup.account.id, contact.id)
    await ConversationService().record_inbound(quiet, utcnow() - timedelta(minutes=1), MessagePreview(text="hi"))
    assert (await Conversation.get(quiet.id)).window_open()
    assert (await _typing(client, quiet.id)).status_code == 204

    assert graph.calls == []
    for conversation in (closed, open_, quiet):  # nothing sent, so nothing holds the next 20 s
        assert await runtime.redis.exists(typing_key(conversation.id)) == 0


async def test_metas_refusal_is_only_logged_and_an_unknown_conversation_is_404(world):
    client, runtime, setup, graph = world
    conversation, _ = await _conversation_with(runtime, setup, "972500000005")

    def refuse(request: httpx.Request) -> httpx.Response:
        graph.calls.append((request.url.path, json.loads(request.content)))
        return httpx.Response(400, json={"error": {"message": "(#100) Invalid parameter", "type": "OAuthException",
                                                   "code": 100, "fbtrace_id": "A"}})

    await runtime.accounts.http.aclose()
    runtime.accounts.http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    assert (await _typing(client, conversation.id)).status_code == 204
    await wait_for(lambda: _async(graph.calls))
    assert (await client.get("/inbox")).status_code == 200  # the agent noticed nothing
    assert (await _typing(client, "0" * 24)).status_code == 404


async def _async(value):
    return value
