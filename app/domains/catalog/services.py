"""Canned responses, labels and contact attributes: validated create / edit / delete per workspace.

Canned responses may use ``{{contact.name}}``-style variables; the allowed names are the built-in
ones plus ``{{contact.<key>}}`` for every custom attribute, and ``fill_variables`` renders them
for the inbox's composer.
"""

from __future__ import annotations

import re
from typing import Any

from beanie import PydanticObjectId
from beanie.exceptions import RevisionIdWasChanged
from pymongo.errors import DuplicateKeyError

from app.db import utcnow
from app.domains.catalog.models import ATTRIBUTE_TYPES, CannedResponse, ContactAttribute, Label
from app.domains.conversations.models import Conversation
from app.errors import Conflict, ValidationFailed

BUILTIN_VARIABLES = ("contact.name", "contact.phone", "contact.wa_id", "agent.name", "agent.email", "workspace.name")
_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_RESERVED_KEYS = {"name", "phone", "wa_id", "email", "id", "tags", "attributes"}


def _invalid(**fields: str) -> ValidationFailed:
    return ValidationFailed("Check the highlighted fields.", details=fields)


def fill_variables(text: str, values: dict[str, Any]) -> str:
    """Replace ``{{contact.name}}`` and friends with ``values[...]``; unknown or empty ones become ''."""
    return _VARIABLE.sub(lambda m: str(values.get(m.group(1).strip()) or ""), text)


def slug_key(name: str) -> str:
    """An attribute key from its display name: ``Customer tier`` -> ``customer_tier``."""
    key = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    return key if key[:1].isalpha() else f"attr_{key}" if key else ""


class Catalog:
    """The three small vocabularies; every method is scoped to one workspace."""

    # -- canned responses -------------------------------------------------------------------------

    async def canned_responses(self, workspace_id: PydanticObjectId) -> list[CannedResponse]:
        return await CannedResponse.scoped(workspace_id).sort("+shortcut").to_list()

    async def canned_response(self, workspace_id: PydanticObjectId, item_id: str) -> CannedResponse:
        return await CannedResponse.get_scoped(workspace_id, item_id)

    async def variables(self, workspace_id: PydanticObjectId) -> list[str]:
        """Every variable a canned response may use in this workspace."""
        keys = [a.key for a in await self.attributes(workspace_id)]
        return [*BUILTIN_VARIABLES, *(f"contact.{k}" for k in keys)]

    async def save_canned_response(self, workspace_id: PydanticObjectId, shortcut: str, text: str,
                                   item: CannedResponse | None = None) -> CannedResponse:
        shortcut = shortcut.strip().lstrip("/").lower()
        errors: dict[str, str] = {}
        if not _SHORTCUT.match(shortcut):
            errors["shortcut"] = "1 to 32 lowercase letters, digits, - or _ (typed after a /)."
        if not text.strip():
            errors["text"] = "Required."
        elif len(text) > 4096:
            errors["text"] = f"At most 4096 characters, WhatsApp's text limit (this has {len(text)})."
        else:
            allowed = set(await self.variables(workspace_id))
            unknown = [v.strip() for v in _VARIABLE.findall(text) if v.strip() not in allowed]
            if unknown:
                errors["text"] = (f"Unknown variable {{{{{unknown[0]}}}}}. Use one of: "
                                  + ", ".join("{{" + v + "}}" for v in sorted(allowed)) + ".")
        if errors:
            raise _invalid(**errors)
        item = item or CannedResponse(workspace_id=workspace_id, shortcut=shortcut, text=text)
        item.shortcut, item.text, item.updated_at = shortcut, text, utcnow()
        return await self._save(item, "shortcut", "This shortcut is taken.")

    # -- labels -----------------------------------------------------------------------------------

    async def labels(self, workspace_id: PydanticObjectId) -> list[Label]:
        return await Label.scoped(workspace_id).sort("+name").to_list()

    async def label(self, workspace_id: PydanticObjectId, item_id: str) -> Label:
        return await Label.get_scoped(workspace_id, item_id)

    async def save_label(self, workspace_id: PydanticObjectId, name: str, colour: str,
                         item: Label | None = None) -> Label:
        name, colour = name.strip(), colour.strip()
        errors: dict[str, str] = {}
        if not name or len(name) > 40:
            errors["name"] = "1 to 40 characters."
        if not _COLOUR.match(colour):
            errors["colour"] = "A colour like #128c7e."
        if errors:
            raise _invalid(**errors)
        item = item or Label(workspace_id=workspace_id, name=name)
        item.name, item.colour, item.updated_at = name, colour.lower(), utcnow()
        return await self._save(item, "name", "A label with this name exists.")

    async def delete_label(self, label: Label) -> None:
        """Remove the label and take it off every conversation (they hold label ids)."""
        await Conversation.scoped(label.workspace_id, {"labels": str(label.id)}).update(
            {"$pull": {"labels": str(label.id)}, "$set": {"sliced_at": utcnow(), "updated_at": utcnow()}})
        await label.delete()

    # -- contact attributes -----------------------------------------------------------------------

    async def attributes(self, workspace_id: PydanticObjectId) -> list[ContactAttribute]:
        return await ContactAttribute.scoped(workspace_id).sort("+name").to_list()

    async def attribute(self, workspace_id: PydanticObjectId, item_id: str) -> ContactAttribute:
        return await ContactAttribute.get_scoped(workspace_id, item_id)

    async def save_attribute(self, workspace_id: PydanticObjectId, name: str, type_: str, key: str = "",
                             options: list[str] | None = None, item: ContactAttribute | None = None
                             ) -> ContactAttribute:
        """Define a custom attribute; its key is fixed once created (contacts store values under it)."""
        name, type_ = name.strip(), type_.strip().lower()
        key = item.key if item is not None else (key.strip() or slug_key(name))
        clean = list(dict.fromkeys(o.strip() for o in (options or []) if o.strip()))
        errors: dict[str, str] = {}
        if not name or len(name) > 60:
            errors["name"] = "1 to 60 characters."
        if not _KEY.match(key) or key in _RESERVED_KEYS:
            errors["key"] = "snake_case, starting with a letter, not a built-in field (name, phone, email ...)."
        if type_ not in ATTRIBUTE_TYPES:
            errors["type"] = "Text, number, date, yes/no or list."
        elif type_ == "list" and not 1 <= len(clean) <= 50:
            errors["options"] = "A list attribute needs 1 to 50 options."
        if errors:
            raise _invalid(**errors)
        item = item or ContactAttribute(workspace_id=workspace_id, key=key, name=name)
        item.name, item.type, item.updated_at = name, type_, utcnow()
        item.options = clean if type_ == "list" else []
        return await self._save(item, "key", "An attribute with this key exists.")

    # -- shared -----------------------------------------------------------------------------------

    @staticmethod
    async def _save(item: Any, field: str, taken: str) -> Any:
        try:
            # Beanie's save() upserts and reports a duplicate key as RevisionIdWasChanged.
            await (item.insert() if item.id is None else item.save())
        except (DuplicateKeyError, RevisionIdWasChanged):
            raise Conflict(taken, error_code="ALREADY_EXISTS", details={field: taken}) from None
        return item

    @staticmethod
    def view(item: CannedResponse | Label | ContactAttribute) -> dict[str, Any]:
        return {"id": str(item.id), **item.model_dump(exclude={"id", "workspace_id", "revision_id"})}
