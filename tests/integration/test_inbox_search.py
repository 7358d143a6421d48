"""Inbox search: token prefixes of names, digits of numbers, words of messages; index-backed."""

from __future__ import annotations

from datetime import timedelta

from beanie import PydanticObjectId

from app.db import utcnow
from app.domains.contacts.editing import ContactEditing
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.conversations.search import (
    SearchQuery,
    contact_tokens,
    message_tokens,
    words,
)
from app.domains.inbox.queries import SEARCH_CAP, InboxQueries, ListFilters
from app.domains.messages.models import Message, MessageStatus
from tests.support.command_capture import capture, reads, server_indexes
from tests.support.index_rule import Index, check

WS = PydanticObjectId()
ACCOUNT = PydanticObjectId()


def test_tokens_fold_case_and_accents_and_keep_number_suffixes() -> None:
    assert words("Zoë  O'Brien-SMITH") == ["zoe", "o", "brien", "smith"]
    assert words("Ünïcödé Straße") == ["unicode", "strasse"]
    tokens = contact_tokens("", "Lucía", None, "14155550123", "+14155550123")
    assert "lucia" in tokens and "tel:14155550123" in tokens and "tel:0123" in tokens and "tel:23" not in tokens
    assert message_tokens({"caption": "Invoice #42 attached"}) == ["invoice", "42", "attached"]
    assert message_tokens(["not", "a", "dict"]) == []
    assert SearchQuery("+1 (415) 555").phone == "tel:1415555"
    assert SearchQuery("order 42").phone is None and SearchQuery("order 42").words == ["order", "42"]
    assert SearchQuery(" !! ").empty


async def seed() -> dict[str, Conversation]:
    now = utcnow()
    made: dict[str, Conversation] = {}
    people = [("Zoë Adams", "447700900123", "My invoice is wrong"), ("Bob Invoicer", "14155550199", "hello there"),
              ("Carla Díaz", "34600111222", "Where is my order? Invoices later"), ("Dan", "15550001111", "voice note")]
    for i, (name, wa_id, text) in enumerate(people):
        contact = await Contact(workspace_id=WS, key=f"wa:{wa_id}", wa_id=wa_id, phone=f"+{wa_id}",
                                profile_name=name).insert()
        at = now - timedelta(minutes=i)
        conversation = await Conversation(workspace_id=WS, account_id=ACCOUNT, contact_id=contact.id,
                                          last_message_at=at).insert()
        await Message(workspace_id=WS, conversation_id=conversation.id, account_id=ACCOUNT, contact_id=contact.id,
                      direction="inbound", type="text", content={"body": text}, status=MessageStatus.RECEIVED,
                      timestamp=at).insert()
        made[name.split()[0]] = conversation
    return made


async def names(q: str) -> list[str]:
    page = await InboxQueries().list_page(WS, ListFilters.parse({"status": "all", "q": q}), None)
    return [row.c.id for row in page.rows]


async def test_search_by_name_prefix_phone_digits_and_message_words(client_factory) -> None:
    await client_factory()
    c = await seed()
    zoe, bob, carla, dan = c["Zoë"].id, c["Bob"].id, c["Carla"].id, c["Dan"].id
    assert await names("zoe") == [zoe]  # accent- and case-insensitive
    assert await names("ADA") == [zoe]  # a word prefix of the name
    assert await names("dams") == []  # not the middle of a word
    assert await names("invoice") == [zoe, bob, carla]  # message text (2), name prefix (Invoicer); newest first
    assert await names("voice") == [dan]  # "invoice" does not contain the word "voice"
    assert await names("where order") == [carla]  # every word, in any order, in one message
    assert await names("where zoe") == []
    assert await names("0900 123") == [zoe]  # digits anywhere in the number
    assert await names("+1 415 555") == [bob]
    assert await names("díaz") == [carla]
    queries = InboxQueries()
    assert await queries.search_hit(c["Carla"], "invoices") and not await queries.search_hit(c["Dan"], "invoices")
    contact = await Contact.get(c["Dan"].contact_id)
    await ContactEditing(FakeLive()).rename(contact, "Daniel Invoiceguy")
    assert await names("daniel") == [dan] and await queries.search_hit(c["Dan"], "invoiceg")


async def test_search_reads_the_search_token_indexes(client_factory, settings) -> None:
    """What the search sends MongoDB (taken from the driver) is bounded by the (workspace_id, search_tokens)
    indexes, by MongoDB's index rule (tests/support/index_rule.py; every inbox read: test_inbox_indexes.py)."""
    await client_factory()
    made = await seed()
    search = SearchQuery("where order")
    for query in (search.message_filter(), search.contact_filter()):
        assert query["search_tokens"]["$regex"].startswith("^")  # anchored, case-sensitive: index bounds on MongoDB
    with capture(settings.mongodb_database) as seen:
        assert await names("where order") == [made["Carla"].id]
    token_reads = [q for _, q in reads(seen) if "search_tokens" in str(q.filter)]
    assert {q.collection for q in token_reads} == {"messages", "contacts"}
    indexes = await server_indexes(Message.get_motor_collection().database, {"messages", "contacts"})
    tokens = (("workspace_id", 1), ("search_tokens", 1))
    for model in (Message, Contact):
        assert tokens in [Index.from_model(i).keys for i in model.Settings.indexes]  # declared
        assert tokens in [i.keys for i in indexes[model.Settings.name]]  # and on the server
    for query in token_reads:
        verdict = check(query, indexes[query.collection])
        assert verdict.bounding is not None and verdict.bounding.index.keys == tokens, verdict.message()
        if query.collection == "contacts":
            assert verdict.served and verdict.index.keys == tokens, verdict.message()
        else:  # the newest SEARCH_CAP hits: bounded by the token index, ordered in memory by design
            assert query.sort == (("_id", -1),) and query.limit == SEARCH_CAP and not verdict.served


class FakeLive:
    async def publish(self, *args, **kwargs) -> None:
        return None


async def test_reindex_gives_tokens_to_documents_stored_before(client_factory) -> None:
    from app.domains.conversations.search import backfill_search_tokens

    await client_factory()
    contact_id, conversation_id = PydanticObjectId(), PydanticObjectId()
    await Contact.get_motor_collection().insert_one({"_id": contact_id, "workspace_id": WS, "key": "wa:447700900999",
                                                     "wa_id": "447700900999", "profile_name": "Old Timer"})
    await Conversation.get_motor_collection().insert_one({
        "_id": conversation_id, "workspace_id": WS, "account_id": ACCOUNT, "contact_id": contact_id, "status": "open",
        "labels": [], "unread_count": 0, "last_message_at": utcnow(), "updated_at": utcnow()})
    await Message.get_motor_collection().insert_one({
        "workspace_id": WS, "conversation_id": conversation_id, "account_id": ACCOUNT, "contact_id": contact_id,
        "direction": "inbound", "type": "text", "content": {"body": "Legacy receipt"}, "status": "received",
        "timestamp": utcnow()})
    assert await names("legacy") == [] and await names("timer") == []
    assert await backfill_search_tokens(batch=1) == {"contacts": 1, "messages": 1}
    assert await names("legacy") == [conversation_id] and await names("timer") == [conversation_id]
    assert await backfill_search_tokens() == {"contacts": 0, "messages": 0}
    # A contact of the time had search words but no place in the contacts page's name order.
    await Contact.get_motor_collection().update_one({"_id": contact_id}, {"$unset": {"sort_name": ""}})
    assert await backfill_search_tokens() == {"contacts": 1, "messages": 0}
    assert (await Contact.get(contact_id)).sort_name == "old timer"


async def test_a_search_that_finds_nothing_in_this_status_says_where_it_did(client_factory) -> None:
    await client_factory()
    c = await seed()
    await Conversation.get_motor_collection().update_one({"_id": c["Carla"].id}, {"$set": {"status": "resolved"}})
    queries = InboxQueries()
    page = await queries.list_page(WS, ListFilters.parse({"status": "open", "q": "carla"}), None)
    assert page.rows == [] and page.elsewhere == {"resolved": 1}
    filters = ListFilters.parse({"status": "open", "q": "carla"})
    assert "status=resolved" in filters.with_status("resolved") and "q=carla" in filters.with_status("resolved")
    nothing = await queries.list_page(WS, ListFilters.parse({"status": "open", "q": "nobody"}), None)
    assert nothing.rows == [] and nothing.elsewhere == {}
    found = await queries.list_page(WS, ListFilters.parse({"status": "open", "q": "zoe"}), None)
    assert len(found.rows) == 1 and found.elsewhere == {}
