"""The read API: GET /api/v1/conversations and /conversations/{id}/messages, filters, cursors, bad input."""

from __future__ import annotations

import time

import pytest
from beanie import PydanticObjectId

from app.domains.conversations.models import Conversation
from tests.support.inbound import envelope, ingest_pending, make_setup, store_event, text_message

NOW = int(time.time())


@pytest.fixture
async def env(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    for i in range(7):  # seven customers, customer i wrote last at NOW + i
        await store_event(runtime, setup, envelope(messages=[
            text_message(f"c{i} m{j}", from_=f"9725000000{i:02d}", timestamp=NOW + i - 10 + j) for j in range(11)]))
    await ingest_pending(runtime)
    return client, setup


async def test_conversations_list_shape_order_and_cursor(env):
    client, setup = env
    first = await client.get("/api/v1/conversations", params={"limit": 3}, headers=setup.auth)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"data", "next_cursor"} and len(body["data"]) == 3 and body["next_cursor"]
    item = body["data"][0]
    assert {"id", "account_id", "contact", "status", "unread_count", "last_message_at", "window_expires_at"} <= set(item)
    assert set(item["contact"]) == {"id", "wa_id", "name", "phone", "user_id", "username", "kind"}
    assert item["contact"]["wa_id"] == "972500000006" and item["unread_count"] == 11
    seen = [c["contact"]["wa_id"] for c in body["data"]]
    cursor = body["next_cursor"]
    # A customer writing meanwhile jumps to the top; later pages neither repeat nor skip the others.
    runtime = client.app.state.runtime
    await store_event(runtime, setup, envelope(messages=[text_message("new", from_="972599999999", timestamp=NOW + 50)]))
    await ingest_pending(runtime)
    while cursor:
        page = (await client.get("/api/v1/conversations", params={"limit": 3, "cursor": cursor}, headers=setup.auth)).json()
        seen += [c["contact"]["wa_id"] for c in page["data"]]
        cursor = page["next_cursor"]
    assert seen == [f"9725000000{i:02d}" for i in range(6, -1, -1)]


async def test_conversation_filters(env):
    client, setup = env
    resolved = await Conversation.find_one({})
    await Conversation.find_one(Conversation.id == resolved.id).update({"$set": {"status": "resolved"}})
    only = (await client.get("/api/v1/conversations", params={"status": "resolved"}, headers=setup.auth)).json()
    assert [c["id"] for c in only["data"]] == [str(resolved.id)]
    answer = await client.get("/api/v1/conversations", params={"account_id": str(setup.account.id), "status": "open"},
                              headers=setup.auth)
    assert answer.status_code == 200, answer.text
    mine = answer.json()
    assert len(mine["data"]) == 6
    other = (await client.get("/api/v1/conversations", params={"account_id": "0" * 24}, headers=setup.auth)).json()
    assert other == {"data": [], "next_cursor": None}


@pytest.mark.parametrize("params,code", [
    ({"status": "closed"}, "VALIDATION_ERROR"), ({"account_id": "nope"}, "VALIDATION_ERROR"),
    ({"limit": "0"}, "VALIDATION_ERROR"), ({"limit": "1000"}, "VALIDATION_ERROR"), ({"limit": "x"}, "VALIDATION_ERROR"),
    ({"cursor": "!!!"}, "INVALID_CURSOR"), ({"cursor": "eyJsIjoieCJ9"}, "INVALID_CURSOR"),
])
async def test_bad_list_parameters_are_400(env, params, code):
    client, setup = env
    response = await client.get("/api/v1/conversations", params=params, headers=setup.auth)
    assert response.status_code == 400 and response.json()["error_code"] == code


async def test_messages_newest_first_with_cursor_and_scoping(env):
    client, setup = env
    conversation = (await client.get("/api/v1/conversations", params={"limit": 1}, headers=setup.auth)).json()["data"][0]
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    texts, cursor = [], None
    while True:
        page = (await client.get(url, params={"limit": 4, **({"cursor": cursor} if cursor else {})},
                                 headers=setup.auth)).json()
        texts += [m["content"]["body"] for m in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert texts == [f"c6 m{j}" for j in range(10, -1, -1)]
    message = page["data"][-1]
    assert {"id", "wamid", "direction", "type", "content", "status", "error", "reactions", "reply_to",
            "created_at"} <= set(message)
    # Another list's cursor, an unknown or malformed conversation id, no key: clear errors.
    other_cursor = (await client.get("/api/v1/conversations", params={"limit": 1}, headers=setup.auth)).json()["next_cursor"]
    assert (await client.get(url, params={"cursor": other_cursor}, headers=setup.auth)).json()["error_code"] == "INVALID_CURSOR"
    assert (await client.get("/api/v1/conversations/" + "0" * 24 + "/messages", headers=setup.auth)).status_code == 404
    assert (await client.get("/api/v1/conversations/not-an-id/messages", headers=setup.auth)).status_code == 404
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers={"Authorization": "Bearer wai_wrong"})).status_code == 401


async def test_the_inbox_and_the_api_page_with_one_cursor(env):
    """One cursor codec (app/pagination.py): the inbox list and the API's conversation list walk the same
    order, so each pages on from the other's cursor; the inbox thread and the API's messages likewise.
    A cursor of another order, or garbage, is INVALID_CURSOR (400) on the API and on the inbox pages."""
    from app.domains.inbox.queries import InboxQueries, ListFilters
    from app.pagination import InvalidCursor

    client, setup = env
    inbox, everything = InboxQueries(), ListFilters.parse({"status": "all"})
    first = await inbox.list_page(setup.workspace_id, everything, None, limit=3)
    seen = [str(row.c.id) for row in first.rows]
    api = (await client.get("/api/v1/conversations", params={"limit": 10, "cursor": first.next_cursor},
                            headers=setup.auth)).json()
    seen += [c["id"] for c in api["data"]]
    assert len(seen) == len(set(seen)) == 7
    api_first = (await client.get("/api/v1/conversations", params={"limit": 3}, headers=setup.auth)).json()
    rest = await inbox.list_page(setup.workspace_id, everything, None, cursor=api_first["next_cursor"], limit=10)
    assert [str(row.c.id) for row in rest.rows] == seen[3:]

    conversation = await Conversation.get(PydanticObjectId(api_first["data"][0]["id"]))
    url = f"/api/v1/conversations/{conversation.id}/messages"
    older = (await inbox.thread_page(conversation, limit=4)).older_cursor
    api_messages = (await client.get(url, params={"limit": 4, "cursor": older}, headers=setup.auth)).json()
    assert [m["content"]["body"] for m in api_messages["data"]] == ["c6 m6", "c6 m5", "c6 m4", "c6 m3"]
    thread = await inbox.thread_page(conversation, before=api_messages["next_cursor"], limit=4)
    assert [m.m.content["body"] for m in thread.messages] == ["c6 m0", "c6 m1", "c6 m2"]

    for bad in ("!!!", older):  # garbage; a thread's cursor on the conversation list
        with pytest.raises(InvalidCursor):
            await inbox.list_page(setup.workspace_id, everything, None, cursor=bad)
        answer = await client.get("/api/v1/conversations", params={"cursor": bad}, headers=setup.auth)
        assert answer.status_code == 400 and answer.json()["error_code"] == "INVALID_CURSOR"
    with pytest.raises(InvalidCursor):
        await inbox.thread_page(conversation, before=first.next_cursor)
