"""Contacts out as CSV: the columns, each contact's row, and the rows streamed page by page.

Columns: the contact's identity (id, phone, wa_id, user id, username, names, email), tags, identities,
marketing consent (the current state, and when and how it last changed), dates, then one column per
attribute: every attribute the admins defined, and any other key the exported contacts carry, each
shown as the contacts page shows it (``show_attribute``). The header names match what the import
guesses, so an export imports again as it is.

Cells that a spreadsheet would run as a formula (starting with ``=`` ``+`` ``-`` ``@``, a tab or a carriage
return: ``=HYPERLINK(...)`` in a name, or a phone number's ``+``) get an apostrophe in front, as OWASP
advises for CSV files; the import takes it off again (rows.py ``unescape``).

Contacts go out in (created_at, _id) order, read ``PAGE`` at a time by keyset (each page one ``find``
served by the (workspace_id, created_at, _id) index), so neither this process nor the database holds
the whole list; the file is written as UTF-8 with a byte-order mark, which Excel needs to read it as
UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId

from app.db import as_utc
from app.domains.catalog.models import ContactAttribute
from app.domains.contacts.attribute_values import attribute_definitions, show_attribute
from app.domains.contacts.filters import ContactFilter, contact_query, object_ids
from app.domains.contacts.models import Contact
from app.domains.segments.services import SegmentService
from app.pagination import after_filter

STREAM_LIMIT = 10_000
"""Above this many contacts an export is prepared by a worker (export_jobs.py) instead of streamed."""
PAGE = 1000
BLOCK = 64 * 1024
MAX_EXTRA_KEYS = 200
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BASE_COLUMNS = ("id", "phone", "wa_id", "user_id", "username", "name", "profile_name", "email", "tags",
                "opted_out_marketing", "consent_changed_at", "consent_source", "identities", "last_inbound_at",
                "created_at", "updated_at")
_PROJECTION = {"search_tokens": 0, "notes": 0, "identity_notes": 0, "group": 0, "previous_wa_ids": 0,
               "previous_user_ids": 0}


def escape_cell(value: Any) -> str:
    """The cell's text, with an apostrophe before anything a spreadsheet would run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _when(value: Any) -> str:
    if not isinstance(value, datetime):
        return ""
    return as_utc(value).isoformat(timespec="seconds").replace("+00:00", "Z")


async def selection(workspace_id: PydanticObjectId, *, spec: ContactFilter | None = None, q: str | None = None,
                    segment_id: str | None = None, ids: list[str] | None = None) -> dict[str, Any]:
    """The Mongo filter of the contacts to export: a filter, search words, a segment, or given ids (every
    part must hold); scoped to the workspace, groups left out (the contacts page's own selection)."""
    query = await contact_query(workspace_id, spec, q=q or None)
    parts: list[dict[str, Any]] = list(query.pop("$and", []))
    if segment_id:
        parts.append(await SegmentService().query(workspace_id, segment_id))
    if ids is not None:
        parts.append({"_id": {"$in": object_ids(ids)}})
    return {**query, "$and": parts} if parts else query


async def count_up_to(query: dict[str, Any], limit: int) -> int:
    """How many contacts match, counting no further than ``limit`` (the choice of streaming or a job)."""
    return await Contact.get_motor_collection().count_documents(query, limit=limit)


async def pages(query: dict[str, Any], *, after: tuple[datetime, PydanticObjectId] | None = None,
                page: int = PAGE) -> AsyncIterator[list[dict[str, Any]]]:
    """The matching contacts, oldest first, ``page`` at a time (raw documents, without search tokens and notes)."""
    collection = Contact.get_motor_collection()
    while True:
        find = query if after is None else {"$and": [query, after_filter("created_at", after[0], after[1],
                                                                         descending=False)]}
        docs = await collection.find(find, projection=_PROJECTION).sort(
            [("created_at", 1), ("_id", 1)]).limit(page).to_list(None)
        if not docs:
            return
        yield docs
        if len(docs) < page:
            return
        after = (docs[-1]["created_at"], docs[-1]["_id"])


async def columns(workspace_id: PydanticObjectId, query: dict[str, Any]) -> list[str]:
    """The header: the base columns, then every defined attribute, then other attribute keys in use
    (read once through the matching contacts' attributes; at most MAX_EXTRA_KEYS of them)."""
    definitions = await attribute_definitions(workspace_id)
    keys = list(definitions)
    extra: dict[str, None] = {}
    async for doc in Contact.get_motor_collection().find(query, projection={"attributes": 1}):
        for key in doc.get("attributes") or {}:
            if key not in definitions and len(extra) < MAX_EXTRA_KEYS:
                extra[key] = None
    return [*BASE_COLUMNS, *(f"attributes.{k}" for k in [*keys, *sorted(extra)])]


def header_of(column: str) -> str:
    """An attribute's column is headed by its key, unless that is also a base column's name."""
    if column.startswith("attributes."):
        key = column[len("attributes."):]
        return column if key in BASE_COLUMNS else key
    return column


def row_of(doc: dict[str, Any], columns: list[str], definitions: dict[str, ContactAttribute]) -> list[str]:
    consent = (doc.get("consent") or [{}])[-1]
    base = {
        "id": str(doc["_id"]), "phone": doc.get("phone") or "", "wa_id": doc.get("wa_id") or "",
        "user_id": doc.get("user_id") or "", "username": doc.get("username") or "", "name": doc.get("name") or "",
        "profile_name": doc.get("profile_name") or "", "email": doc.get("email") or "",
        "tags": ", ".join(doc.get("tags") or []), "opted_out_marketing": "yes" if doc.get("opted_out_marketing") else "no",
        "consent_changed_at": _when(consent.get("at")), "consent_source": consent.get("source") or "",
        "identities": " ".join(doc.get("identities") or []), "last_inbound_at": _when(doc.get("last_inbound_at")),
        "created_at": _when(doc.get("created_at")), "updated_at": _when(doc.get("updated_at")),
    }
    attributes = doc.get("attributes") or {}
    cells = []
    for column in columns:
        if column.startswith("attributes."):
            key = column[len("attributes."):]
            cells.append(escape_cell(show_attribute(definitions.get(key), attributes.get(key))))
        else:
            cells.append(escape_cell(base.get(column, "")))
    return cells


class CsvText:
    """csv.writer into a buffer handed out as UTF-8 bytes once it holds ``BLOCK`` or more."""

    def __init__(self, *, bom: bool) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")
        if bom:
            self.buffer.write("\ufeff")

    def row(self, cells: list[str]) -> bytes | None:
        self.writer.writerow(cells)
        return self.take() if self.buffer.tell() >= BLOCK else None

    def take(self) -> bytes:
        data = self.buffer.getvalue().encode("utf-8")
        self.buffer.seek(0)
        self.buffer.truncate()
        return data


async def stream_csv(workspace_id: PydanticObjectId, query: dict[str, Any]) -> AsyncIterator[bytes]:
    """The whole export as CSV bytes, in blocks of about ``BLOCK`` (for a streamed answer)."""
    chosen = await columns(workspace_id, query)
    definitions = await attribute_definitions(workspace_id)
    text = CsvText(bom=True)
    text.row([header_of(c) for c in chosen])
    async for docs in pages(query):
        for doc in docs:
            block = text.row(row_of(doc, chosen, definitions))
            if block:
                yield block
    yield text.take()


def filename_for(now: datetime) -> str:
    return f"contacts-{now:%Y%m%d-%H%M}.csv"
