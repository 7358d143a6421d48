"""What each step does, through the services people use (outbox, conversation actions, contact edits).

A step gets the run, its facts and a key unique to this visit of this step in this run
(``wf:<run>:<step>:<visit>``). Everything it does is safe to do again with the same key, because a
worker killed between the deed and the cursor's move does it again: messages carry the key as
their idempotency key (the messages' unique index), notes and events are looked up by it, tag /
label / attribute / status changes set a value (a second time changes nothing), and an HTTP request
sends it as ``Idempotency-Key``. Round-robin assignment only assigns a conversation nobody holds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from app.db import as_utc, parse_object_id, utcnow
from app.domains.assignment.models import AssignmentMethod, AssignmentRule
from app.domains.contacts.editing import clean_tags
from app.domains.conversations.actions import clean_labels
from app.domains.messages.models import Message
from app.domains.outbox.service import Draft
from app.domains.subscriptions.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from app.domains.workflows.answers import check_answer
from app.domains.workflows.conditions import Facts, fill, holds
from app.domains.workflows.definition import find_step, into_branch, next_cursor
from app.domains.workflows.models import Waiting, WorkflowRun
from app.errors import AppError
from app.logging import get_logger

if TYPE_CHECKING:
    from app.domains.workflows.engine import Tools

log = get_logger(__name__)

MAX_HTTP_BODY = 64 * 1024


@dataclass
class Outcome:
    """What a step did and where the run goes next."""

    text: str
    cursor: list[int] | None = None
    """The next step (None: the workflow is done)."""
    waiting: Waiting | None = None
    wake_at: datetime | None = None
    end: str | None = None
    """completed / stopped / failed: the run ends here."""
    outcome: str = "done"
    vars: dict[str, Any] | None = None
    start: tuple[str, int] | None = None
    """start_workflow: (workflow id, depth)."""


class Failed(Exception):
    """The step could not be done: the run fails, saying why (shown in its log and the conversation)."""


class StepRunner:
    def __init__(self, tools: Tools) -> None:
        self.t = tools

    async def run(self, run: WorkflowRun, step: dict[str, Any], facts: Facts, key: str) -> Outcome:
        handler = getattr(self, "_" + step["type"])
        try:
            outcome: Outcome = await handler(run, step, step.get("params", {}), facts, key)
        except AppError as exc:
            raise Failed(exc.message) from None
        return outcome

    def _after(self, run: WorkflowRun, text: str, **more: Any) -> Outcome:
        return Outcome(text, cursor=next_cursor(run.steps, run.cursor), **more)

    # -- sending ---------------------------------------------------------------------------------
    async def _send(self, run: WorkflowRun, facts: Facts, draft: Draft, key: str) -> Message:
        conversation = await self.t.conversation_for(run, facts)
        if not await self.t.within_rate(run, key):
            raise Failed(f"not sent: this workflow already sent {self.t.limit_of(run)} messages to the contact "
                         "in the last hour")
        message = await self.t.outbox.send(run.workspace_id, conversation, draft, via="automation",
                                           idempotency_key=key, contact=facts.contact,
                                           automation={"workflow_id": str(run.workflow_id),
                                                       "name": run.workflow_name, "run_id": str(run.id)})
        return message

    async def _send_text(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                         key: str) -> Outcome:
        text = fill(p["text"], facts)
        await self._send(run, facts, Draft("text", {"body": text}), key)
        return self._after(run, f"sent “{_short(text)}”")

    async def _send_media(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                          key: str) -> Outcome:
        content: dict[str, Any] = {"link": p["link"]}
        if p.get("caption") and p["kind"] != "audio":
            content["caption"] = fill(p["caption"], facts)
        await self._send(run, facts, Draft(p["kind"], content), key)
        return self._after(run, f"sent {p['kind']} {p['link']}")

    @staticmethod
    def _buttons(text: str, titles: list[str]) -> Draft:
        return Draft("interactive", {"type": "button", "body": {"text": text}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": f"b{i}", "title": title[:20]}} for i, title in enumerate(titles)]}})

    async def _send_buttons(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                            key: str) -> Outcome:
        text = fill(p["text"], facts)
        await self._send(run, facts, self._buttons(text, p["buttons"]), key)
        return self._after(run, f"sent “{_short(text)}” with buttons {', '.join(p['buttons'])}")

    async def _send_template(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                             key: str) -> Outcome:
        values = [fill(v, facts) for v in p.get("params", [])]
        content: dict[str, Any] = {"name": p["name"], "language": {"code": p["language"]}}
        if values:
            content["components"] = [{"type": "body", "parameters": [{"type": "text", "text": v} for v in values]}]
        await self._send(run, facts, Draft("template", content), key)
        return self._after(run, f"sent template {p['name']} ({p['language']})")

    # -- questions -------------------------------------------------------------------------------
    async def _ask(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                   key: str) -> Outcome:
        waiting = run.waiting if run.waiting is not None and run.waiting.step_id == step["id"] else None
        timeout = timedelta(minutes=int(p.get("timeout_minutes") or 60 * 24))
        if waiting is None:  # first visit: ask, then wait for the answer
            question = fill(p["question"], facts)
            draft = self._buttons(question, p["buttons"]) if p.get("buttons") else Draft("text", {"body": question})
            await self._send(run, facts, draft, key)
            until = utcnow() + timeout
            return Outcome(f"asked “{_short(question)}”, waiting for the answer until {until:%Y-%m-%d %H:%M} UTC",
                           cursor=run.cursor, waiting=Waiting(step_id=step["id"], kind="reply", until=until),
                           wake_at=until, outcome="waiting")
        if run.reply is None:  # woken by the timeout
            branch = 0 if step.get("branches") else None
            cursor = into_branch(run.steps, run.cursor, 0) if branch is not None else next_cursor(run.steps, run.cursor)
            return Outcome("no answer in time" + (": timeout branch" if branch is not None else ""), cursor=cursor,
                           outcome="info")
        answer_text = str(run.reply.get("text") or "")
        value, problem = check_answer(answer_text, p.get("answer_type", "text"), p.get("choices") or p.get("buttons"))
        if problem is None and p.get("save_as"):
            try:
                await self.t.editing.set_attribute(facts.contact, p["save_as"], value)
            except AppError as exc:
                problem = exc.message
        if problem is not None:
            if waiting.tries >= int(p.get("retries", 1)):
                branch = 0 if step.get("branches") else None
                cursor = into_branch(run.steps, run.cursor, 0) if branch is not None else next_cursor(
                    run.steps, run.cursor)
                return Outcome(f"answer “{_short(answer_text)}” refused ({problem}); no tries left", cursor=cursor,
                               vars={"answer": answer_text}, outcome="info")
            retry = fill(p.get("retry_text") or f"Sorry, I didn't get that: {problem}. {p['question']}", facts)
            await self._send(run, facts, Draft("text", {"body": retry}), f"{key}:retry{waiting.tries + 1}")
            until = utcnow() + timeout
            return Outcome(f"answer “{_short(answer_text)}” refused ({problem}); asked again", cursor=run.cursor,
                           waiting=Waiting(step_id=step["id"], kind="reply", until=until, tries=waiting.tries + 1),
                           wake_at=until, outcome="waiting")
        saved = {"answer": value if not isinstance(value, datetime) else value.isoformat()}
        if p.get("save_as"):
            saved[p["save_as"]] = saved["answer"]
        where = f", saved as {p['save_as']}" if p.get("save_as") else ""
        return self._after(run, f"answer “{_short(answer_text)}”{where}", vars=saved)

    # -- branching and flow ----------------------------------------------------------------------
    async def _condition(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                         key: str) -> Outcome:
        branches = step.get("branches", [])
        for i, branch in enumerate(branches):
            if branch.get("when") is not None and await holds(facts, branch["when"]):
                return Outcome(f"branch “{branch.get('label') or i + 1}”", cursor=into_branch(run.steps, run.cursor, i))
        for i, branch in enumerate(branches):
            if branch.get("when") is None:
                return Outcome(f"branch “{branch.get('label') or 'else'}”",
                               cursor=into_branch(run.steps, run.cursor, i))
        return self._after(run, "no branch matched")

    async def _jump(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                    key: str) -> Outcome:
        target = find_step(run.steps, str(p.get("to")))
        if target is None:
            raise Failed(f"no step {p.get('to')} to jump to")
        return Outcome(f"jumped to step {p['to']}", cursor=target)

    async def _stop(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                    key: str) -> Outcome:
        return Outcome("stopped by the workflow", end="completed")

    async def _start_workflow(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                              key: str) -> Outcome:
        return self._after(run, "starting another workflow", start=(str(p["workflow_id"]), run.depth + 1))

    async def _wait(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                    key: str) -> Outcome:
        waiting = run.waiting if run.waiting is not None and run.waiting.step_id == step["id"] else None
        now = utcnow()
        until = await self._wait_until(p, facts, waiting, now)
        if until is None or until <= now:
            return self._after(run, "waited" if waiting is not None else "nothing to wait for")
        return Outcome(f"waiting until {until:%Y-%m-%d %H:%M} UTC" + (" (ends if the customer replies)"
                                                                     if p.get("end_on_reply") else ""),
                       cursor=run.cursor, outcome="waiting", wake_at=until,
                       waiting=Waiting(step_id=step["id"], kind="until_reply" if p.get("end_on_reply") else "time",
                                       until=until, end_on_reply=bool(p.get("end_on_reply"))))

    async def _wait_until(self, p: dict[str, Any], facts: Facts, waiting: Waiting | None,
                          now: datetime) -> datetime | None:
        if p.get("minutes"):
            return as_utc(waiting.until) if waiting is not None and waiting.until else now + timedelta(
                minutes=int(p["minutes"]))
        if p.get("until_time"):
            if waiting is not None and waiting.until:
                return as_utc(waiting.until)
            zone = ZoneInfo(await self.t.time_zone(facts.workspace_id))
            local = now.astimezone(zone)
            hour, minute = (int(x) for x in p["until_time"].split(":"))
            target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if target <= local:
                target += timedelta(days=1)
            return as_utc(target)
        moment = facts.value(f"attributes.{p['attribute']}")  # read again on each wake: a moved date moves the wait
        if not isinstance(moment, datetime):
            return None
        return as_utc(moment) + timedelta(minutes=int(p.get("offset_minutes") or 0))

    # -- conversation and contact ----------------------------------------------------------------
    async def _assign(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                      key: str) -> Outcome:
        conversation = await self.t.conversation_for(run, facts)
        to = p["to"]
        if to == "team":
            team = await self.t.actions.team(run.workspace_id, p["team_id"])
            await self.t.actions.assign_team(conversation, team_id=team.id, team_name=team.name, by=None)
            return self._after(run, f"moved to team {team.name}")
        if to == "unassign":
            await self.t.actions.assign(conversation, assignee_id=None, by=None)
            return self._after(run, "unassigned")
        if to == "agent":
            await self.t.actions.assign(conversation, assignee_id=p["user_id"], by=None,
                                        rule_name=f"workflow {run.workflow_name}")
            return self._after(run, "assigned to the chosen agent")
        if conversation.assignee_id is not None:
            return self._after(run, "already assigned: left as it is", outcome="skipped")
        rule = AssignmentRule(workspace_id=run.workspace_id, name=f"workflow {run.workflow_name}",
                              method=AssignmentMethod(to), team_id=parse_object_id(p.get("team_id")))
        rule.id = run.workflow_id  # one round-robin pointer per workflow
        agent = await self.t.assigner.pick(rule, conversation)
        if agent is None:
            return self._after(run, "nobody online to assign to", outcome="skipped")
        await self.t.actions.assign(conversation, assignee_id=agent.id, by=None, only_if_unassigned=True,
                                    rule_name=f"workflow {run.workflow_name}")
        return self._after(run, f"assigned to {agent.name or agent.email}")

    async def _tags(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                    key: str) -> Outcome:
        remove = {t.casefold() for t in clean_tags(p.get("remove", []))}
        tags = [t for t in facts.contact.tags if t.casefold() not in remove]
        tags += [t for t in clean_tags(p.get("add", [])) if t.casefold() not in {x.casefold() for x in tags}]
        await self.t.editing.set_tags(facts.contact, tags)
        return self._after(run, _changes("tag", p))

    async def _labels(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                      key: str) -> Outcome:
        conversation = await self.t.conversation_for(run, facts)
        remove = set(clean_labels(p.get("remove", [])))
        labels = [x for x in conversation.labels if x not in remove]
        labels += [x for x in clean_labels(p.get("add", [])) if x not in labels]
        await self.t.actions.set_labels(conversation, labels, by=None)
        return self._after(run, _changes("label", p))

    async def _set_attribute(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                             key: str) -> Outcome:
        value = fill(p["value"], facts) if isinstance(p["value"], str) else p["value"]
        await self.t.editing.set_attribute(facts.contact, p["key"], value)
        return self._after(run, f"set {p['key']} to “{_short(str(value))}”")

    async def _set_status(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                          key: str) -> Outcome:
        conversation = await self.t.conversation_for(run, facts)
        if p["status"] == "snoozed":
            until = as_utc(run.updated_at) + timedelta(minutes=int(p["snooze_minutes"]))
            await self.t.actions.snooze(conversation, max(until, utcnow() + timedelta(seconds=5)), by=None)
            return self._after(run, f"snoozed until {until:%Y-%m-%d %H:%M} UTC")
        await self.t.actions.set_status(conversation, p["status"], by=None)
        return self._after(run, f"status set to {p['status']}")

    async def _set_priority(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                            key: str) -> Outcome:
        conversation = await self.t.conversation_for(run, facts)
        await self.t.actions.set_priority(conversation, p["priority"], by=None,
                                          by_name=f"Workflow {run.workflow_name}")
        return self._after(run, f"priority set to {p['priority']}")

    async def _note(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                    key: str) -> Outcome:
        conversation = await self.t.conversation_for(run, facts)
        text = fill(p["text"], facts)
        await self.t.note_once(conversation, f"{text}\n— workflow {run.workflow_name}", key)
        return self._after(run, f"note “{_short(text)}”")

    async def _notify(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                      key: str) -> Outcome:
        conversation = await self.t.conversation_for(run, facts)
        names = await self.t.names_to_notify(conversation, [str(u) for u in p.get("user_ids", [])])
        text = fill(p["text"], facts)
        mentions = " ".join(f"@{name}" for name in names)
        await self.t.note_once(conversation, f"{mentions} {text}".strip() + f"\n— workflow {run.workflow_name}",
                               key)
        return self._after(run, f"notified {', '.join(names) or 'nobody (no assignee)'}")

    # -- outside calls ---------------------------------------------------------------------------
    async def _http(self, run: WorkflowRun, step: dict[str, Any], p: dict[str, Any], facts: Facts,
                    key: str) -> Outcome:
        method = p.get("method", "POST")
        body = {"workflow": {"id": str(run.workflow_id), "name": run.workflow_name, "run_id": str(run.id)},
                "contact": {"id": str(facts.contact.id), "name": facts.contact.display_name,
                            "phone": facts.contact.phone, "attributes": _plain(facts.contact.attributes),
                            "tags": facts.contact.tags},
                "conversation_id": str(run.conversation_id) if run.conversation_id else None,
                "vars": _plain(run.vars)}
        if isinstance(p.get("body"), str) and p["body"].strip():
            body["data"] = fill(p["body"], facts)
        raw = json.dumps(body, separators=(",", ":"), default=str).encode()
        stamp = int(time.time())
        headers = {"Content-Type": "application/json", "Idempotency-Key": key,
                   TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(await self.t.signing_secret(run), stamp, raw)}
        problem: str | None = None
        saved: dict[str, Any] = {}
        try:
            response = await self.t.http.request(method, fill(p["url"], facts), content=None if method == "GET"
                                                 else raw, headers=headers)
            if response.status_code >= 300:
                problem = f"answered HTTP {response.status_code}"
            elif p.get("save"):
                data = json.loads(response.content[:MAX_HTTP_BODY] or b"null")
                for attribute, path in p["save"].items():
                    value = _path(data, path)
                    if value is not None:
                        await self.t.editing.set_attribute(facts.contact, attribute, value)
                        saved[attribute] = value
        except AppError as exc:
            problem = exc.message
        except ValueError:
            problem = "answered something that is not JSON"
        except Exception as exc:  # noqa: BLE001 - refused by the SSRF guard, timed out, connection refused ...
            problem = f"not reached ({type(exc).__name__})"
        if problem is not None:
            if step.get("branches"):
                return Outcome(f"{method} {p['url']}: {problem}; failed branch", outcome="info",
                               cursor=into_branch(run.steps, run.cursor, 0))
            raise Failed(f"{method} {p['url']}: {problem}")
        what = f", saved {', '.join(saved)}" if saved else ""
        return self._after(run, f"{method} {p['url']}: done{what}", vars={f"http_{k}": v for k, v in saved.items()})


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _changes(kind: str, p: dict[str, Any]) -> str:
    parts = []
    if p.get("add"):
        parts.append(f"added {kind} " + ", ".join(p["add"]))
    if p.get("remove"):
        parts.append(f"removed {kind} " + ", ".join(p["remove"]))
    return "; ".join(parts)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()}


def _path(data: Any, path: str) -> Any:
    """``a.b.0.c`` in a JSON value (None when missing); only scalars are kept."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data if isinstance(data, str | int | float | bool) else None

