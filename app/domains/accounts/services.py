"""Connecting numbers: create with encrypted secrets, look up for webhooks, build Graph clients."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app.db import utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.errors import Conflict, ValidationFailed
from app.security import SecretBox, last4, new_token
from app.whatsapp.client import GraphClient


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
        if not 1 <= int(self.mps) <= 1000:
            errors["mps"] = "Between 1 and 1000 messages per second."
        if errors:
            raise ValidationFailed("Check the highlighted fields.", details=errors)


class AccountService:
    """The numbers of a workspace and their secrets (never returned in clear outside this class)."""

    def __init__(self, secrets: SecretBox, public_url: str, graph_api_url: str, graph_api_version: str,
                 http: httpx.AsyncClient) -> None:
        self.secrets = secrets
        self.public_url = public_url
        self.graph_api_url = graph_api_url
        self.graph_api_version = graph_api_version
        self.http = http

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
            return await account.insert()
        except DuplicateKeyError:
            raise Conflict("This phone number id is already connected.", error_code="NUMBER_ALREADY_CONNECTED",
                           details={"phone_number_id": "already connected"}) from None

    async def set_access_token(self, account: WhatsAppAccount, token: str) -> None:
        """Rotate the token; queued sends are kept and go out with the new one."""
        account.access_token_encrypted = self.secrets.encrypt(token.strip())
        account.access_token_last4 = last4(token.strip())
        account.health.token_state = "unknown"
        account.updated_at = utcnow()
        await account.save()

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
