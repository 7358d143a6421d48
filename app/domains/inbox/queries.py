"""Read side of the inbox: the filtered, searched, cursor-paginated list and the thread pages.

Cursor pagination on (last_message_at, _id) for the list and on _id for the thread follows the
compound indexes declared on Conversation and Message, so page N costs what page 1 costs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId

from app.db import parse_object_id
from app.domains.access.scope import Scope, scope_of
from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation, ConversationStatus
from app.domains.conversations.search import SearchQuery
from app.domains.conversations.services import CONVERSATION_LISTING
from app.domains.inbox.views import ConversationRow, MessageView
from app.domains.inbox.vocab import labels_of
from app.domains.messages.models import Message
from app.domains.messages.queries import thread_listing
from app.domains.workspaces.models import User
from app.pagination import decode_cursor, encode_cursor

PAGE_SIZE = 40
THREAD_PAGE = 40
SEARCH_CAP = 500
UNREAD_CAP = 100
STATUSES = ("open", "pending", "snoozed", "resolved", "all")
ASSIGNEES = ("all", "mine", "unassigned")


@dataclass(frozen=True)
class ListFilters:
    """What the filter bar selects; parsed leniently (unknown values fall back to defaults)."""

    status: str = "open"
    assignee: str = "all"
    account: str = ""
    label: str = ""
    q: str = ""

    @classmethod
    def parse(cls, params: dict[str, Any]) -> ListFilters:
        status = str(params.get("status") or "open")
        assignee = str(params.get("assignee") or "all")
        account = str(params.get("account") or "")
        return cls(
            status=status if status in STATUSES else "open",
            assignee=assignee if assignee in ASSIGNEES else "all",
            account=account if parse_object_id(account) else "",
            label=str(params.get("label") or "").strip()[:40],
            q=" ".join(str(params.get("q") or "").split())[:100],
        )

    def query_string(self) -> str:
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in self.as_dict().items() if v})

    def with_status(self, status: str) -> str:
        """This view's query string with another status (the search's "found in resolved" link)."""
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in {**self.as_dict(), "status": status}.items() if v})

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "assignee": self.assignee, "account": self.account, "label": self.label,
                "q": self.q}

    def matches(self, conversation: Conversation, user_id: PydanticObjectId | None,
                search_hit: bool | None = None) -> bool:
        """Whether a (live-updated) conversation belongs in a list with these filters."""
        if self.status != "all" and conversation.status.value != self.status:
            return False
        if self.assignee == "mine" and conversation.assignee_id != user_id:
            return False
        if self.assignee == "unassigned" and conversation.assignee_id is not None:
            return False
        if self.account and str(conversation.account_id) != self.account:
            return False
        if self.label and self.label not in conversation.labels:
            return False
        if self.q and search_hit is False:
            return False
        return conversation.last_message_at is not None


@dataclass
class Page:
    rows: list[ConversationRow] = field(default_factory=list)
    next_cursor: str | None = None
    elsewhere: dict[str, int] = field(default_factory=dict)
    """A search that found nothing in the chosen status: where it did find conversations (status ->
    how many, up to ELSEWHERE_CAP in all), so the agent is not told "nothing" when something is."""


ELSEWHERE_CAP = 50


@dataclass
class ThreadPage:
    messages: list[MessageView] = field(default_factory=list)
    older_cursor: str | None = None


class InboxQueries:
    """Lists and threads, joined with contacts, numbers and agents for display."""

    async def list_page(self, who: PydanticObjectId | Scope, filters: ListFilters, user_id: PydanticObjectId | None,
                        cursor: str | None = None, limit: int = PAGE_SIZE) -> Page:
        """A page of the list as ``who`` (a scope, or a whole workspace) sees it."""
        scope = scope_of(who)
        workspace_id = scope.workspace_id
        query: dict[str, Any] = {"workspace_id": workspace_id, "last_message_at": {"$ne": None}}
        if filters.status != "all":
            query["status"] = filters.status
        if filters.assignee == "mine":
            query["assignee_id"] = user_id
        elif filters.assignee == "unassigned":
            query["assignee_id"] = None
        if filters.account:
            query["account_id"] = PydanticObjectId(filters.account)
        if filters.label:
            query["labels"] = filters.label
        if cursor:
            at, oid = decode_cursor(CONVERSATION_LISTING, cursor, key_type=datetime)
            # The top-level $lte bounds the index read at the cursor (MongoDB walks the index from there);
            # the $or keeps the (last_message_at, _id) order exact for ties.
            query["last_message_at"] = {"$ne": None, "$lte": at}
            query["$or"] = [{"last_message_at": {"$lt": at}}, {"_id": {"$lt": oid}}]
        query = scope.restrict(query)
        order = [("last_message_at", -1), ("_id", -1)]
        collection = Conversation.get_motor_collection()
        if filters.q:
            # Each branch reads its own index (_id; workspace_id + contact_id), then the pages merge.
            contact_ids, conversation_ids = await self._search(workspace_id, filters.q)
            docs = []
            for branch in ({"_id": {"$in": conversation_ids}}, {"contact_id": {"$in": contact_ids}}):
                if next(iter(branch.values()))["$in"]:
                    docs += await collection.find({**query, **branch}).sort(order).limit(limit + 1).to_list(None)
            docs = sorted({d["_id"]: d for d in docs}.values(), key=lambda d: (d["last_message_at"], d["_id"].binary),
                          reverse=True)[:limit + 1]
        else:
            docs = await collection.find(query).sort(order).limit(limit + 1).to_list(None)
        conversations = [Conversation.model_validate(d) for d in docs[:limit]]
        page = Page(rows=await self.rows(workspace_id, conversations))
        if filters.q and not conversations and not cursor and filters.status != "all":
            found = await self.list_page(scope, replace(filters, status="all"), user_id, limit=ELSEWHERE_CAP)
            page.elsewhere = dict(Counter(row.c.status.value for row in found.rows).most_common())
        if len(docs) > limit and conversations:
            last = conversations[-1]
            page.next_cursor = encode_cursor(CONVERSATION_LISTING, last.last_message_at, last.id)
        return page

    async def _search(self, workspace_id: PydanticObjectId, q: str) -> tuple[list, list]:
        """Contacts by name or phone, conversations by message text: index-backed token prefixes
        (app/domains/conversations/search.py says why and what matches)."""
        search = SearchQuery(q)
        contact_ids: list = []
        conversation_ids: list = []
        if (contact_filter := search.contact_filter()) is not None:
            contacts = await Contact.get_motor_collection().find(
                {"workspace_id": workspace_id, **contact_filter}, {"_id": 1}).limit(SEARCH_CAP).to_list(None)
            contact_ids = [c["_id"] for c in contacts]
        if (message_filter := search.message_filter()) is not None:
            messages = await Message.get_motor_collection().find(
                {"workspace_id": workspace_id, **message_filter}, {"conversation_id": 1, "_id": 0}).sort(
                [("_id", -1)]).limit(SEARCH_CAP).to_list(None)
            conversation_ids = list(dict.fromkeys(m["conversation_id"] for m in messages))
        return contact_ids, conversation_ids

    async def search_hit(self, conversation: Conversation, q: str) -> bool:
        """Whether one conversation matches a search (for live updates of a searched list)."""
        search = SearchQuery(q)
        contact_filter, message_filter = search.contact_filter(), search.message_filter()
        if contact_filter is not None and await Contact.get_motor_collection().find_one(
                {"_id": conversation.contact_id, "workspace_id": conversation.workspace_id, **contact_filter},
                {"_id": 1}):
            return True
        return message_filter is not None and await Message.get_motor_collection().find_one(
            {"workspace_id": conversation.workspace_id, "conversation_id": conversation.id, **message_filter},
            {"_id": 1}) is not None

    async def rows(self, workspace_id: PydanticObjectId, conversations: list[Conversation]) -> list[ConversationRow]:
        if not conversations:
            return []
        contacts = await self._by_id(Contact, workspace_id, {c.contact_id for c in conversations})
        accounts = await self._by_id(WhatsAppAccount, workspace_id, {c.account_id for c in conversations})
        users = await self._by_id(User, workspace_id, {c.assignee_id for c in conversations if c.assignee_id})
        label_info = await labels_of(workspace_id) if any(c.labels for c in conversations) else {}
        # Groups name their participants (one read for every group of the page; none without groups).
        people = await self._by_id(Contact, workspace_id, {p for contact in contacts.values() if contact.group
                                                           for p in contact.group.participant_ids})
        return [ConversationRow(c, contacts.get(c.contact_id), accounts.get(c.account_id), users.get(c.assignee_id),
                                label_info, people) for c in conversations]

    async def row(self, conversation: Conversation) -> ConversationRow:
        return (await self.rows(conversation.workspace_id, [conversation]))[0]

    @staticmethod
    async def _by_id(model: Any, workspace_id: PydanticObjectId, ids: set) -> dict:
        ids = {i for i in ids if i is not None}
        if not ids:
            return {}
        # A raw read validated once: Beanie's query object and parsing cost more than the lookup itself.
        docs = await model.get_motor_collection().find({"_id": {"$in": list(ids)}, "workspace_id": workspace_id}).to_list(None)
        return {d["_id"]: model.model_validate(d) for d in docs}

    async def thread_page(self, conversation: Conversation, before: str | None = None,
                          limit: int = THREAD_PAGE) -> ThreadPage:
        """The newest ``limit`` messages (or those older than the ``before`` cursor), oldest first."""
        query: dict[str, Any] = {"workspace_id": conversation.workspace_id, "conversation_id": conversation.id}
        if before:
            _, oid = decode_cursor(thread_listing(conversation.id), before)
            query["_id"] = {"$lt": oid}
        docs = await Message.get_motor_collection().find(query).sort([("_id", -1)]).limit(limit + 1).to_list(None)
        messages = [Message.model_validate(d) for d in docs[:limit]]
        messages.reverse()
        page = ThreadPage(messages=await self.views(conversation.workspace_id, messages))
        if len(docs) > limit and messages:
            page.older_cursor = encode_cursor(thread_listing(conversation.id), messages[0].id, messages[0].id)
        return page

    async def views(self, workspace_id: PydanticObjectId, messages: list[Message]) -> list[MessageView]:
        """Messages with what they display beside themselves: the quoted message and the author."""
        quoted_ids = {m.reply_to_id for m in messages if m.reply_to_id}
        quoted_wamids = {m.reply_to_wamid for m in messages if m.reply_to_wamid and not m.reply_to_id}
        quoted: dict[Any, Message] = {}
        if quoted_ids or quoted_wamids:
            found = await Message.find({"workspace_id": workspace_id, "$or": [
                {"_id": {"$in": list(quoted_ids)}}, {"wamid": {"$in": list(quoted_wamids)}}]}).to_list()
            for q in found:
                quoted[q.id] = q
                if q.wamid:
                    quoted[q.wamid] = q
        authors = await self._by_id(User, workspace_id, {m.sent_by for m in messages if m.sent_by})
        senders = await self._by_id(Contact, workspace_id,
                                    {m.sender_contact_id for m in messages if m.sender_contact_id})
        return [MessageView(m, quoted=quoted.get(m.reply_to_id) or quoted.get(m.reply_to_wamid),
                            author=authors.get(m.sent_by), sender=senders.get(m.sender_contact_id))
                for m in messages]

    async def view(self, message: Message) -> MessageView:
        return (await self.views(message.workspace_id, [message]))[0]

    async def changed_since(self, workspace_id: PydanticObjectId, since: datetime, filters: ListFilters,
                            user_id: PydanticObjectId | None, conversation_id: PydanticObjectId | None,
                            limit: int = 200) -> tuple[list[Conversation], list[Message]]:
        """What a reconnecting tab missed: conversations and (of its open thread) messages changed since."""
        docs = await Conversation.get_motor_collection().find(
            {"workspace_id": workspace_id, "updated_at": {"$gt": since}}).sort(
            [("updated_at", 1), ("_id", 1)]).limit(limit).to_list(None)
        conversations = [Conversation.model_validate(d) for d in docs]
        messages: list[Message] = []
        if conversation_id is not None:
            mdocs = await Message.get_motor_collection().find(
                {"workspace_id": workspace_id, "conversation_id": conversation_id,
                 "updated_at": {"$gt": since}}).sort([("_id", 1)]).limit(limit).to_list(None)
            messages = [Message.model_validate(d) for d in mdocs]
        return conversations, messages

    async def unread_total(self, who: PydanticObjectId | Scope) -> int:
        """Unread messages across the open and pending conversations ``who`` sees, for the tab title.

        Counted over at most UNREAD_CAP conversations (the title then says "99+"), one field each,
        so the count costs the same at 100 or 100,000 conversations.
        """
        scope = scope_of(who)
        total = 0
        left = UNREAD_CAP
        for status in (ConversationStatus.OPEN.value, ConversationStatus.PENDING.value):
            # One status at a time, in the list's order: each read walks the (workspace_id, status,
            # last_message_at, _id) index and stops after `left` unread conversations.
            docs = await Conversation.get_motor_collection().find(
                scope.restrict({"workspace_id": scope.workspace_id, "status": status, "unread_count": {"$gt": 0}}),
                {"unread_count": 1, "_id": 0}).sort([("last_message_at", -1), ("_id", -1)]).limit(left).to_list(None)
            total += sum(int(d.get("unread_count") or 0) for d in docs)
            left -= len(docs)
            if left <= 0:
                break
        return total

    async def earlier_conversations(self, conversation: Conversation, scope: Scope) -> list[ConversationRow]:
        """The contact's other conversations (through other numbers) that ``scope`` sees, for the side panel."""
        others = await Conversation.find(scope.restrict({
            "workspace_id": conversation.workspace_id, "contact_id": conversation.contact_id,
            "_id": {"$ne": conversation.id}})).limit(10).to_list()
        return await self.rows(conversation.workspace_id, others)

