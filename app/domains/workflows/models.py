"""Workflows (a trigger, conditions, steps with branches), their runs, and the timers of "no reply" triggers.

A workflow's definition (``trigger``, ``conditions``, ``steps``) is plain JSON checked by
``definition.py``; a run keeps a copy of the steps it started with, so editing a workflow never moves
a run that is waiting for days onto a step that no longer exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pymongo
from beanie import PydanticObjectId
from pydantic import BaseModel, Field

from app.db import WorkspaceDocument, utcnow

RunStatus = Literal["running", "waiting", "completed", "stopped", "failed"]
ACTIVE: tuple[str, ...] = ("running", "waiting")
LOG_KEPT = 200
"""A run keeps its last LOG_KEPT log lines (a loop is bounded well before that: engine.MAX_STEPS)."""


class Workflow(WorkspaceDocument):
    name: str
    description: str = ""
    enabled: bool = False
    """Only enabled workflows start runs; turning one off stops its runs in progress."""
    trigger: dict[str, Any] = Field(default_factory=dict)
    conditions: dict[str, Any] = Field(default_factory=lambda: {"match": "all", "conditions": []})
    steps: list[dict[str, Any]] = Field(default_factory=list)
    account_id: PydanticObjectId | None = None
    """The number a run sends from when its contact has no conversation yet (None: the workspace's first)."""
    max_messages_per_hour: int = 5
    """A run of this workflow sends at most this many messages to one contact in any hour."""
    max_runs_per_hour: int = 10
    """At most this many runs of this workflow start for one contact in any hour (stops trigger loops)."""
    webhook_secret: str | None = None
    """The incoming-webhook trigger's token, encrypted (app.security.SecretBox)."""
    signing_secret: str | None = None
    """The key HTTP steps sign their requests with (``whsec_…``, encrypted); shown once when made or rotated."""
    signing_secret_last4: str = ""
    scanned_until: datetime | None = None
    """Date and segment triggers: contacts up to this moment were looked at."""
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: PydanticObjectId | None = None

    class Settings:
        name = "workflows"
        indexes = [
            pymongo.IndexModel([("workspace_id", 1), ("enabled", 1)]),
            pymongo.IndexModel([("enabled", 1), ("trigger.type", 1)]),
        ]


class RunLogEntry(BaseModel):
    at: datetime = Field(default_factory=utcnow)
    step_id: str | None = None
    type: str
    """The step's type, or "trigger" / "end"."""
    outcome: Literal["done", "waiting", "skipped", "failed", "info"] = "done"
    text: str


class Waiting(BaseModel):
    step_id: str
    kind: Literal["time", "until_reply", "reply", "answered"]
    """time: a wait; until_reply: a wait the customer's reply ends; reply: a question waiting for its answer;
    answered: the answer came and the run is about to read it (the reply routing's index reads ``kind``)."""
    until: datetime | None = None
    end_on_reply: bool = False
    """A wait that ends the run when the customer writes (follow-up sequences)."""
    tries: int = 0
    """An ask: answers refused so far."""


class WorkflowRun(WorkspaceDocument):
    workflow_id: PydanticObjectId
    workflow_name: str
    steps: list[dict[str, Any]]
    """The workflow's steps when this run started."""
    contact_id: PydanticObjectId
    conversation_id: PydanticObjectId | None = None
    status: RunStatus = "running"
    cursor: list[int] = Field(default_factory=lambda: [0])
    """Where the run is: [step] at the top level, [step, branch, step, ...] inside branches."""
    visits: int = 0
    """Steps done so far (each step's idempotency key includes it; bounded by engine.MAX_STEPS)."""
    depth: int = 0
    """0: started by a trigger; n: started by a step of a run of depth n - 1 (bounded)."""
    vars: dict[str, Any] = Field(default_factory=dict)
    """The trigger's data and the answers to questions (``answer``, and each ask's ``save_as``)."""
    trigger: dict[str, Any] = Field(default_factory=dict)
    """What started it: {"type", "message_id", "text", "by", ...}."""
    reply: dict[str, Any] | None = None
    """A customer's message handed to a run that waits for an answer: {"message_id", "text"}."""
    waiting: Waiting | None = None
    wake_at: datetime | None = None
    """When a worker should advance it (now, or the end of a wait)."""
    owner: str | None = None
    lease_until: datetime | None = None
    active_key: str | None = None
    """"<workflow>:<contact>" while running or waiting (unique): one run of a workflow per contact at a time."""
    dedupe_key: str | None = None
    """What started it ("message:<id>", "date:<contact>:<value>", ...), unique per workflow: started once."""
    log: list[RunLogEntry] = Field(default_factory=list)
    started_by: PydanticObjectId | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "workflow_runs"
        indexes = [
            pymongo.IndexModel([("wake_at", 1)]),  # ended runs have none
            pymongo.IndexModel([("workspace_id", 1), ("conversation_id", 1), ("waiting.kind", 1), ("status", 1)]),
            pymongo.IndexModel([("workspace_id", 1), ("conversation_id", 1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("contact_id", 1), ("waiting.kind", 1)]),
            pymongo.IndexModel([("workspace_id", 1), ("contact_id", 1), ("_id", -1)]),
            pymongo.IndexModel([("workspace_id", 1), ("workflow_id", 1), ("_id", -1)]),
            pymongo.IndexModel([("active_key", 1)], unique=True,
                               partialFilterExpression={"active_key": {"$type": "string"}}),
            pymongo.IndexModel([("workflow_id", 1), ("dedupe_key", 1)], unique=True,
                               partialFilterExpression={"dedupe_key": {"$type": "string"}}),
        ]


class WorkflowTimer(WorkspaceDocument):
    """A moment a trigger waits for, one per workflow and subject (``key``):
    - "no agent reply" / "no customer reply" (key ``c:<conversation>``): due ``minutes`` after ``since``
      (the customer's unanswered message, or our last one) unless the other side writes first, which is
      checked again from the stored messages when it fires;
    - "date reached" (key ``d:<contact>``): due at the contact's date attribute (``since``) plus the
      trigger's offset; kept current by the scan of contacts changed since the last one, and checked
      against the attribute again when it fires."""

    workflow_id: PydanticObjectId
    key: str
    kind: Literal["no_agent_reply", "no_customer_reply", "date_reached"]
    contact_id: PydanticObjectId
    conversation_id: PydanticObjectId | None = None
    since: datetime
    due_at: datetime

    class Settings:
        name = "workflow_timers"
        indexes = [
            pymongo.IndexModel([("workflow_id", 1), ("key", 1)], unique=True),
            pymongo.IndexModel([("due_at", 1)]),
        ]


def run_summary(run: WorkflowRun) -> dict[str, Any]:
    """A run as the API and the screens show it."""
    return {"id": str(run.id), "workflow_id": str(run.workflow_id), "workflow_name": run.workflow_name,
            "contact_id": str(run.contact_id),
            "conversation_id": str(run.conversation_id) if run.conversation_id else None,
            "status": run.status, "steps_done": run.visits, "trigger": run.trigger,
            "waiting": run.waiting.model_dump(mode="json") if run.waiting else None,
            "wake_at": run.wake_at.isoformat() if run.wake_at and run.status in ACTIVE else None,
            "started_at": run.created_at.isoformat(), "ended_at": run.ended_at.isoformat() if run.ended_at else None,
            "end_reason": run.end_reason,
            "log": [entry.model_dump(mode="json") for entry in run.log]}
