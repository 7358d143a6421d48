"""Fetching a message's media from Meta: media id → fresh URL → capped, checksummed download → store.

Run by the ``fetch_media`` task. Each attempt is recorded on the message (``media.attempts``,
``media.error``, ``media.next_attempt_at``), so the inbox shows "retrying" or "failed" with the
reason. Transient failures raise :class:`RetryLater` (the task turns it into arq's Retry);
permanent ones (too large, media id unknown to Meta, token refused) fail at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app.db import parse_object_id, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.accounts.services import AccountService
from app.domains.media.store import MediaStore
from app.domains.messages.models import Message
from app.logging import get_logger
from app.metrics import WHATSAPP_MEDIA_DOWNLOADS
from app.realtime import LiveEvents
from app.retry import backoff
from app.whatsapp.errors import GraphError, MediaTooLarge, MediaUrlExpired
from app.whatsapp.media import MediaKind, max_bytes

log = get_logger(__name__)

MAX_ATTEMPTS = 5
"""arq's default max_tries is 5 too: the last attempt still runs as a job."""
BASE_DELAY_SECONDS = 5.0
MAX_DELAY_SECONDS = 300.0


class RetryLater(Exception):  # noqa: N818 - it is an instruction, not an error
    """Try the download again after ``defer`` seconds."""

    def __init__(self, defer: float) -> None:
        super().__init__(f"retry in {defer:.1f}s")
        self.defer = defer


@dataclass(frozen=True)
class FetchResult:
    outcome: str
    """stored | already | failed | skipped"""
    detail: str = ""


def retry_delay(attempt: int, hint: float | None = None) -> float:
    """Doubling from Meta's hint (or 5 s), capped, with ±20 % jitter so retries do not stampede."""
    return backoff(attempt, base=max(hint or BASE_DELAY_SECONDS, 1.0), cap=MAX_DELAY_SECONDS, jitter=(0.8, 1.2))


class MediaFetcher:
    def __init__(self, accounts: AccountService, live: LiveEvents, store: MediaStore | None = None) -> None:
        self.accounts = accounts
        self.live = live
        self.store = store or MediaStore()

    async def fetch(self, message_id: str) -> FetchResult:
        oid = parse_object_id(message_id)
        # By primary key: the job carries only the message id; the message names its workspace.
        message = await Message.get(oid) if oid else None
        if message is None or message.media is None:
            return FetchResult("skipped", "no such message or no media")
        media = message.media
        if media.state == "stored":
            return FetchResult("already")
        if not media.meta_media_id:
            return await self._fail(message, "Meta sent no media id for this file.")
        account = await WhatsAppAccount.find_one_scoped(message.workspace_id, WhatsAppAccount.id == message.account_id)
        if account is None:
            return await self._fail(message, "The number this media arrived on is no longer connected.")
        attempt = media.attempts + 1
        try:
            data, content_type = await self._download(account, message)
        except GraphError as exc:
            return await self._failed_attempt(message, attempt, exc)
        stored = await self.store.put(
            message.workspace_id, data, kind=message.type, content_type=content_type,
            filename=media.filename or "", message_id=message.id, meta_media_id=media.meta_media_id)
        await Message.find_one(Message.id == message.id).update({"$set": {
            "media.state": "stored", "media.stored_file_id": stored.id, "media.size": stored.length,
            "media.mime_type": content_type, "media.attempts": attempt, "media.error": None,
            "media.next_attempt_at": None, "updated_at": utcnow()}})
        await self._changed(message)
        WHATSAPP_MEDIA_DOWNLOADS.labels(status="stored").inc()
        return FetchResult("stored")

    async def _download(self, account: WhatsAppAccount, message: Message) -> tuple[bytes, str]:
        media = message.media
        assert media is not None and media.meta_media_id
        content = message.content if isinstance(message.content, dict) else {}
        kind = MediaKind(message.type) if message.type in set(MediaKind) else MediaKind.DOCUMENT
        cap = max_bytes(kind, animated=bool(content.get("animated", True)))
        graph = self.accounts.graph(account)
        for fresh_url_tries in range(2):
            info = await graph.get_media(media.meta_media_id)
            if info.file_size is not None and info.file_size > cap:
                raise MediaTooLarge(f"{info.file_size} bytes announced", details=f"the cap is {cap} bytes")
            try:
                data = await graph.download_media(info.url, max_bytes=cap,
                                                  expected_sha256=media.sha256 or info.sha256)
            except MediaUrlExpired:
                if fresh_url_tries == 0:
                    continue  # URLs live 5 minutes: ask for a new one once, right away
                raise
            return data, info.mime_type or media.mime_type or "application/octet-stream"
        raise AssertionError("unreachable")

    async def _failed_attempt(self, message: Message, attempt: int, exc: GraphError) -> FetchResult:
        reason = exc.agent_message or str(exc)
        if not exc.retryable or attempt >= MAX_ATTEMPTS:
            log.info("media download failed", message_id=str(message.id), attempt=attempt, error=str(exc)[:200])
            return await self._fail(message, reason, attempts=attempt)
        delay = retry_delay(attempt, exc.retry_after)
        WHATSAPP_MEDIA_DOWNLOADS.labels(status="retry").inc()
        await Message.find_one(Message.id == message.id).update({"$set": {
            "media.state": "pending", "media.attempts": attempt, "media.error": reason,
            "media.next_attempt_at": utcnow() + timedelta(seconds=delay), "updated_at": utcnow()}})
        await self._changed(message)
        raise RetryLater(delay)

    async def _fail(self, message: Message, reason: str, attempts: int | None = None) -> FetchResult:
        changes = {"media.state": "failed", "media.error": reason, "media.next_attempt_at": None,
                   "updated_at": utcnow()}
        if attempts is not None:
            changes["media.attempts"] = attempts
        await Message.find_one(Message.id == message.id).update({"$set": changes})
        await self._changed(message)
        WHATSAPP_MEDIA_DOWNLOADS.labels(status="failed").inc()
        return FetchResult("failed", reason)

    async def _changed(self, message: Message) -> None:
        await self.live.publish(message.workspace_id, "message.updated", message_id=str(message.id),
                                conversation_id=str(message.conversation_id))
