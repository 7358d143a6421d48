"""Every read the inbox makes at list / thread / live time is answered from a declared index.

In memory the planner (app.mongomock_plan) must find a declared index for each query, and for a
sorted, limited page the index order must be the sort (a walk that stops at the limit), which is
also what lets MongoDB answer without an in-memory sort.
"""

from __future__ import annotations

from datetime import timedelta

from beanie import PydanticObjectId

import app.mongomock_fast as fast
from app.db import utcnow
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.inbox.queries import InboxQueries, ListFilters, encode_cursor
from app.domains.messages.models import Message, MessageStatus

WS, ACCOUNT, AGENT = PydanticObjectId(), PydanticObjectId(), PydanticObjectId()


async def test_list_thread_search_and_catch_up_read_declared_indexes(client_factory, monkeypatch) -> None:
    await client_factory()
    now = utcnow()
    conversations = []
    for i in range(30):
        contact = await Contact(workspace_id=WS, key=f"wa:1555000{i:04d}", wa_id=f"1555000{i:04d}",
                                profile_name=f"Person {i}").insert()
        conversation = await Conversation(workspace_id=WS, account_id=ACCOUNT, contact_id=contact.id,
                                          assignee_id=AGENT if i % 2 else None, labels=["vip"] if i % 3 else [],
                                          last_message_at=now - timedelta(minutes=i)).insert()
        conversations.append(conversation)
        for j in range(3):
            await Message(workspace_id=WS, conversation_id=conversation.id, account_id=ACCOUNT, contact_id=contact.id,
                          direction="inbound", type="text", content={"body": f"invoice {i} line {j}"},
                          status=MessageStatus.RECEIVED).insert()
    seen: list[tuple[str, dict, object, object]] = []
    original = fast.choose

    def recording(collection, spec, sort):
        plan = original(collection, spec, sort)
        seen.append((collection.name, spec, sort, plan))
        return plan

    monkeypatch.setattr(fast, "choose", recording)
    queries = InboxQueries()
    cursor = encode_cursor(conversations[10].last_message_at, conversations[10].id)
    for params in ({"status": "all"}, {"status": "open"}, {"status": "all", "assignee": "mine"},
                   {"status": "all", "assignee": "unassigned"}, {"status": "all", "account": str(ACCOUNT)},
                   {"status": "all", "label": "vip"}, {"status": "all", "q": "invoice 1"}):
        await queries.list_page(WS, ListFilters.parse(params), AGENT, limit=5)
        await queries.list_page(WS, ListFilters.parse(params), AGENT, cursor=cursor, limit=5)
    await queries.thread_page(conversations[0], limit=2)
    await queries.unread_total(WS)
    await queries.changed_since(WS, now - timedelta(hours=1), ListFilters(), AGENT, conversations[0].id)
    await queries.search_hit(conversations[3], "invoice 3")
    inbox_collections = {"conversations", "messages", "contacts"}
    checked = [s for s in seen if s[0] in inbox_collections]
    assert len(checked) >= 20
    for name, spec, sort, plan in checked:
        assert plan is not None, (name, spec, sort)
        if sort and "_id" not in spec:  # a sorted page: the index gives the order
            assert plan.reverse is not None or name == "messages" and "search_tokens" in str(spec), (name, spec, sort)
