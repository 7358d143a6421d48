"""A workspace's own STOP / START words, and the confirmation sent back when a keyword changed consent.

Ingestion reads the extra words through a per-process cache (``extra_words``; a change is heard in
every process through app/changes.py). Confirmations follow business hours' pattern: the LiveEvents
listener ``on_live_event`` asks a cached "does this workspace confirm?" and queues one arq job per
inbound message (``confirm_consent_keyword``); the job re-reads the message and the contact, and sends
only when this very message changed the contact's consent (its latest entry: source "keyword", by its
wamid, and a change from the entry before). The send goes through ``OutboxService.send`` with the
idempotency key ``auto:consent:<message id>``: a job run twice sends once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis
from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app.cache import SharedCache
from app.changes import Changes
from app.db import as_utc, parse_object_id, utcnow
from app.domains.contacts.consent import (
    NO_EXTRA,
    OPT_IN,
    OPT_OUT,
    ExtraWords,
    KeywordLookup,
    folded,
    keyword_consent,
)
from app.domains.contacts.models import Contact, KeywordSettings
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.errors import ClientError, ValidationFailed
from app.logging import get_logger
from app.queue import enqueue_consent_confirmation

if TYPE_CHECKING:
    from app.domains.outbox.service import OutboxService

log = get_logger(__name__)

TOPIC = "consent_keywords"
_CACHE_SECONDS = 300.0  # a change is heard at once (app/changes.py); this bounds a lost one
MAX_WORDS = 20
MAX_WORD_CHARS = 30
MAX_CONFIRMATION_CHARS = 1024
ERROR_CODE = "KEYWORDS_INVALID"
FIELDS = ("opt_out_words", "opt_in_words", "opt_out_confirmation", "opt_in_confirmation")


class NotYet(Exception):
    """The keyword's consent change is not recorded yet (ingestion is finishing): try later."""


def _words(value: Any, name: str, errors: dict[str, str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        errors[name] = "A list of words."
        return []
    words: list[str] = []
    for word in (w.strip() for w in value):
        if not word:
            continue
        if len(word) > MAX_WORD_CHARS:
            errors[name] = f"“{word[:40]}” is longer than {MAX_WORD_CHARS} characters."
        elif not folded(word):
            errors[name] = f"“{word}” has no letters or digits."
        elif folded(word) not in {folded(w) for w in words}:
            words.append(word)
    if len(words) > MAX_WORDS:
        errors[name] = f"At most {MAX_WORDS} words."
    return words


def validate_keywords(values: dict[str, Any]) -> dict[str, Any]:
    """The settings checked as a whole; ValidationFailed (422 KEYWORDS_INVALID, one message per field)."""
    errors: dict[str, str] = {}
    checked: dict[str, Any] = {"opt_out_words": _words(values.get("opt_out_words"), "opt_out_words", errors),
                               "opt_in_words": _words(values.get("opt_in_words"), "opt_in_words", errors)}
    outs, ins = {folded(w) for w in checked["opt_out_words"]}, {folded(w) for w in checked["opt_in_words"]}
    if outs & (ins | OPT_IN):  # a built-in word of the other list would win: refused rather than ignored
        errors.setdefault("opt_out_words", f"“{sorted(outs & (ins | OPT_IN))[0]}” is also an opt-in word.")
    if ins & (outs | OPT_OUT):
        errors.setdefault("opt_in_words", f"“{sorted(ins & (outs | OPT_OUT))[0]}” is also an opt-out word.")
    for name in ("opt_out_confirmation", "opt_in_confirmation"):
        text = values.get(name)
        if not isinstance(text, str):
            errors[name] = "A text (empty: none)."
        elif len(text.strip()) > MAX_CONFIRMATION_CHARS:
            errors[name] = f"At most {MAX_CONFIRMATION_CHARS} characters."
        else:
            checked[name] = text.strip()
    if errors:
        raise ValidationFailed("Some keyword settings need a fix.", error_code=ERROR_CODE, details=errors)
    return checked


class ConsentKeywords(KeywordLookup):
    """The workspace's extra STOP / START words and confirmations: settings, cached lookups, the job."""

    def __init__(self, *, arq: Callable[[], ArqRedis | None] = lambda: None, changes: Changes | None = None) -> None:
        self._arq = arq
        self._cache: SharedCache[KeywordSettings | None] = SharedCache(TOPIC, _CACHE_SECONDS, changes)

    # -- settings -------------------------------------------------------------------------------------
    async def cached(self, workspace_id: PydanticObjectId | str) -> KeywordSettings | None:
        """The stored settings from this process's copy (None: never saved). Never change the result."""
        key = str(workspace_id)

        async def load() -> KeywordSettings | None:
            oid = parse_object_id(key)
            return await KeywordSettings.find_one_scoped(oid) if oid is not None else None

        return await self._cache.get(key, load)

    async def extra_words(self, workspace_id: PydanticObjectId | str) -> ExtraWords:
        """The workspace's own words, folded (ingestion's question: one cached read)."""
        settings = await self.cached(workspace_id)
        if settings is None or not (settings.opt_out_words or settings.opt_in_words):
            return NO_EXTRA
        return ExtraWords(frozenset(folded(w) for w in settings.opt_out_words),
                          frozenset(folded(w) for w in settings.opt_in_words))

    async def current(self, workspace_id: PydanticObjectId) -> KeywordSettings:
        """The stored settings, or the defaults (no extra words, no confirmations) when never saved."""
        found = await KeywordSettings.find_one_scoped(workspace_id)
        return found if found is not None else KeywordSettings(workspace_id=workspace_id)

    @staticmethod
    def values(settings: KeywordSettings) -> dict[str, Any]:
        """The settings as plain values (the API's shape, and ``update``'s starting point)."""
        return {name: getattr(settings, name) for name in FIELDS} | {
            "updated_at": settings.updated_at.isoformat() if settings.id is not None else None}

    async def update(self, workspace_id: PydanticObjectId, fields: dict[str, Any]) -> KeywordSettings:
        """Change the named fields, validated as a whole; nothing is saved when anything is wrong."""
        settings = await self.current(workspace_id)
        values = {name: getattr(settings, name) for name in FIELDS}
        values.update({k: v for k, v in fields.items() if k in FIELDS})
        for name, value in validate_keywords(values).items():
            setattr(settings, name, value)
        settings.updated_at = utcnow()
        if settings.id is None:
            try:
                await settings.insert()
            except DuplicateKeyError:  # saved meanwhile by another request: this one wins
                stored = await KeywordSettings.find_one_scoped(workspace_id)
                if stored is None:
                    raise
                settings.id = stored.id
                await settings.replace()
        else:
            await settings.replace()
        await self._cache.changed(workspace_id)
        return settings

    async def update_from_form(self, workspace_id: PydanticObjectId, form: dict[str, str]) -> KeywordSettings:
        """The admin form: words one a line or separated by commas."""
        fields: dict[str, Any] = {name: form.get(name, "") for name in ("opt_out_confirmation", "opt_in_confirmation")}
        for name in ("opt_out_words", "opt_in_words"):
            fields[name] = [w for w in re.split(r"[\n,]", form.get(name, "")) if w.strip()]
        return await self.update(workspace_id, fields)

    # -- the confirmation -----------------------------------------------------------------------------
    async def on_live_event(self, workspace_id: PydanticObjectId | str, event: str, data: dict[str, Any]) -> None:
        """LiveEvents listener: a customer's new message in a workspace that confirms keywords queues a
        job. In one that does not, it costs the cached answer only (no database operation)."""
        if event != "message.created" or "message_id" not in data or data.get("direction") != "inbound":
            return
        settings = await self.cached(workspace_id)
        if settings is None or not settings.confirms:
            return
        arq = self._arq()
        if arq is not None:
            await enqueue_consent_confirmation(arq, str(workspace_id), str(data["message_id"]))

    async def confirm(self, outbox: OutboxService, workspace_id: str, message_id: str) -> str:
        """The job: send the confirmation when this message is a keyword that changed the contact's
        consent. Returns what was done, in words. Raises NotYet while its change is not recorded yet."""
        from app.domains.outbox.service import Draft

        wid, oid = parse_object_id(workspace_id), parse_object_id(message_id)
        if wid is None or oid is None:
            return "bad ids"
        settings = await self.cached(wid)
        if settings is None or not settings.confirms:
            return "off"
        message = await Message.find_one({"_id": oid, "workspace_id": wid})
        if message is None or message.direction != "inbound" or message.type != "text" or not message.wamid \
                or message.sender_contact_id is not None or not isinstance(message.content, dict):
            return "not a keyword"
        opted_out = keyword_consent(message.content.get("body"), await self.extra_words(wid))
        if opted_out is None:
            return "not a keyword"
        text = settings.opt_out_confirmation if opted_out else settings.opt_in_confirmation
        if not text:
            return "no confirmation for this keyword"
        contact = await Contact.find_one({"_id": message.contact_id, "workspace_id": wid})
        if contact is None or contact.kind == "group":
            return "no contact"
        mine = [i for i, c in enumerate(contact.consent) if c.source == "keyword" and c.by == message.wamid]
        if not mine:
            if as_utc(message.timestamp) > utcnow() - timedelta(minutes=10):
                raise NotYet(message_id)  # ingestion records the change just after publishing the message
            return "not confirmed: the keyword did not change consent"
        index = mine[-1]
        if index != len(contact.consent) - 1:
            return "not confirmed: consent changed again since"
        before = contact.consent[index - 1].opted_out if index > 0 else False
        if before == opted_out:
            return "not confirmed: a repeat (consent was already so)"
        key = f"auto:consent:{message.id}"
        if await Message.find_one({"workspace_id": wid, "idempotency_key": key}) is not None:
            return "sent before"
        conversation = await Conversation.find_one({"_id": message.conversation_id, "workspace_id": wid})
        if conversation is None:
            return "no conversation"
        if not conversation.window_open() and as_utc(message.timestamp) > utcnow() - timedelta(minutes=10):
            raise NotYet(message_id)  # ingestion records the window right after the consent
        try:
            await outbox.send(wid, conversation, Draft(type="text", content={"body": text}),
                              via="automation", idempotency_key=key, contact=contact)
        except ClientError as error:  # the number is stopped, the window not recorded ...
            log.info("consent confirmation not sent", message_id=message_id, reason=error.error_code)
            return f"not sent: {error.error_code}"
        return "opt-out confirmed" if opted_out else "opt-in confirmed"
