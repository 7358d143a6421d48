"""What a workflow is made of, checked: its trigger, its conditions, and its steps with their branches.

One shape for the admin screen, the API and the ready-made templates. ``check_definition`` refuses
anything wrong with a 422 ``WORKFLOW_INVALID`` whose ``details`` name the place (``steps.2.branches.0
.steps.1.text``), never a 500; what it returns is what is stored.

Steps (``params`` by type):
- ``send_text`` {text}; ``send_media`` {kind: image|video|audio|document, link, caption};
  ``send_buttons`` {text, buttons: [≤ 3 titles]}; ``send_template`` {name, language, params: [...]}.
  Texts take ``{{contact.name}}``, ``{{contact.phone}}``, ``{{attributes.<key>}}``, ``{{answer}}``,
  ``{{vars.<name>}}``. Free-form sends need the 24-hour window; outside it only a template goes.
- ``ask`` {question, buttons?, answer_type: text|number|date|yes_no|choice, choices?, save_as?
  (a contact attribute key), timeout_minutes, retries, retry_text}; branch "timeout" (optional).
- ``condition``: branches, each {label, when: {match, conditions}}; one without ``when`` is "else".
- ``assign`` {to: agent|team|round_robin|least_open|unassign, user_id?, team_id?};
  ``tags`` {add, remove}; ``labels`` {add, remove}; ``set_attribute`` {key, value};
  ``set_status`` {status: open|pending|resolved|snoozed, snooze_minutes?};
  ``set_priority`` {priority: urgent|high|medium|low|none}; ``note`` {text};
  ``notify`` {text, user_ids?} (a note naming the agents, or the assignee when none);
- ``wait`` {minutes} | {until_time: "HH:MM"} | {attribute, offset_minutes}, with ``end_on_reply``;
- ``http`` {method, url, body?, save: {attribute: "json.path"}}; branch "failed" (optional);
- ``start_workflow`` {workflow_id}; ``jump`` {to: step id}; ``stop`` {}.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import ValidationFailed

TRIGGERS = ("message_received", "conversation_opened", "conversation_resolved", "no_agent_reply",
            "no_customer_reply", "contact_created", "tag_added", "tag_removed", "attribute_changed",
            "date_reached", "segment_entered", "webhook", "manual")
STEP_TYPES = ("send_text", "send_media", "send_buttons", "send_template", "ask", "condition", "assign", "tags",
              "labels", "set_attribute", "set_status", "set_priority", "note", "notify", "wait", "http", "start_workflow",
              "jump", "stop")
SENDS = frozenset({"send_text", "send_media", "send_buttons", "send_template", "ask"})
CONDITION_FIELDS = ("tag", "segment", "opted_out", "contact.name", "contact.phone", "contact.email",
                    "conversation.status", "conversation.assignee", "conversation.team", "conversation.label",
                    "conversation.number", "message.text", "business_hours", "answer")
"""Plus ``attributes.<key>`` and ``vars.<name>``."""
OPS = ("is", "is_not", "contains", "not_contains", "starts_with", "matches", "gt", "lt", "before", "after",
       "has", "has_not", "is_set", "is_unset", "in", "not_in", "open", "closed")
PRIORITIES = ("urgent", "high", "medium", "low", "none")
MAX_STEPS_DEFINED = 200
MAX_DEPTH = 6
MAX_TEXT = 4096
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PART = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_Strict):
    field: str = Field(min_length=1, max_length=80)
    op: Literal[OPS]  # type: ignore[valid-type]
    value: Any = None

    @field_validator("field")
    @classmethod
    def _known(cls, value: str) -> str:
        if value in CONDITION_FIELDS or (value.startswith("attributes.") and _KEY.match(value.split(".", 1)[1])) or (
                value.startswith("vars.") and all(_PART.match(p) for p in value.split(".")[1:])):
            return value
        raise ValueError("unknown field: use " + ", ".join(CONDITION_FIELDS) + ", attributes.<key> or vars.<name>")


class Conditions(_Strict):
    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(default_factory=list, max_length=20)


class Trigger(_Strict):
    type: Literal[TRIGGERS]  # type: ignore[valid-type]
    match: Literal["any", "keywords", "phrase", "exact", "regex"] = "any"
    """message_received: any message, one of ``keywords`` as a word, a phrase inside, the exact text, a regex."""
    keywords: list[str] = Field(default_factory=list, max_length=50)
    pattern: str | None = Field(None, max_length=300)
    account_id: str | None = None
    """Only this number's conversations (message, conversation and reply triggers)."""
    minutes: int | None = Field(None, ge=1, le=60 * 24 * 30)
    """no_agent_reply / no_customer_reply: after how long."""
    business_hours: bool = False
    """no_agent_reply / no_customer_reply: ``minutes`` count in business hours only (an SLA clock)."""
    tag: str | None = Field(None, max_length=60)
    attribute: str | None = Field(None, max_length=64)
    offset_minutes: int = Field(0, ge=-60 * 24 * 60, le=60 * 24 * 60)
    """date_reached: minutes after (negative: before) the date attribute's moment."""
    segment_id: str | None = None


class Branch(_Strict):
    label: str = Field(default="", max_length=60)
    when: Conditions | None = None
    steps: list[Step] = Field(default_factory=list)


class Step(_Strict):
    id: str = Field(default_factory=lambda: secrets.token_hex(4), pattern=r"^[A-Za-z0-9_-]{1,32}$")
    type: Literal[STEP_TYPES]  # type: ignore[valid-type]
    params: dict[str, Any] = Field(default_factory=dict)
    branches: list[Branch] = Field(default_factory=list, max_length=10)


Branch.model_rebuild()


class Definition(_Strict):
    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=1000)
    enabled: bool = False
    trigger: Trigger
    conditions: Conditions = Field(default_factory=Conditions)
    steps: list[Step] = Field(default_factory=list)
    account_id: str | None = None
    max_messages_per_hour: int = Field(5, ge=1, le=100)
    max_runs_per_hour: int = Field(10, ge=1, le=1000)


def _text(params: dict[str, Any], key: str, where: str, errors: dict[str, str], *, required: bool = True,
          limit: int = MAX_TEXT) -> None:
    value = params.get(key)
    if value in (None, "") and not required:
        return
    if not isinstance(value, str) or not value.strip():
        errors[f"{where}.params.{key}"] = "write something"
    elif len(value) > limit:
        errors[f"{where}.params.{key}"] = f"at most {limit} characters"


def _int(params: dict[str, Any], key: str, where: str, errors: dict[str, str], low: int, high: int, *,
         required: bool = True) -> None:
    value = params.get(key)
    if value is None and not required:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors[f"{where}.params.{key}"] = f"a whole number from {low} to {high}"


def _words(params: dict[str, Any], key: str, where: str, errors: dict[str, str]) -> None:
    value = params.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        errors[f"{where}.params.{key}"] = "a list of words"


def _check_step(step: Step, where: str, errors: dict[str, str]) -> None:  # noqa: C901 - one case per type
    p = step.params
    t = step.type
    if t in ("send_text", "note"):
        _text(p, "text", where, errors)
    elif t == "notify":
        _text(p, "text", where, errors)
        if not isinstance(p.get("user_ids", []), list):
            errors[f"{where}.params.user_ids"] = "a list of user ids"
    elif t == "send_media":
        if p.get("kind") not in ("image", "video", "audio", "document"):
            errors[f"{where}.params.kind"] = "image, video, audio or document"
        link = p.get("link")
        if not isinstance(link, str) or not link.startswith("https://"):
            errors[f"{where}.params.link"] = "an https:// link"
        _text(p, "caption", where, errors, required=False, limit=1024)
    elif t == "send_buttons":
        _text(p, "text", where, errors, limit=1024)
        buttons = p.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3 or \
                not all(isinstance(b, str) and 0 < len(b.strip()) <= 20 for b in buttons):
            errors[f"{where}.params.buttons"] = "one to three titles of at most 20 characters"
    elif t == "send_template":
        _text(p, "name", where, errors, limit=512)
        _text(p, "language", where, errors, limit=15)
        params = p.get("params", [])
        if not isinstance(params, list) or not all(isinstance(v, str) for v in params):
            errors[f"{where}.params.params"] = "a list of texts (body parameters in order)"
    elif t == "ask":
        _text(p, "question", where, errors, limit=1024)
        if p.get("answer_type", "text") not in ("text", "number", "date", "yes_no", "choice"):
            errors[f"{where}.params.answer_type"] = "text, number, date, yes_no or choice"
        if p.get("answer_type") == "choice":
            _words(p, "choices", where, errors)
            if not p.get("choices"):
                errors[f"{where}.params.choices"] = "list the choices"
        if p.get("buttons") is not None:
            buttons = p["buttons"]
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3 or \
                    not all(isinstance(b, str) and 0 < len(b.strip()) <= 20 for b in buttons):
                errors[f"{where}.params.buttons"] = "one to three titles of at most 20 characters"
        save_as = p.get("save_as")
        if save_as not in (None, "") and not (isinstance(save_as, str) and _KEY.match(save_as)):
            errors[f"{where}.params.save_as"] = "an attribute key (lower case letters, digits, _)"
        _int(p, "timeout_minutes", where, errors, 1, 60 * 24 * 30, required=False)
        _int(p, "retries", where, errors, 0, 5, required=False)
        _text(p, "retry_text", where, errors, required=False, limit=1024)
    elif t == "assign":
        to = p.get("to")
        if to not in ("agent", "team", "round_robin", "least_open", "unassign"):
            errors[f"{where}.params.to"] = "agent, team, round_robin, least_open or unassign"
        if to == "agent" and not p.get("user_id"):
            errors[f"{where}.params.user_id"] = "pick an agent"
        if to == "team" and not p.get("team_id"):
            errors[f"{where}.params.team_id"] = "pick a team"
    elif t in ("tags", "labels"):
        _words(p, "add", where, errors)
        _words(p, "remove", where, errors)
        if not p.get("add") and not p.get("remove"):
            errors[f"{where}.params.add"] = "add or remove at least one"
    elif t == "set_attribute":
        key = p.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            errors[f"{where}.params.key"] = "an attribute key (lower case letters, digits, _)"
        if "value" not in p:
            errors[f"{where}.params.value"] = "give a value (\"\" clears it)"
    elif t == "set_status":
        if p.get("status") not in ("open", "pending", "resolved", "snoozed"):
            errors[f"{where}.params.status"] = "open, pending, resolved or snoozed"
        if p.get("status") == "snoozed":
            _int(p, "snooze_minutes", where, errors, 1, 60 * 24 * 365)
    elif t == "set_priority":
        if p.get("priority") not in PRIORITIES:
            errors[f"{where}.params.priority"] = ", ".join(PRIORITIES)
    elif t == "wait":
        ways = [k for k in ("minutes", "until_time", "attribute") if p.get(k) not in (None, "")]
        if len(ways) != 1:
            errors[f"{where}.params"] = "wait for minutes, until a time of day, or until a date attribute"
        elif ways[0] == "minutes":
            _int(p, "minutes", where, errors, 1, 60 * 24 * 90)
        elif ways[0] == "until_time":
            if not isinstance(p["until_time"], str) or not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", p["until_time"]):
                errors[f"{where}.params.until_time"] = "a time of day, HH:MM"
        else:
            if not isinstance(p["attribute"], str) or not _KEY.match(p["attribute"]):
                errors[f"{where}.params.attribute"] = "a date attribute's key"
            _int(p, "offset_minutes", where, errors, -60 * 24 * 60, 60 * 24 * 60, required=False)
    elif t == "http":
        if p.get("method", "POST") not in ("GET", "POST", "PUT", "PATCH"):
            errors[f"{where}.params.method"] = "GET, POST, PUT or PATCH"
        url = p.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 2000:
            errors[f"{where}.params.url"] = "an http(s) URL"
        save = p.get("save", {})
        if not isinstance(save, dict) or not all(isinstance(k, str) and _KEY.match(k) and isinstance(v, str)
                                                 for k, v in save.items()):
            errors[f"{where}.params.save"] = "attribute key -> JSON path (a.b.0.c)"
    elif t == "start_workflow":
        if not p.get("workflow_id"):
            errors[f"{where}.params.workflow_id"] = "pick a workflow"
    elif t == "jump":
        if not p.get("to"):
            errors[f"{where}.params.to"] = "the id of the step to go to"
    if t not in ("condition", "ask", "http") and step.branches:
        errors[f"{where}.branches"] = f"a {t} step has no branches"
    if t == "condition":
        if not step.branches:
            errors[f"{where}.branches"] = "add at least one branch"
        if sum(b.when is None for b in step.branches) > 1:
            errors[f"{where}.branches"] = "only one branch can be the \"else\" branch"
    if t in ("ask", "http"):
        wanted = "timeout" if t == "ask" else "failed"
        if any(b.label != wanted for b in step.branches) or len(step.branches) > 1:
            errors[f"{where}.branches"] = f"only a \"{wanted}\" branch"


def walk(steps: list[Step], where: str = "steps", depth: int = 0):  # type: ignore[no-untyped-def]
    """Every step with its place, depth first."""
    for i, step in enumerate(steps):
        here = f"{where}.{i}"
        yield step, here, depth
        for b, branch in enumerate(step.branches):
            yield from walk(branch.steps, f"{here}.branches.{b}.steps", depth + 1)


def check_definition(raw: dict[str, Any]) -> Definition:
    """The definition, checked as a whole; ValidationFailed (422 WORKFLOW_INVALID) naming every problem."""
    try:
        definition = Definition.model_validate(raw)
    except ValidationError as exc:
        details = {".".join(str(p) for p in e["loc"]) or "definition": e["msg"] for e in exc.errors()[:20]}
        raise ValidationFailed("The workflow has mistakes: " + "; ".join(f"{k}: {v}" for k, v in details.items()),
                               error_code="WORKFLOW_INVALID", details=details) from None
    errors: dict[str, str] = {}
    trigger = definition.trigger
    if trigger.type == "message_received":
        if trigger.match in ("keywords", "phrase", "exact") and not [k for k in trigger.keywords if k.strip()]:
            errors["trigger.keywords"] = "list the words to look for"
        if trigger.match == "regex":
            try:
                re.compile(trigger.pattern or "")
            except re.error as exc:
                errors["trigger.pattern"] = f"not a regular expression: {exc}"
            if not trigger.pattern:
                errors["trigger.pattern"] = "write the pattern"
    if trigger.type in ("no_agent_reply", "no_customer_reply") and trigger.minutes is None:
        errors["trigger.minutes"] = "after how many minutes"
    if trigger.type in ("tag_added", "tag_removed") and not (trigger.tag or "").strip():
        errors["trigger.tag"] = "which tag"
    if trigger.type == "date_reached" and not (trigger.attribute and _KEY.match(trigger.attribute)):
        errors["trigger.attribute"] = "which date attribute"
    if trigger.type == "segment_entered" and not trigger.segment_id:
        errors["trigger.segment_id"] = "which segment"
    ids: set[str] = set()
    count = 0
    for step, where, depth in walk(definition.steps):
        count += 1
        if step.id in ids:
            errors[f"{where}.id"] = "two steps have this id"
        ids.add(step.id)
        if depth >= MAX_DEPTH:
            errors[where] = f"branches nest at most {MAX_DEPTH} deep"
        _check_step(step, where, errors)
    for step, where, _ in walk(definition.steps):
        if step.type == "jump" and step.params.get("to") not in ids:
            errors[f"{where}.params.to"] = "no step has that id"
    if count > MAX_STEPS_DEFINED:
        errors["steps"] = f"at most {MAX_STEPS_DEFINED} steps"
    if errors:
        raise ValidationFailed("The workflow has mistakes: " + "; ".join(f"{k}: {v}" for k, v in
                                                                        list(errors.items())[:5]),
                               error_code="WORKFLOW_INVALID", details=errors)
    return definition


def dumped_steps(definition: Definition) -> list[dict[str, Any]]:
    return [step.model_dump(mode="json", exclude_none=True) for step in definition.steps]


def locate(steps: list[dict[str, Any]], cursor: list[int]) -> dict[str, Any] | None:
    """The step at ``cursor`` ([i] or [i, branch, j, ...]); None past the end of its list."""
    items = steps
    step: dict[str, Any] | None = None
    for level, index in enumerate(cursor):
        if level % 2 == 0:
            if not 0 <= index < len(items):
                return None
            step = items[index]
        else:
            assert step is not None
            branches = step.get("branches", [])
            if not 0 <= index < len(branches):
                return None
            items = branches[index].get("steps", [])
    return step


def next_cursor(steps: list[dict[str, Any]], cursor: list[int]) -> list[int] | None:
    """The step after ``cursor``: the next in its list, else the step after the branching step that holds it;
    None at the end of the workflow."""
    here = list(cursor)
    while here:
        candidate = [*here[:-1], here[-1] + 1]
        if locate(steps, candidate) is not None:
            return candidate
        here = here[:-2]  # leave the branch: the loop then tries the step after the one that branched
    return None


def into_branch(steps: list[dict[str, Any]], cursor: list[int], branch: int) -> list[int] | None:
    """The first step of branch ``branch`` of the step at ``cursor``; an empty branch goes on after the step."""
    inside = [*cursor, branch, 0]
    return inside if locate(steps, inside) is not None else next_cursor(steps, cursor)


def find_step(steps: list[dict[str, Any]], step_id: str, prefix: list[int] | None = None) -> list[int] | None:
    """The cursor of the step with id ``step_id``."""
    for i, step in enumerate(steps):
        here = [*(prefix or []), i]
        if step.get("id") == step_id:
            return here
        for b, branch in enumerate(step.get("branches", [])):
            found = find_step(branch.get("steps", []), step_id, [*here, b])
            if found is not None:
                return found
    return None
