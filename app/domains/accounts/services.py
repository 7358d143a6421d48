"""Connecting numbers: create, edit, rotate secrets, enable/disable, test against Meta, delete.

Secrets (access token, app secret) are encrypted with the SecretBox and only their last 4
characters ever leave this module; ``view()`` is the one shape pages and the API show.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

import httpx
import phonenumbers
from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app.cache import TtlCache
from app.changes import Changes
from app.db import parse_object_id, utcnow
from app.domains.accounts.models import SendError, SendingStopped, WhatsAppAccount
from app.domains.audit import services as audit
from app.errors import Conflict, NotFound, ValidationFailed
from app.logging import get_logger
from app.security import SecretBox, last4, new_token
from app.whatsapp.client import GraphClient
from app.whatsapp.errors import AuthError, GraphError, TransientError

log = get_logger(__name__)
CredentialsListener = Callable[[WhatsAppAccount], Awaitable[None]]

CACHE_SECONDS = 300.0
"""How long a process trusts its copy of a number when a change was not heard: a change is heard at
once (app/changes.py), and every copy is dropped after the listener reconnects, so this only bounds
a message lost in between."""
TOPIC = "account"


@dataclass(frozen=True)
class NewAccount:
    """What an admin enters to connect a number."""

    name: str
    phone_number_id: str
    waba_id: str
    display_phone_number: str
    access_token: str
    app_secret: str
    mps: int = 80

    def validate(self) -> None:
        errors = {}
        for field in ("name", "phone_number_id", "waba_id", "display_phone_number", "access_token", "app_secret"):
            if not str(getattr(self, field) or "").strip():
                errors[field] = "Required."
        for field in ("phone_number_id", "waba_id"):
            value = str(getattr(self, field) or "").strip()
            if value and not value.isdigit():
                errors[field] = "Meta's ids are digits only."
        _check_display_number(self.display_phone_number, errors)
        _check_mps(self.mps, errors)
        if errors:
            raise ValidationFailed("Check the highlighted fields.", details=errors)


def _check_display_number(value: str | None, errors: dict[str, str]) -> None:
    """The number as customers see it, with its country code (checked with phonenumbers)."""
    text = str(value or "").strip()
    if not text or "display_phone_number" in errors:
        return
    digits = "".join(ch for ch in text if ch.isdigit())
    ok = bool(digits) and all(ch.isdigit() or ch in "+ -().\u00a0" for ch in text)
    if ok:
        try:
            ok = phonenumbers.is_possible_number(phonenumbers.parse("+" + digits, None))
        except phonenumbers.NumberParseException:
            ok = False
    if not ok:
        errors["display_phone_number"] = "A phone number with its country code, e.g. +1 555 010 2000."


def _check_mps(value: Any, errors: dict[str, str]) -> None:
    try:
        ok = not isinstance(value, bool) and 1 <= int(value) <= 1000
    except (TypeError, ValueError):
        ok = False
    if not ok:
        errors["mps"] = "A whole number between 1 and 1000 messages per second."


@dataclass(frozen=True)
class AccountChanges:
    """An admin's edit of a number; None leaves a field as it is. The phone number id never changes."""

    name: str | None = None
    waba_id: str | None = None
    display_phone_number: str | None = None
    mps: int | None = None
    access_token: str | None = None
    app_secret: str | None = None
    enabled: bool | None = None

    def validate(self) -> None:
        errors: dict[str, str] = {}
        for field in ("name", "display_phone_number", "waba_id", "access_token", "app_secret"):
            value = getattr(self, field)
            if value is not None and not str(value).strip():
                errors[field] = "Cannot be empty (leave it out to keep the current value)."
        if self.waba_id is not None and self.waba_id.strip() and not self.waba_id.strip().isdigit():
            errors["waba_id"] = "Meta's ids are digits only."
        if self.display_phone_number is not None:
            _check_display_number(self.display_phone_number, errors)
        if self.mps is not None:
            _check_mps(self.mps, errors)
        if errors:
            raise ValidationFailed("Check the highlighted fields.", details=errors)

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


@dataclass(frozen=True)
class ConnectionCheck:
    """The result of "Test connection": Meta's view of the number, or Meta's error in words."""

    ok: bool
    phone_number: dict[str, Any] | None = None
    message: str = ""
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "phone_number": self.phone_number, "error": self.error}


def describe_graph_error(error: GraphError, graph_api_url: str) -> dict[str, Any]:
    """Meta's error as an admin should read it: our sentence, Meta's own words and code."""
    if isinstance(error, TransientError) and error.code is None:
        sentence = f"Could not reach the Graph API at {graph_api_url}: {error.title}."
    else:
        sentence = error.agent_message
    return {"message": sentence, "code": error.code, "meta_message": error.title or None,
            "details": error.details, "fbtrace_id": error.fbtrace_id}


class AccountService:
    """The numbers of a workspace and their secrets (never returned in clear outside this class)."""

    def __init__(self, secrets: SecretBox, public_url: str, graph_api_url: str, graph_api_version: str,
                 http: httpx.AsyncClient, *, changes: Changes | None = None) -> None:
        self.secrets = secrets
        self.public_url = public_url
        self.graph_api_url = graph_api_url
        self.graph_api_version = graph_api_version
        self.http = http
        # Called after a token or app secret changes (the outbox resumes sends held on a bad token).
        self.credentials_listeners: list[CredentialsListener] = []
        # Numbers as the send path reads them (every send checks its number; the drainer loads it):
        # dropped in every process by ``changed``.
        self.changes = changes
        self._cache: TtlCache[WhatsAppAccount | None] = TtlCache(CACHE_SECONDS)
        self._change_listeners: list[Callable[[str | None], None]] = []
        if changes is not None:
            changes.on(TOPIC, self._forget)

    def on_change(self, listener: Callable[[str | None], None]) -> None:
        """Call ``listener`` (with the number's id; None: any number) whenever a number changes, in every
        process: for the other copies of numbers a process keeps (webhook routes, numbers by phone id)."""
        self._change_listeners.append(listener)

    def _forget(self, account_id: str | None) -> None:
        if account_id is None:
            self._cache.clear()
        else:
            self._cache.forget(account_id)
        for listener in self._change_listeners:
            listener(account_id)

    async def changed(self, account_id: PydanticObjectId | str | None) -> None:
        """A number's settings, token or health changed: no process sends from its old copy."""
        if self.changes is None:
            self._forget(str(account_id))
        else:
            await self.changes.publish(TOPIC, str(account_id))

    async def cached(self, account_id: PydanticObjectId | str) -> WhatsAppAccount | None:
        """The number by id from this process's copy (read again after ``CACHE_SECONDS`` or a change).
        Shared by its callers: read it, never change it."""
        oid = parse_object_id(account_id)
        if oid is None:
            return None
        return await self._cache.get(str(oid), lambda: WhatsAppAccount.get(oid))

    async def cached_scoped(self, workspace_id: PydanticObjectId, account_id: PydanticObjectId | str | None
                            ) -> WhatsAppAccount:
        """``cached`` for a workspace: NotFound for another workspace's number, as ``get``."""
        account = await self.cached(account_id) if account_id is not None else None
        if account is None or account.workspace_id != workspace_id:
            raise NotFound("whatsappaccount not found", details={"id": str(account_id)})
        return account

    @property
    def uses_sandbox(self) -> bool:
        """True when Graph calls go to our Cloud API simulator instead of Meta."""
        return "/sandbox" in self.graph_api_url

    def webhook_url(self, account: WhatsAppAccount) -> str:
        return f"{self.public_url}/webhooks/whatsapp/{account.webhook_key}"

    async def create(self, workspace_id: PydanticObjectId, new: NewAccount) -> WhatsAppAccount:
        new.validate()
        account = WhatsAppAccount(
            workspace_id=workspace_id,
            name=new.name.strip(),
            phone_number_id=new.phone_number_id.strip(),
            waba_id=new.waba_id.strip(),
            display_phone_number=new.display_phone_number.strip(),
            access_token_encrypted=self.secrets.encrypt(new.access_token.strip()),
            access_token_last4=last4(new.access_token.strip()),
            app_secret_encrypted=self.secrets.encrypt(new.app_secret.strip()),
            app_secret_last4=last4(new.app_secret.strip()),
            verify_token=new_token(24),
            webhook_key=new_token(24),
            mps=int(new.mps),
        )
        try:
            created = await account.insert()
        except DuplicateKeyError:
            raise Conflict("This phone number id is already connected.", error_code="NUMBER_ALREADY_CONNECTED",
                           details={"phone_number_id": "already connected"}) from None
        await audit.record(workspace_id, "number.added", "number", created.id, _named(created),
                           {"phone_number_id": created.phone_number_id, "waba_id": created.waba_id, "mps": created.mps})
        return created

    async def set_access_token(self, account: WhatsAppAccount, token: str) -> None:
        """Rotate the token; queued sends are kept and go out with the new one."""
        await self.update(account, AccountChanges(access_token=token))

    async def update(self, account: WhatsAppAccount, changes: AccountChanges) -> WhatsAppAccount:
        """Apply an admin's edit. Rotating secrets keeps queued sends: they read the token at send time."""
        changes.validate()
        before = {f: getattr(account, f) for f in _AUDITED}
        for field in ("name", "waba_id", "display_phone_number"):
            value = getattr(changes, field)
            if value is not None:
                setattr(account, field, value.strip())
        if changes.mps is not None:
            account.mps = int(changes.mps)
        if changes.enabled is not None:
            account.enabled = bool(changes.enabled)
        rotated = False
        if changes.access_token is not None:
            token = changes.access_token.strip()
            account.access_token_encrypted = self.secrets.encrypt(token)
            account.access_token_last4 = last4(token)
            account.health.token_state = "unknown"
            rotated = True
        if changes.app_secret is not None:
            secret = changes.app_secret.strip()
            account.app_secret_encrypted = self.secrets.encrypt(secret)
            account.app_secret_last4 = last4(secret)
            rotated = True
        account.updated_at = utcnow()
        await account.save()
        await self.changed(account.id)
        edited = audit.diff(before, {f: getattr(account, f) for f in _AUDITED})
        if changes.access_token is not None:
            edited["access_token"] = audit.CHANGED
        if changes.app_secret is not None:
            edited["app_secret"] = audit.CHANGED
        if edited:
            action = ("number.token_changed" if "access_token" in edited else
                      "number.turned_on" if edited == {"enabled": {"from": False, "to": True}} else
                      "number.turned_off" if edited == {"enabled": {"from": True, "to": False}} else "number.changed")
            await audit.record(account.workspace_id, action, "number", account.id, _named(account), edited)
        if rotated:
            log.info("account credentials rotated", account_id=str(account.id))
            for listener in self.credentials_listeners:
                await listener(account)
        return account

    async def set_enabled(self, account: WhatsAppAccount, enabled: bool) -> WhatsAppAccount:
        return await self.update(account, AccountChanges(enabled=enabled))

    async def list(self, workspace_id: PydanticObjectId) -> list[WhatsAppAccount]:
        return await WhatsAppAccount.scoped(workspace_id).sort(+WhatsAppAccount.created_at).to_list()

    async def get(self, workspace_id: PydanticObjectId, account_id: str | PydanticObjectId) -> WhatsAppAccount:
        """The number with that id in that workspace (NotFound for another workspace's id)."""
        return await WhatsAppAccount.get_scoped(workspace_id, account_id)

    async def delete(self, account: WhatsAppAccount) -> None:
        """Disconnect the number: its secrets are erased with it; conversations stay as history.

        The templates of its WABA go too when no other number of the workspace shares that WABA
        (nothing could sync or send them any more).
        """
        from app.domains.templates.models import MessageTemplate  # templates build on accounts, not back

        await account.delete()
        await self.changed(account.id)
        await audit.record(account.workspace_id, "number.removed", "number", account.id, _named(account))
        if await WhatsAppAccount.find_one_scoped(account.workspace_id, {"waba_id": account.waba_id}) is None:
            await MessageTemplate.scoped(account.workspace_id, {"waba_id": account.waba_id}).delete()
        log.info("account deleted", account_id=str(account.id))

    async def test_connection(self, account: WhatsAppAccount) -> ConnectionCheck:
        """Read the number from the Graph API; record what Meta says on the health panel."""
        health = account.health
        health.last_checked_at = utcnow()
        try:
            number = await self.graph(account).get_phone_number(account.phone_number_id)
        except ValueError:  # INBOX_SECRET_KEY changed since the token was saved
            health.token_state = "invalid"
            health.last_check_error = ("The saved access token cannot be decrypted with this server's "
                                       "INBOX_SECRET_KEY; enter the token again.")
            await account.save()
            await self.changed(account.id)
            return ConnectionCheck(False, message=health.last_check_error,
                                   error={"message": health.last_check_error, "code": None})
        except GraphError as error:
            described = describe_graph_error(error, self.graph_api_url)
            if isinstance(error, AuthError):
                health.token_state = "invalid"
            health.last_check_error = described["message"]
            await account.save()
            await self.changed(account.id)
            log.info("connection test failed", account_id=str(account.id), code=error.code)
            return ConnectionCheck(False, message=described["message"], error=described)
        health.token_state = "ok"
        health.last_check_error = None
        health.verified_name = number.get("verified_name") or health.verified_name
        health.quality_rating = number.get("quality_rating") or health.quality_rating
        health.messaging_limit_tier = number.get("messaging_limit_tier") or health.messaging_limit_tier
        health.name_status = number.get("name_status") or health.name_status
        health.number_status = number.get("status") or health.number_status
        throughput = number.get("throughput")
        if isinstance(throughput, dict) and throughput.get("level"):
            health.throughput_level = str(throughput["level"])
        await account.save()
        await self.changed(account.id)
        shown = {key: number.get(key) for key in ("verified_name", "display_phone_number", "quality_rating",
                                                  "messaging_limit_tier", "status", "name_status")}
        shown["throughput"] = health.throughput_level
        return ConnectionCheck(True, phone_number=shown,
                               message=f"Connected: Meta knows this number as {shown['verified_name'] or 'unnamed'}.")

    def view(self, account: WhatsAppAccount) -> dict[str, Any]:
        """What pages and the API show of a number: never a secret, only its last 4 characters."""
        health = account.health
        return {
            "id": str(account.id),
            "name": account.name,
            "phone_number_id": account.phone_number_id,
            "waba_id": account.waba_id,
            "display_phone_number": account.display_phone_number,
            "mps": account.mps,
            "enabled": account.enabled,
            "webhook_url": self.webhook_url(account),
            "verify_token": account.verify_token,
            "access_token_last4": account.access_token_last4,
            "app_secret_last4": account.app_secret_last4,
            "sandbox": self.uses_sandbox,
            "health": {
                "token_state": health.token_state,
                "last_webhook_at": health.last_webhook_at,
                "last_send_error": health.last_send_error.model_dump() if health.last_send_error else None,
                "quality_rating": health.quality_rating,
                "messaging_limit_tier": health.messaging_limit_tier,
                "verified_name": health.verified_name,
                "name_status": health.name_status,
                "number_status": health.number_status,
                "throughput_level": health.throughput_level,
                "last_checked_at": health.last_checked_at,
                "last_check_error": health.last_check_error,
                "sending_stopped": health.sending_stopped.model_dump() if health.sending_stopped else None,
            },
            "created_at": account.created_at,
            "updated_at": account.updated_at,
        }

    async def by_webhook_key(self, webhook_key: str) -> WhatsAppAccount | None:
        return await WhatsAppAccount.find_one(WhatsAppAccount.webhook_key == webhook_key)

    async def by_phone_number_id(self, workspace_id: PydanticObjectId, phone_number_id: str) -> WhatsAppAccount | None:
        return await WhatsAppAccount.find_one_scoped(workspace_id, WhatsAppAccount.phone_number_id == phone_number_id)

    def access_token(self, account: WhatsAppAccount) -> str:
        return self.secrets.decrypt(account.access_token_encrypted)

    def app_secret(self, account: WhatsAppAccount) -> str:
        return self.secrets.decrypt(account.app_secret_encrypted)

    def graph(self, account: WhatsAppAccount) -> GraphClient:
        """A Graph client for this number, sharing the process's connection pool."""
        return GraphClient(self.access_token(account), base_url=self.graph_api_url,
                           api_version=self.graph_api_version, http=self.http)

    async def stop_sending(self, account_id: PydanticObjectId, error: GraphError) -> None:
        """Meta restricted or locked the number for policy (368 / 131031, answered to a send or in a
        failed status): its sends are held, not failed, until an admin resumes sending; the first
        refusal's words are kept, and every drainer and page hears of it at once."""
        log.warning("number restricted by WhatsApp: sends held until an admin resumes them",
                    account_id=str(account_id), code=error.code)
        detail = error.details or error.agent_message
        title = error.title or type(error).__name__
        await WhatsAppAccount.find_one(WhatsAppAccount.id == account_id).update({"$set": {
            "health.last_send_error": SendError(code=error.code, title=title, detail=error.agent_message).model_dump()}})
        await WhatsAppAccount.find_one(WhatsAppAccount.id == account_id, {"health.sending_stopped": None}).update(
            {"$set": {"health.sending_stopped": SendingStopped(code=error.code, title=title, detail=detail).model_dump()}})
        await self.changed(account_id)

    async def resume_sending(self, workspace_id: PydanticObjectId, account_id: str | PydanticObjectId
                             ) -> WhatsAppAccount:
        """An admin dealt with Meta's restriction (368 / 131031): clear ``health.sending_stopped`` and let
        the number's held messages go, in their order. NotFound for an unknown number, Conflict
        (NOT_STOPPED) when its sending is not stopped."""
        account = await self.get(workspace_id, account_id)
        if account.health.sending_stopped is None:
            raise Conflict(f"Sending is not stopped for {account.display_phone_number}.", error_code="NOT_STOPPED",
                           details={"id": str(account.id)})
        now = utcnow()
        await WhatsAppAccount.find_one(WhatsAppAccount.id == account.id).update(
            {"$set": {"health.sending_stopped": None, "updated_at": now}})
        account.health.sending_stopped = None
        account.updated_at = now
        log.info("sending resumed by an admin", account_id=str(account.id))
        await audit.record(workspace_id, "number.sending_resumed", "number", account.id, _named(account))
        # As after a new token: every process drops its copy, and the outbox wakes the number's drainer.
        await self.changed(account.id)
        for listener in self.credentials_listeners:
            await listener(account)
        return account


_AUDITED = ("name", "waba_id", "display_phone_number", "mps", "enabled")
"""A number's fields an edit is recorded with (app/domains/audit); its secrets only as "changed"."""


def _named(account: WhatsAppAccount) -> str:
    return f"{account.name} ({account.display_phone_number})"
