"""The raw rows behind a report, streamed as CSV: every message of the period, and every conversation with a
message in it.

Read through the (workspace_id, timestamp) index, a batch at a time; the customers' numbers and the people's
names are looked up once per batch. Times are in the workspace's zone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId

from app.domains.access.scope import Scope
from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message
from app.domains.reports.hours import accounts_of
from app.domains.reports.periods import Period
from app.domains.reports.rollups import slice_query
from app.domains.workspaces.models import User

BATCH = 1000
MESSAGE_COLUMNS = ["time", "direction", "type", "status", "number", "customer", "customer_name", "conversation_id",
                   "message_id", "via", "agent", "template", "error_code", "pricing_category", "waited_seconds"]
CONVERSATION_COLUMNS = ["conversation_id", "number", "customer", "customer_name", "status", "started", "last_activity",
                        "assignee", "labels", "priority"]


def _line(values: Iterable[Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(["" if v is None else v for v in values])
    return out.getvalue()


def _local(value: datetime | None, period: Period) -> str:
    if value is None:
        return ""
    return value.astimezone(period.zone).isoformat(timespec="seconds") if value.tzinfo else value.isoformat()


async def _customers(ids: set[Any]) -> dict[Any, tuple[str, str]]:
    found = await Contact.get_motor_collection().find(
        {"_id": {"$in": list(ids)}}, projection={"wa_id": 1, "user_id": 1, "name": 1, "profile_name": 1}).to_list(None)
    return {c["_id"]: (c.get("wa_id") or c.get("user_id") or "", c.get("name") or c.get("profile_name") or "")
            for c in found}


async def _people(workspace_id: PydanticObjectId) -> dict[Any, str]:
    return {u.id: u.name or u.email for u in await User.find({"workspace_id": workspace_id}).to_list()}


async def message_rows(scope: Scope, period: Period, account_id: PydanticObjectId | None,
                       numbers: dict[Any, str], only: str | None = None) -> AsyncIterator[str]:
    """Customers' messages and ours in the period, oldest first (reactions and internal lines left out); ``only``:
    those of the conversations in that slice now (filters.py)."""
    yield _line(MESSAGE_COLUMNS)
    query: dict[str, Any] = {"workspace_id": scope.workspace_id, "timestamp": {"$gte": period.start, "$lt": period.end},
                             "direction": {"$in": ["inbound", "outbound"]}, "type": {"$ne": "reaction"}}
    accounts = accounts_of(scope, account_id)
    if accounts is not None:
        query["account_id"] = {"$in": accounts}
    people = await _people(scope.workspace_id)
    fields = {"timestamp": 1, "direction": 1, "type": 1, "status": 1, "account_id": 1, "contact_id": 1,
              "conversation_id": 1, "via": 1, "sent_by": 1, "content.name": 1, "error.code": 1,
              "pricing.category": 1, "pricing_category": 1, "response": 1}
    cursor = Message.get_motor_collection().find(query, projection=fields, batch_size=BATCH).sort("timestamp", 1)
    batch: list[dict[str, Any]] = []

    async def flush() -> str:
        if only is not None:  # the batch's conversations in the slice: one read
            theirs = {c["_id"] async for c in Conversation.get_motor_collection().find(
                {"_id": {"$in": list({m["conversation_id"] for m in batch})}, **slice_query(only)}, projection={"_id": 1})}
            batch[:] = [m for m in batch if m["conversation_id"] in theirs]
        customers = await _customers({m["contact_id"] for m in batch})
        lines = []
        for m in batch:
            number, name = customers.get(m["contact_id"], ("", ""))
            response = m.get("response") or {}
            waited = None
            if isinstance(response.get("since"), datetime):
                waited = round((m["timestamp"] - response["since"]).total_seconds())
            lines.append(_line([
                _local(m["timestamp"], period), m["direction"], m["type"], m["status"], numbers.get(m["account_id"], ""),
                number, name, m["conversation_id"], m["_id"], m.get("via"), people.get(m.get("sent_by"), ""),
                (m.get("content") or {}).get("name") if m["type"] == "template" else "",
                (m.get("error") or {}).get("code"), (m.get("pricing") or {}).get("category") or m.get("pricing_category"),
                waited]))
        batch.clear()
        return "".join(lines)

    async for message in cursor:
        batch.append(message)
        if len(batch) >= BATCH:
            yield await flush()
    if batch:
        yield await flush()


async def conversation_rows(scope: Scope, period: Period, account_id: PydanticObjectId | None,
                            numbers: dict[Any, str], only: str | None = None) -> AsyncIterator[str]:
    """Conversations with a customer's message or ours in the period (those the person sees; ``only``: in that
    slice now), in order of id."""
    yield _line(CONVERSATION_COLUMNS)
    query: dict[str, Any] = {"workspace_id": scope.workspace_id, "timestamp": {"$gte": period.start, "$lt": period.end},
                             "direction": {"$in": ["inbound", "outbound"]}}
    accounts = accounts_of(scope, account_id)
    if accounts is not None:
        query["account_id"] = {"$in": accounts}
    ids = sorted(await Message.get_motor_collection().distinct("conversation_id", query))
    people = await _people(scope.workspace_id)
    fields = {"account_id": 1, "contact_id": 1, "status": 1, "created_at": 1, "last_message_at": 1,
              "assignee_id": 1, "labels": 1, "priority": 1}
    for start in range(0, len(ids), BATCH):
        found = await Conversation.get_motor_collection().find(
            scope.restrict({"workspace_id": scope.workspace_id, "_id": {"$in": ids[start:start + BATCH]},
                            **(slice_query(only) if only else {})}),
            projection=fields).sort("_id", 1).to_list(None)
        customers = await _customers({c["contact_id"] for c in found})
        yield "".join(_line([c["_id"], numbers.get(c["account_id"], ""), *customers.get(c["contact_id"], ("", "")),
                             c.get("status"), _local(c.get("created_at"), period),
                             _local(c.get("last_message_at"), period), people.get(c.get("assignee_id"), ""),
                             "; ".join(c.get("labels") or []), c.get("priority")]) for c in found)
