"""STOP / START: a customer's text that is only an opt-out or opt-in keyword changes their marketing consent.

The whole message must be the keyword (trimmed, any case, accents as written or not, trailing
punctuation ignored): "stop", "STOP!", "Stop all", "opt-out", "Arrêter" opt out; "start", "subscribe",
"unstop" opt back in. "Please stop calling me" is a sentence, not a keyword, and changes nothing.
Marketing templates are then refused to them by the one send path (outbox/service.py, CONTACT_OPTED_OUT).

Applied from ingestion (app/domains/messages/ingest.py) for inbound text messages outside groups,
with one update only when the text is a keyword. That update is idempotent and ordered: it is
recorded with the message's wamid (``by``) and its time, and skipped when the history already has
this wamid (a redelivered webhook) or a change newer than the message (an agent's or a later
keyword's, when webhooks arrive out of order).

A workspace may add its own words (contacts/keywords.py, ``ExtraWords``, read through a per-process
cache) and have a confirmation sent back by a worker job.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, NamedTuple

from app.domains.contacts.models import Contact
from app.domains.contacts.services import consent_update
from app.domains.messages.models import Message

if TYPE_CHECKING:
    from beanie import PydanticObjectId

OPT_OUT = frozenset({"stop", "stop all", "stopall", "unsubscribe", "opt out", "optout",
                     # common translations: Spanish / Portuguese, French, German
                     "parar", "baja", "darme de baja", "arreter", "stopp"})
OPT_IN = frozenset({"start", "subscribe", "unstop", "opt in", "optin", "resubscribe"})
MAX_KEYWORD_TEXT = 40
_PUNCTUATION = re.compile(r"[\s.,;:!?¡¿…'\"()\[\]*_~-]+")


class ExtraWords(NamedTuple):
    """A workspace's own keywords, folded like the text they are compared to."""

    opt_out: frozenset[str] = frozenset()
    opt_in: frozenset[str] = frozenset()


NO_EXTRA = ExtraWords()


class KeywordLookup:
    """What ingestion asks for a workspace's extra words (contacts/keywords.py's cached service)."""

    async def extra_words(self, workspace_id: PydanticObjectId | str) -> ExtraWords:
        return NO_EXTRA


def folded(text: str) -> str:
    """The text as keywords are compared: case and accents dropped, punctuation to single spaces."""
    return _folded(text)


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(w for w in _PUNCTUATION.split(bare) if w)


def keyword_consent(text: str | None, extra: ExtraWords = NO_EXTRA) -> bool | None:
    """True: the text opts out of marketing; False: it opts back in; None: it is not a keyword.
    ``extra``: the workspace's own words, beside the built-in ones."""
    if not isinstance(text, str) or not text or len(text) > MAX_KEYWORD_TEXT:
        return None
    words = _folded(text)
    if words in OPT_OUT or words in extra.opt_out:
        return True
    if words in OPT_IN or words in extra.opt_in:
        return False
    return None


async def apply_keyword_consent(message: Message, keywords: KeywordLookup | None = None) -> bool:
    """The customer's inbound text ``message`` is a keyword: record it on their contact (one update).
    ``keywords``: where the workspace's extra words are read (cached). Returns whether it was a keyword
    the contact's consent took."""
    if message.direction != "inbound" or message.type != "text" or not isinstance(message.content, dict) \
            or message.sender_contact_id is not None:
        return False
    body = message.content.get("body")
    if not isinstance(body, str) or len(body) > MAX_KEYWORD_TEXT:
        return False
    extra = await keywords.extra_words(message.workspace_id) if keywords is not None else NO_EXTRA
    opted_out = keyword_consent(body, extra)
    if opted_out is None or not message.wamid:
        return False
    result = await Contact.get_motor_collection().update_one(
        {"_id": message.contact_id, "workspace_id": message.workspace_id, "kind": {"$ne": "group"},
         "consent.by": {"$ne": message.wamid}, "consent.at": {"$not": {"$gt": message.timestamp}}},
        consent_update(opted_out, "keyword", by=message.wamid, at=message.timestamp,
                       note=f"The customer wrote “{str(body).strip()[:MAX_KEYWORD_TEXT]}”"))
    return bool(result.modified_count)
