"""Every read the inbox, the outbox drainer and webhook ingestion make is served by a declared index.

The commands are taken from the driver while the product runs against the test's database server
(tests/support/command_capture.py: a pymongo command listener, registered before the app's client
exists; no product change). Each read (find, aggregate, count, distinct, and the filters of update,
delete and findAndModify) is checked against the indexes the server lists by MongoDB's index rule
(tests/support/index_rule.py: equality, then sort, then range; partial indexes only when mongod
can prove the filter implies theirs; a sorted read takes its order from the index). The server's
own explain() of each read goes to test-artifacts/index-explain.json, as information only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import timedelta

from beanie import PydanticObjectId

from app.db import document_models, utcnow
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.conversations.services import CONVERSATION_LISTING
from app.domains.inbox.queries import SEARCH_CAP, InboxQueries, ListFilters
from app.domains.messages.models import Message, MessageStatus, PendingStatus
from app.domains.messages.status import apply_waiting_statuses
from app.domains.outbox.drainer import drain
from app.domains.outbox.lanes import EPOCH_KEY
from app.domains.outbox.sweeper import sweep_outbox
from app.domains.webhooks.models import WebhookEvent
from app.domains.webhooks.services import prune_ingested_events, sweep_stale_events
from app.domains.workspaces.models import User
from app.pagination import encode_cursor
from tests.integration.outbound_env import outbound, sandbox_server  # noqa: F401
from tests.support.command_capture import (
    Captured,
    capture,
    explain_reads,
    phase,
    reads,
    server_indexes,
    verdicts,
    write_artifact,
)
from tests.support.inbound import (
    envelope,
    ingest_pending,
    make_setup,
    new_wamid,
    on_test_loop,
    signed,
    status,
    store_event,
    text_message,
)
from tests.support.inbound import outbound as stored_outbound
from tests.support.index_rule import Index, Query, Verdict, conjunction, plain

WS, ACCOUNT, AGENT = PydanticObjectId(), PydanticObjectId(), PydanticObjectId()


def database():
    return Message.get_motor_collection().database


async def check_all(scenario: str, seen: list[Captured], *,
                    by_design: Callable[[Query], tuple | None] | None = None) -> list[tuple[Captured, Verdict]]:
    """Check every read captured (the product's, and the few the test helpers make meanwhile); fail
    with one message per read no index serves.

    ``by_design(query)`` may name a read whose in-memory sort is a documented choice: it returns the
    index keys that must still bound that read (equality fields leading), or None.
    """
    collections = {q.collection for _, q in reads(seen)}
    indexes = await server_indexes(database(), collections)
    assert_declared_on_server(indexes)
    checked = verdicts(seen, indexes)
    write_artifact(scenario, await explain_reads(database(), checked))
    failures = []
    for captured, verdict in checked:
        if verdict.served:
            continue
        expected = by_design(verdict.query) if by_design else None
        if expected is not None:
            bounding = verdict.bounding
            if bounding is not None and bounding.index.keys == expected:
                continue
        failures.append(f"[{captured.label}] {verdict.message()}")
    assert not failures, "reads no declared index serves:\n\n" + "\n\n".join(failures)
    return checked


def assert_declared_on_server(indexes: dict[str, list[Index]]) -> None:
    """The indexes checked are the declared ones: each Document's Settings.indexes exist on the server."""
    models = {m.Settings.name: m for m in document_models() if hasattr(m.Settings, "name")}
    for collection, found in indexes.items():
        model = models.get(collection)
        assert model is not None, f"{collection}: no Document of the product"
        on_server = {(i.keys, repr(plain(i.partial))) for i in found}
        for declared in getattr(model.Settings, "indexes", []):
            wanted = Index.from_model(declared)
            assert (wanted.keys, repr(plain(wanted.partial))) in on_server, f"{collection}: {wanted} not on the server"


def seen_in(checked: list[tuple[Captured, Verdict]], label: str, collection: str, command: str = "find") -> list[Query]:
    return [v.query for c, v in checked if c.label == label and v.query.collection == collection
            and v.query.command == command]


# --------------------------------------------------------------------------------------------------
# The inbox: list (every filter, first page and cursor page), search, thread, unread, catch-up
# --------------------------------------------------------------------------------------------------

LIST_FILTERS = ({"status": "all"}, {"status": "open"}, {"status": "all", "assignee": "mine"},
                {"status": "all", "assignee": "unassigned"}, {"status": "all", "account": str(ACCOUNT)},
                {"status": "all", "label": "vip"}, {"status": "all", "q": "invoice 1"},
                {"status": "open", "q": "+1 555 000"}, {"status": "all", "q": "person 7"})
TOKENS = (("workspace_id", 1), ("search_tokens", 1))


def message_search(query: Query) -> tuple | None:
    """The search's message read (InboxQueries._search): the newest SEARCH_CAP hits of a token prefix.

    Bounded by the (workspace_id, search_tokens) index; its newest-first order is an in-memory
    top-SEARCH_CAP sort, by design: no index gives both the token range and the _id order (an
    (workspace_id, _id, search_tokens) index would walk every message of the workspace for a rare
    word, and double the largest multikey index). Any other unserved read fails.
    """
    preds = conjunction(query.filter).preds
    if (query.collection == "messages" and set(preds) == {"workspace_id", "search_tokens"}
            and query.sort == (("_id", -1),) and query.limit == SEARCH_CAP):
        return TOKENS
    return None


async def test_inbox_reads_are_served_by_declared_indexes(client_factory, settings) -> None:
    await client_factory()
    now = utcnow()
    agent = await User(workspace_id=WS, email="agent@example.com", name="Agent", role="agent",
                       password_hash="x").insert()
    conversations = []
    for i in range(30):
        contact = await Contact(workspace_id=WS, key=f"wa:1555000{i:04d}", wa_id=f"1555000{i:04d}",
                                phone=f"+1555000{i:04d}", profile_name=f"Person {i}").insert()
        conversation = await Conversation(workspace_id=WS, account_id=ACCOUNT, contact_id=contact.id,
                                          assignee_id=AGENT if i % 2 else None, labels=["vip"] if i % 3 else [],
                                          unread_count=i % 4, last_message_at=now - timedelta(minutes=i)).insert()
        conversations.append(conversation)
        for j in range(3):
            await Message(workspace_id=WS, conversation_id=conversation.id, account_id=ACCOUNT, contact_id=contact.id,
                          direction="inbound", type="text", content={"body": f"invoice {i} line {j}"},
                          wamid=f"wamid.{i}.{j}", status=MessageStatus.RECEIVED).insert()
    first = conversations[0]
    await Message(workspace_id=WS, conversation_id=first.id, account_id=ACCOUNT, contact_id=first.contact_id,
                  direction="outbound", type="text", content={"body": "see above"}, status=MessageStatus.SENT,
                  reply_to_wamid="wamid.0.1", sent_by=agent.id).insert()
    queries = InboxQueries()
    cursor = encode_cursor(CONVERSATION_LISTING, conversations[10].last_message_at, conversations[10].id)

    with capture(settings.mongodb_database) as seen:
        for params in LIST_FILTERS:
            phase(f"list {params}")
            await queries.list_page(WS, ListFilters.parse(params), AGENT, limit=5)
            phase(f"list {params} cursor")
            await queries.list_page(WS, ListFilters.parse(params), AGENT, cursor=cursor, limit=5)
        phase("thread")
        page = await queries.thread_page(first, limit=2)
        phase("thread older")
        await queries.thread_page(first, before=page.older_cursor, limit=2)
        phase("unread")
        await queries.unread_total(WS)
        phase("catch-up")
        await queries.changed_since(WS, now - timedelta(hours=1), ListFilters(), AGENT, first.id)
        phase("search_hit")
        await queries.search_hit(conversations[3], "invoice 3")
        await queries.search_hit(conversations[3], "person")

    checked = await check_all("inbox", seen, by_design=message_search)
    assert len(checked) >= 40
    for params in LIST_FILTERS:
        for label in (f"list {params}", f"list {params} cursor"):
            assert seen_in(checked, label, "conversations"), label
    assert any("$or" in q.filter for q in seen_in(checked, f"list {LIST_FILTERS[1]} cursor", "conversations"))
    search = seen_in(checked, f"list {LIST_FILTERS[6]}", "messages") + seen_in(checked, f"list {LIST_FILTERS[6]}", "contacts")
    assert {q.collection for q in search if "search_tokens" in conjunction(q.filter).preds} == {"messages", "contacts"}
    assert seen_in(checked, f"list {LIST_FILTERS[7]}", "contacts")  # a phone search: contacts only
    one_contact = seen_in(checked, f"list {LIST_FILTERS[8]}", "conversations")  # a name that matched one contact
    assert any(conjunction(q.filter).kind("contact_id") == "equality" for q in one_contact)
    thread = seen_in(checked, "thread", "messages")
    assert any(q.sort == (("_id", -1),) for q in thread)
    assert any("$or" in str(q.filter) and "wamid" in str(q.filter) for q in thread)  # the quoted message
    assert seen_in(checked, "thread", "users")  # the author
    assert len(seen_in(checked, "unread", "conversations")) == 2
    assert seen_in(checked, "catch-up", "conversations") and seen_in(checked, "catch-up", "messages")
    assert seen_in(checked, "search_hit", "contacts") and seen_in(checked, "search_hit", "messages")
    by_design = [v for _, v in checked if message_search(v.query)]
    assert by_design and all(not v.served and v.bounding.index.keys == TOKENS for v in by_design)


# --------------------------------------------------------------------------------------------------
# The outbox: the API's send (idempotent), one drain job, the sweeper after Redis lost its data
# --------------------------------------------------------------------------------------------------


async def test_outbox_send_drain_and_sweep_reads_are_served(outbound, settings) -> None:  # noqa: F811
    env = await outbound(inline_worker=False)
    account = await env.add_number()
    conversation = await env.conversation(account, "15550001111")
    runtime = env.runtime
    lost = PydanticObjectId()  # a number whose queued message Redis forgot
    stale = utcnow() - timedelta(minutes=5)
    await Message(workspace_id=env.workspace_id, conversation_id=PydanticObjectId(), account_id=lost,
                  contact_id=PydanticObjectId(), direction="outbound", type="text", content={"body": "x"},
                  status=MessageStatus.QUEUED, recipient="+15550002222", created_at=stale, updated_at=stale).insert()

    await PendingStatus(wamid="wamid.NEVER-STORED", status=MessageStatus.SENT, timestamp=stale,
                        received_at=utcnow() - timedelta(seconds=5)).insert()

    with capture(settings.mongodb_database) as seen:
        phase("send")
        headers = {**env.headers, "Idempotency-Key": "order-42"}
        body = {"type": "text", "content": {"body": "hello"}}
        path = f"/api/v1/conversations/{conversation.id}/messages"
        answer = await env.client.post(path, headers=headers, json=body)
        assert answer.status_code == 202, answer.text
        again = await env.client.post(path, headers=headers, json=body)
        assert again.json()["id"] == answer.json()["id"]
        phase("drain")
        assert await drain(runtime, str(account.id), linger=0) == "drained"
        phase("sweep")
        await runtime.redis.delete(EPOCH_KEY)  # as after a Redis restart: the lanes are rebuilt from Mongo
        report = await sweep_outbox(runtime.outbox.queue)
        assert report.rebuilt == 1
        assert await apply_waiting_statuses() == []  # the early status's message was never stored

    sent = await Message.get(PydanticObjectId(answer.json()["id"]))
    assert sent.status == MessageStatus.ACCEPTED and sent.wamid
    checked = await check_all("outbox", seen)
    assert any(q.filter and "idempotency_key" in str(q.filter) for q in seen_in(checked, "send", "messages"))
    drained = seen_in(checked, "drain", "messages") + seen_in(checked, "drain", "messages", "update")
    # What a send needs came with its lane entry: the drainer reads no message (only the entries a
    # sweep or a hand-over queued again are read, by _id).
    assert not any(q.command == "find" for q in drained), drained
    assert any(q.command == "update" and "status" in q.filter for q in drained)  # the acceptances
    assert not seen_in(checked, "drain", "pending_statuses")  # no read per acceptance for early statuses
    assert seen_in(checked, "sweep", "pending_statuses")  # the sweeper applies them
    assert any("wamid" in str(q.filter) for q in seen_in(checked, "sweep", "messages"))
    swept = [q for q in seen_in(checked, "sweep", "messages") if "wamid" not in str(q.filter)]
    assert len(swept) >= 3 and all(q.sort == (("_id", 1),) for q in swept)  # rebuild (2 batches) and requeue


# --------------------------------------------------------------------------------------------------
# Webhooks: the receiver's dedupe (primary key), ingestion's lookups by wamid, statuses, sweepers
# --------------------------------------------------------------------------------------------------


async def test_webhook_dedupe_and_ingest_reads_are_served(client_factory, settings) -> None:
    client = await client_factory()
    runtime = client.app.state.runtime
    setup = await make_setup(runtime)
    now = int(time.time())
    ours = new_wamid()
    await stored_outbound(setup, ours)
    first = text_message("hello", timestamp=now)
    delivery = envelope(messages=[first])

    with capture(settings.mongodb_database) as seen:
        phase("receive")
        event_id = await store_event(runtime, setup, delivery)
        phase("receive again")
        assert await store_event(runtime, setup, delivery) == event_id  # Meta redelivered the same body
        phase("ingest")
        assert await ingest_pending(runtime) == ["ingested"]
        phase("ingest reply, reaction, edit")
        reply = text_message("and this", timestamp=now + 1, context={"from": "972987654321", "id": first["id"]})
        reaction = {"from": "972987654321", "id": new_wamid(), "timestamp": str(now + 2), "type": "reaction",
                    "reaction": {"message_id": first["id"], "emoji": "👍"}}
        edit = {"from": "972987654321", "id": new_wamid(), "timestamp": str(now + 3), "type": "edit",
                "edit": {"original_message_id": reply["id"],
                         "message": {"type": "text", "text": {"body": "and that"}}}}
        await store_event(runtime, setup, envelope(messages=[reply, reaction, edit]))
        await ingest_pending(runtime)
        phase("ingest same wamid, another body")
        await store_event(runtime, setup, envelope(messages=[{**first, "text": {"body": "hello!"}}]))
        await ingest_pending(runtime)
        phase("ingest statuses")
        await store_event(runtime, setup, envelope(statuses=[status(ours, "delivered", now), status(ours, "read", now + 1),
                                                             status(new_wamid(), "sent", now)]))
        await ingest_pending(runtime)
        phase("webhook sweepers")
        async with on_test_loop(runtime) as local:
            await sweep_stale_events(local.arq, grace=timedelta(0))
        await prune_ingested_events()

    assert await Message.find({"wamid": first["id"]}).count() == 1
    checked = await check_all("webhooks", seen)
    inserts = [c for c in seen if c.name == "insert" and c.collection == "webhook_events"]
    body, _ = signed(delivery)
    assert [d["_id"] for c in inserts[:2] for d in c.command["documents"]] == [hashlib.sha256(body).hexdigest()] * 2
    for label in ("receive", "receive again"):  # the dedupe is the insert's primary key: no read before it
        assert [c.name for c in seen if c.label == label and c.collection == WebhookEvent.Settings.name] == ["insert"]
    assert await WebhookEvent.find({"_id": event_id}).count() == 1
    by_wamid = {c.label for c, v in checked if v.query.collection == "messages" and "wamid" in conjunction(v.query.filter).preds}
    assert by_wamid >= {"ingest reply, reaction, edit", "ingest same wamid, another body", "ingest statuses"}
    assert any(c.name == "insert" and c.collection == "pending_statuses" for c in seen)  # a status before its message
    assert seen_in(checked, "ingest statuses", "messages", "findAndModify")  # delivered, then read: one conditional update each
    assert seen_in(checked, "webhook sweepers", "webhook_events")
    assert seen_in(checked, "webhook sweepers", "webhook_events", "delete")
