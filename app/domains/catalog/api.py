"""JSON API v1: canned responses, labels and custom contact attributes (admins only)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import documented
from app.auth import requires_admin
from app.domains.catalog.api_shapes import (
    AttributePage,
    AttributeShape,
    CannedResponsePage,
    CannedResponseShape,
    LabelPage,
    LabelShape,
)
from app.domains.catalog.services import Catalog
from app.domains.workspaces.services import Principal
from app.errors import ValidationFailed

catalog = Catalog()


def _page(items: list[Any]) -> dict[str, Any]:
    return {"data": [catalog.view(i) for i in items], "next_cursor": None}


def _nothing_to_change(data: BaseModel) -> None:
    if not data.model_fields_set:
        raise ValidationFailed("Nothing to change.", details={"body": "Send at least one field."})


class CannedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shortcut: str = ""
    text: str = Field("", description="May use {{contact.name}}, {{agent.name}}, {{contact.<attribute key>}} ...")


class CannedPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shortcut: str | None = None
    text: str | None = None


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    colour: str = "#128c7e"


class LabelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    colour: str | None = None


class AttributeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    type: str = Field("text", description="text, number, date, boolean or list")
    key: str = Field("", description="snake_case; derived from the name when left out; fixed once created")
    options: list[str] = Field(default_factory=list, description="The values of a list attribute")


class AttributePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    type: str | None = None
    options: list[str] | None = None


class CannedResponsesApi(Controller):
    path = "/api/v1/canned-responses"
    guards = [requires_admin]
    tags = ["settings"]

    @get("/", summary="Canned responses", responses=documented(200, CannedResponsePage, "The canned responses"))
    async def list_items(self, principal: NamedDependency[Principal]) -> dict[str, Any]:
        return _page(await catalog.canned_responses(principal.workspace_id))

    @post("/", summary="Create a canned response", status_code=201, responses=documented(201, CannedResponseShape, "It"))
    async def create_item(self, data: JSONBody[CannedIn], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return catalog.view(await catalog.save_canned_response(principal.workspace_id, data.shortcut, data.text))

    @get("/{item_id:str}", summary="One canned response", responses=documented(200, CannedResponseShape, "It"))
    async def get_item(self, item_id: FromPath[str], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return catalog.view(await catalog.canned_response(principal.workspace_id, item_id))

    @patch("/{item_id:str}", summary="Edit a canned response", responses=documented(200, CannedResponseShape, "It"))
    async def update_item(self, item_id: FromPath[str], data: JSONBody[CannedPatch], principal: NamedDependency[Principal]) -> dict[str, Any]:
        _nothing_to_change(data)
        item = await catalog.canned_response(principal.workspace_id, item_id)
        return catalog.view(await catalog.save_canned_response(
            principal.workspace_id, data.shortcut if data.shortcut is not None else item.shortcut,
            data.text if data.text is not None else item.text, item))

    @delete("/{item_id:str}", summary="Delete a canned response", status_code=204)
    async def delete_item(self, item_id: FromPath[str], principal: NamedDependency[Principal]) -> None:
        await (await catalog.canned_response(principal.workspace_id, item_id)).delete()


class LabelsApi(Controller):
    path = "/api/v1/labels"
    guards = [requires_admin]
    tags = ["settings"]

    @get("/", summary="Conversation labels", responses=documented(200, LabelPage, "The labels"))
    async def list_items(self, principal: NamedDependency[Principal]) -> dict[str, Any]:
        return _page(await catalog.labels(principal.workspace_id))

    @post("/", summary="Create a label", status_code=201, responses=documented(201, LabelShape, "The label"))
    async def create_item(self, data: JSONBody[LabelIn], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return catalog.view(await catalog.save_label(principal.workspace_id, data.name, data.colour))

    @get("/{item_id:str}", summary="One label", responses=documented(200, LabelShape, "The label"))
    async def get_item(self, item_id: FromPath[str], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return catalog.view(await catalog.label(principal.workspace_id, item_id))

    @patch("/{item_id:str}", summary="Rename or recolour a label", responses=documented(200, LabelShape, "The label"))
    async def update_item(self, item_id: FromPath[str], data: JSONBody[LabelPatch], principal: NamedDependency[Principal]) -> dict[str, Any]:
        _nothing_to_change(data)
        item = await catalog.label(principal.workspace_id, item_id)
        return catalog.view(await catalog.save_label(
            principal.workspace_id, data.name if data.name is not None else item.name,
            data.colour if data.colour is not None else item.colour, item))

    @delete("/{item_id:str}", summary="Delete a label (and take it off conversations)", status_code=204)
    async def delete_item(self, item_id: FromPath[str], principal: NamedDependency[Principal]) -> None:
        await catalog.delete_label(await catalog.label(principal.workspace_id, item_id))


class AttributesApi(Controller):
    path = "/api/v1/attributes"
    guards = [requires_admin]
    tags = ["settings"]

    @get("/", summary="Custom contact attributes", responses=documented(200, AttributePage, "The attributes"))
    async def list_items(self, principal: NamedDependency[Principal]) -> dict[str, Any]:
        return _page(await catalog.attributes(principal.workspace_id))

    @post("/", summary="Define a custom contact attribute", status_code=201, responses=documented(201, AttributeShape, "It"))
    async def create_item(self, data: JSONBody[AttributeIn], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return catalog.view(await catalog.save_attribute(principal.workspace_id, data.name, data.type, data.key,
                                                         data.options))

    @get("/{item_id:str}", summary="One attribute definition", responses=documented(200, AttributeShape, "It"))
    async def get_item(self, item_id: FromPath[str], principal: NamedDependency[Principal]) -> dict[str, Any]:
        return catalog.view(await catalog.attribute(principal.workspace_id, item_id))

    @patch("/{item_id:str}", summary="Rename, retype or change the options of an attribute", responses=documented(200, AttributeShape, "It"))
    async def update_item(self, item_id: FromPath[str], data: JSONBody[AttributePatch], principal: NamedDependency[Principal]) -> dict[str, Any]:
        _nothing_to_change(data)
        item = await catalog.attribute(principal.workspace_id, item_id)
        return catalog.view(await catalog.save_attribute(
            principal.workspace_id, data.name if data.name is not None else item.name,
            data.type if data.type is not None else item.type, item.key,
            data.options if data.options is not None else item.options, item))

    @delete("/{item_id:str}", summary="Delete an attribute definition (contacts keep their values)",
            status_code=204)
    async def delete_item(self, item_id: FromPath[str], principal: NamedDependency[Principal]) -> None:
        await (await catalog.attribute(principal.workspace_id, item_id)).delete()
