"""JSON API v1: WhatsApp numbers, their connection test and business profile (admins only)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody
from pydantic import BaseModel, ConfigDict

from app.api_shapes import Flag, documented
from app.auth import requires_admin
from app.domains.accounts.api_shapes import (
    AccountPage,
    AccountShape,
    BusinessProfileShape,
    ConnectionCheckShape,
)
from app.domains.accounts.profile import BusinessProfiles, ProfileChanges
from app.domains.accounts.services import AccountChanges, NewAccount
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed
from app.runtime import Runtime

PHOTO_UPLOAD_LIMIT = 20 * 1024 * 1024  # larger than WhatsApp's 5 MB so we can say why it is refused


class AccountIn(BaseModel):
    """A number to connect. Secrets are write-only: answers show their last 4 characters."""

    model_config = ConfigDict(extra="forbid")
    name: str = ""
    phone_number_id: str = ""
    waba_id: str = ""
    display_phone_number: str = ""
    access_token: str = ""
    app_secret: str = ""
    mps: int = 80


class AccountPatch(BaseModel):
    """Fields to change; a new access_token or app_secret rotates it (queued sends are kept)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    waba_id: str | None = None
    display_phone_number: str | None = None
    mps: int | None = None
    access_token: str | None = None
    app_secret: str | None = None
    enabled: Flag | None = None


class ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    about: str | None = None
    address: str | None = None
    description: str | None = None
    email: str | None = None
    websites: list[str] | None = None
    vertical: str | None = None


class AccountsApi(Controller):
    path = "/api/v1/accounts"
    guards = [requires_admin]
    tags = ["accounts"]

    @get("/", summary="The workspace's WhatsApp numbers", responses=documented(200, AccountPage, "The numbers"))
    async def list_accounts(self, runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        accounts = await runtime.accounts.list(principal.workspace_id)
        return {"data": [runtime.accounts.view(a) for a in accounts], "next_cursor": None}

    @post("/", summary="Connect a number (409 when its phone number id is connected anywhere)", status_code=201, responses=documented(201, AccountShape, "The number"))
    async def create_account(self, data: JSONBody[AccountIn], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        account = await runtime.accounts.create(principal.workspace_id, NewAccount(**data.model_dump()))
        return runtime.accounts.view(account)

    @get("/{account_id:str}", summary="One number with its webhook URL and health", responses=documented(200, AccountShape, "The number"))
    async def get_account(self, account_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return runtime.accounts.view(await runtime.accounts.get(principal.workspace_id, account_id))

    @patch("/{account_id:str}", summary="Edit, rotate secrets, enable or disable", responses=documented(200, AccountShape, "The number"))
    async def update_account(self, account_id: FromPath[str], data: JSONBody[AccountPatch], runtime: NamedDependency[Runtime],
                             principal: NamedDependency[Principal]) -> dict[str, Any]:
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        changes = AccountChanges(**data.model_dump())
        if changes.is_empty():
            raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})
        return runtime.accounts.view(await runtime.accounts.update(account, changes))

    @delete("/{account_id:str}", summary="Disconnect a number", status_code=204)
    async def delete_account(self, account_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> None:
        await runtime.accounts.delete(await runtime.accounts.get(principal.workspace_id, account_id))

    @post("/{account_id:str}/test", summary="Ask Meta about the number; Meta's error in words when it fails",
          status_code=200, responses=documented(200, ConnectionCheckShape, "The outcome"))
    async def test_account(self, account_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        return (await runtime.accounts.test_connection(account)).to_dict()

    @post("/{account_id:str}/resume-sending", summary="Resume sending after Meta restricted the number "
          "(368 / 131031): its held messages go in order (409 NOT_STOPPED when sending is not stopped)",
          status_code=200, responses=documented(200, AccountShape, "The number"))
    async def resume_sending(self, account_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return runtime.accounts.view(await runtime.accounts.resume_sending(principal.workspace_id, account_id))

    @get("/{account_id:str}/profile", summary="The number's WhatsApp business profile", responses=documented(200, BusinessProfileShape, "The profile"))
    async def get_profile(self, account_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> dict[str, Any]:
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        return await BusinessProfiles(runtime.accounts).get(account)

    @patch("/{account_id:str}/profile", summary="Edit the business profile", responses=documented(200, BusinessProfileShape, "The new profile"))
    async def update_profile(self, account_id: FromPath[str], data: JSONBody[ProfilePatch], runtime: NamedDependency[Runtime],
                             principal: NamedDependency[Principal]) -> dict[str, Any]:
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        return await BusinessProfiles(runtime.accounts).update(account, ProfileChanges(**data.model_dump()))

    @post("/{account_id:str}/profile/photo", summary="Set the profile photo (JPEG or PNG, at most 5 MB)",
          status_code=200, request_max_body_size=PHOTO_UPLOAD_LIMIT, responses=documented(200, BusinessProfileShape, "The new profile"))
    async def upload_photo(self, account_id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal],
                           data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
                           ) -> dict[str, Any]:
        account = await runtime.accounts.get(principal.workspace_id, account_id)
        photo = data.get("photo")
        if not isinstance(photo, UploadFile):
            raise ValidationFailed("Send the photo as multipart/form-data in a field named 'photo'.",
                                   details={"photo": "Required."})
        content = await photo.read()
        return await BusinessProfiles(runtime.accounts).update(account, ProfileChanges(),
                                                               photo=(content, photo.filename or "profile"))
