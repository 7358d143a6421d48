"""Inbox search keys: normalized tokens stored on contacts and messages, queried by indexed prefix.

Why tokens and not a ``$text`` index: ``$text`` matches whole (stemmed) words only, so "invo" never
finds "invoice" and "5550" never finds a phone number, while agents type the start of a word or a
piece of a number; it also has no accent folding for most languages, and the embedded server
(SecantusDB) has no text indexes at all. An unanchored or case-insensitive ``$regex`` can never use
an index (it reads every contact and message of the workspace). Instead each document carries
``search_tokens``, a multikey array with a ``(workspace_id, search_tokens)`` index, and a search
is an anchored, case-sensitive literal prefix regex (``^invo``) on already-lowercased tokens:
mongod answers that from the index bounds ["invo", "invp") (tests/integration/test_inbox_search.py
checks the driver's commands against the declared index). SecantusDB's planner scans for it instead,
one reason the embedded database serves small installations only (bench/embedded_size.py).
Semantics agents expect:

- case- and accent-insensitive (casefold + NFKD without combining marks: "Zoë" is found by "zoe");
- every word of the query must be the start of a word: of the contact's name, profile name or
  username, or of one message's text (body or caption);
- a query that looks like a phone number (digits, spaces, + - . ( ), at least 3 digits) matches
  those digits anywhere in the contact's number: the tokens hold every suffix of the number's
  digits (``tel:`` + suffix, 13 for a 15-digit number), so a prefix of a suffix is a substring.
Limits: at most MAX_TOKENS distinct words per message (a very long message is found by its first
ones), words cut at MAX_WORD characters (a longer query word is cut the same way).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_TOKENS = 200
MAX_WORD = 40
PHONE_PREFIX = "tel:"
_WORD = re.compile(r"\w+")
_PHONEISH = re.compile(r"[\d\s+\-.()]+")


def words(text: Any) -> list[str]:
    """Lowercase, accent-free words of a text, in order, without repeats."""
    if not isinstance(text, str) or not text:
        return []
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return list(dict.fromkeys(w[:MAX_WORD] for w in _WORD.findall(folded)))


def phone_tokens(number: str | None) -> list[str]:
    digits = re.sub(r"\D", "", number or "")
    return [PHONE_PREFIX + digits[i:] for i in range(max(0, len(digits) - 2))]


def contact_tokens(name: str | None, profile_name: str | None, username: str | None, wa_id: str | None,
                   phone: str | None) -> list[str]:
    tokens = words(name) + words(profile_name) + words(username) + phone_tokens(wa_id or phone)
    return list(dict.fromkeys(tokens))


def contact_tokens_of(doc: Any) -> list[str]:
    """The tokens of a Contact (model or raw document)."""
    get = doc.get if isinstance(doc, dict) else lambda key: getattr(doc, key, None)
    group = get("group")
    subject = (group.get("subject") if isinstance(group, dict) else getattr(group, "subject", None)) if group else None
    return contact_tokens(get("name") or subject, get("profile_name"), get("username"), get("wa_id"), get("phone"))


def message_tokens(content: Any) -> list[str]:
    """Words of what an agent reads in a message: the text body (texts, notes) or a media caption."""
    if not isinstance(content, dict):
        return []
    found: list[str] = []
    for key in ("body", "caption"):
        found += words(content.get(key))
    return list(dict.fromkeys(found))[:MAX_TOKENS]


class SearchQuery:
    """What one search box value asks for, as index-backed Mongo filters."""

    def __init__(self, q: str) -> None:
        self.q = q
        self.words = words(q)
        digits = re.sub(r"\D", "", q)
        self.phone = PHONE_PREFIX + digits if len(digits) >= 3 and _PHONEISH.fullmatch(q.strip() or "x") else None

    @property
    def empty(self) -> bool:
        return not self.words and not self.phone

    @staticmethod
    def _all_prefixes(tokens: list[str]) -> dict[str, Any]:
        # The longest word bounds the index read (most selective); the others filter those entries.
        ordered = sorted(tokens, key=len, reverse=True)
        query: dict[str, Any] = {"search_tokens": {"$regex": "^" + re.escape(ordered[0])}}
        if len(ordered) > 1:
            query["$and"] = [{"search_tokens": {"$regex": "^" + re.escape(t)}} for t in ordered[1:]]
        return query

    def contact_filter(self) -> dict[str, Any] | None:
        if self.phone:
            return self._all_prefixes([self.phone])
        return self._all_prefixes(self.words) if self.words else None

    def message_filter(self) -> dict[str, Any] | None:
        return self._all_prefixes(self.words) if self.words else None


async def backfill_search_tokens(batch: int = 500) -> dict[str, int]:
    """Give search tokens to contacts and messages stored before they existed, and contacts their name
    order (``inbox reindex-search``).

    Idempotent and resumable: it only touches documents without the field, a batch at a time.
    """
    from pymongo import UpdateOne

    from app.domains.contacts.models import Contact, sort_name_of
    from app.domains.messages.models import Message

    done = {"contacts": 0, "messages": 0}
    # Contacts stored before the contacts page have no ``sort_name`` (its "name" order) and the search
    # words of the time: both are computed again.
    missing = [{"search_tokens": {"$exists": False}}, {"sort_name": {"$exists": False}}]
    for model, key, query, fields_of in (
            (Contact, "contacts", {"$or": missing},
             lambda d: {"search_tokens": contact_tokens_of(d), "sort_name": sort_name_of(d)}),
            (Message, "messages", missing[0], lambda d: {"search_tokens": message_tokens(d.get("content"))})):
        collection = model.get_motor_collection()
        while True:
            docs = await collection.find(query).limit(batch).to_list(None)
            if not docs:
                break
            await collection.bulk_write([UpdateOne({"_id": d["_id"]}, {"$set": fields_of(d)}) for d in docs],
                                        ordered=False)
            done[key] += len(docs)
    return done
