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
"""

from __future__ import annotations

import re
import unicodedata

from app.domains.contacts.models import Contact
from app.domains.contacts.services import consent_update
from app.domains.messages.models import Message

OPT_OUT = frozenset({"stop", "stop all", "stopall", "unsubscribe", "opt out", "optout",
                     # common translations: Spanish / Portuguese, French, German
                     "parar", "baja", "darme de baja", "arreter", "stopp"})
OPT_IN = frozenset({"start", "subscribe", "unstop", "opt in", "optin", "resubscribe"})
MAX_KEYWORD_TEXT = 40
_PUNCTUATION = re.compile(r"[\s.,;:!?¡¿…'\"()\[\]*_~-]+")


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(w for w in _PUNCTUATION.split(bare) if w)


def keyword_consent(text: str | None) -> bool | None:
    """True: the text opts out of marketing; False: it opts back in; None: it is not a keyword."""
    if not isinstance(text, str) or not text or len(text) > MAX_KEYWORD_TEXT:
        return None
    folded = _folded(text)
    if folded in OPT_OUT:
        return True
    if folded in OPT_IN:
        return False
    return None


async def apply_keyword_consent(message: Message) -> bool:
    """The customer's inbound text ``message`` is a keyword: record it on their contact (one update).
    Returns whether it was a keyword the contact's consent took."""
    if message.direction != "inbound" or message.type != "text" or not isinstance(message.content, dict) \
            or message.sender_contact_id is not None:
        return False
    body = message.content.get("body")
    opted_out = keyword_consent(body)
    if opted_out is None or not message.wamid:
        return False
    result = await Contact.get_motor_collection().update_one(
        {"_id": message.contact_id, "workspace_id": message.workspace_id, "kind": {"$ne": "group"},
         "consent.by": {"$ne": message.wamid}, "consent.at": {"$not": {"$gt": message.timestamp}}},
        consent_update(opted_out, "keyword", by=message.wamid, at=message.timestamp,
                       note=f"The customer wrote “{str(body).strip()[:MAX_KEYWORD_TEXT]}”"))
    return bool(result.modified_count)
