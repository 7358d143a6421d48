"""The dry run: what a workflow would do for a given contact and message, without doing any of it.

Conditions and branches are tested on the real contact (a copy: tags and attributes the steps would
set are set on the copy, so later branches see them); questions take the given answers in order
(none left: the timeout branch); waits are described and passed; nothing is sent, written or called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.domains.contacts.models import Contact
from app.domains.conversations.models import Conversation
from app.domains.workflows.answers import check_answer
from app.domains.workflows.conditions import fill, holds
from app.domains.workflows.definition import (
    Definition,
    dumped_steps,
    find_step,
    into_branch,
    locate,
    next_cursor,
    walk,
)
from app.domains.workflows.triggers import matches

if TYPE_CHECKING:
    from app.domains.workflows.engine import WorkflowEngine

MAX_LINES = 100


async def dry_run(engine: WorkflowEngine, definition: Definition, contact: Contact, conversation: Conversation | None,
                  text: str | None, answers: list[str]) -> dict[str, Any]:
    trigger = definition.trigger.model_dump(mode="json")
    copy = contact.model_copy(deep=True)
    facts = await engine.facts(contact.workspace_id, copy, conversation, text, {})
    result: dict[str, Any] = {"trigger_matches": True, "conditions_hold": True, "steps": []}
    if trigger["type"] == "message_received":
        result["trigger_matches"] = matches(trigger, text or "")
    result["conditions_hold"] = await holds(facts, definition.conditions.model_dump(mode="json"))
    lines: list[dict[str, Any]] = result["steps"]

    def say(step: dict[str, Any] | None, words: str, outcome: str = "done") -> None:
        lines.append({"step_id": step.get("id") if step else None, "type": step.get("type") if step else "end",
                      "outcome": outcome, "text": words})

    if not result["trigger_matches"] or not result["conditions_hold"]:
        say(None, "would not start: " + ("the message does not match the trigger" if not result["trigger_matches"]
                                         else "the conditions do not hold"), "skipped")
        return result
    steps = dumped_steps(definition)
    cursor: list[int] | None = [0]
    # A customer's message opens the 24-hour window: a message trigger with a text is taken as having written.
    wrote = trigger["type"] == "message_received" and bool(text)
    window_open = wrote or (conversation.window_open() if conversation is not None else False)
    free_form = any(step.type in ("send_text", "send_media", "send_buttons", "ask") for step, _, _ in walk(definition.steps))
    if wrote and free_form and not (conversation is not None and conversation.window_open()):
        say(None, "the customer's message opens the 24-hour window: free-form messages can be sent", "info")
    while cursor is not None and len(lines) < MAX_LINES:
        step = locate(steps, cursor)
        if step is None:
            break
        p = step.get("params", {})
        kind = step["type"]
        nxt = next_cursor(steps, cursor)
        if kind in ("send_text", "send_media", "send_buttons", "ask") and not window_open:
            say(step, "would fail: the 24-hour window is closed, only a template can be sent", "failed")
            return result
        if kind == "send_text":
            say(step, f"would send “{fill(p['text'], facts)}”")
        elif kind == "send_buttons":
            say(step, f"would send “{fill(p['text'], facts)}” with buttons {', '.join(p['buttons'])}")
        elif kind == "send_media":
            say(step, f"would send {p['kind']} {p['link']}")
        elif kind == "send_template":
            values = [fill(v, facts) for v in p.get("params", [])]
            say(step, f"would send template {p['name']} ({p['language']})" +
                (f" with {', '.join(values)}" if values else ""))
        elif kind == "ask":
            say(step, f"would ask “{fill(p['question'], facts)}” and wait", "waiting")
            if answers:
                answer = answers.pop(0)
                value, problem = check_answer(answer, p.get("answer_type", "text"), p.get("choices") or p.get("buttons"))
                if problem is None:
                    facts.vars["answer"] = value
                    if p.get("save_as"):
                        copy.attributes = {**copy.attributes, p["save_as"]: value}
                    say(step, f"answer “{answer}” accepted")
                else:
                    say(step, f"answer “{answer}” refused ({problem})", "skipped")
                    nxt = into_branch(steps, cursor, 0) if step.get("branches") else nxt
            else:
                say(step, "no answer given: " + ("the timeout branch" if step.get("branches") else "goes on"), "info")
                nxt = into_branch(steps, cursor, 0) if step.get("branches") else nxt
        elif kind == "condition":
            chosen = None
            for i, branch in enumerate(step.get("branches", [])):
                if branch.get("when") is not None and await holds(facts, branch["when"]):
                    chosen = i
                    break
            if chosen is None:
                chosen = next((i for i, b in enumerate(step.get("branches", [])) if b.get("when") is None), None)
            if chosen is None:
                say(step, "no branch matches: goes on")
            else:
                say(step, f"takes branch “{step['branches'][chosen].get('label') or chosen + 1}”")
                nxt = into_branch(steps, cursor, chosen)
        elif kind == "tags":
            remove = {t.casefold() for t in p.get("remove", [])}
            copy.tags = [t for t in copy.tags if t.casefold() not in remove] + [
                t for t in p.get("add", []) if t.casefold() not in {x.casefold() for x in copy.tags}]
            say(step, "would change tags: now " + (", ".join(copy.tags) or "none"))
        elif kind == "set_attribute":
            copy.attributes = {**copy.attributes, p["key"]: fill(p["value"], facts) if isinstance(p["value"], str)
                               else p["value"]}
            say(step, f"would set {p['key']} to “{copy.attributes[p['key']]}”")
        elif kind == "wait":
            how = (f"{p['minutes']} minutes" if p.get("minutes") else f"until {p['until_time']}" if p.get("until_time")
                   else f"until {p['attribute']} {int(p.get('offset_minutes') or 0):+d} min")
            say(step, f"would wait {how}" + (" (ends if the customer replies)" if p.get("end_on_reply") else ""),
                "waiting")
        elif kind == "jump":
            say(step, f"would jump to step {p['to']}")
            nxt = find_step(steps, str(p["to"]))
        elif kind == "stop":
            say(step, "would stop here")
            return result
        else:
            say(step, _describe(kind, p, facts))
        cursor = nxt
    if len(lines) >= MAX_LINES:
        say(None, f"stopped the dry run after {MAX_LINES} steps: does a jump loop?", "failed")
    else:
        say(None, "would end: all steps done", "info")
    return result


def _describe(kind: str, p: dict[str, Any], facts: Any) -> str:
    if kind == "assign":
        return {"agent": "would assign to the chosen agent", "team": "would move to the chosen team",
                "unassign": "would unassign", "round_robin": "would assign in turn to an online agent",
                "least_open": "would assign to the online agent with the fewest open conversations"}[p["to"]]
    if kind == "labels":
        return "would change labels: " + "; ".join(x for x in (
            "add " + ", ".join(p.get("add", [])) if p.get("add") else "",
            "remove " + ", ".join(p.get("remove", [])) if p.get("remove") else "") if x)
    if kind == "set_priority":
        return f"would set the priority to {p['priority']}"
    if kind == "set_status":
        return f"would set the conversation {p['status']}"
    if kind == "note":
        return f"would add the note “{fill(p['text'], facts)}”"
    if kind == "notify":
        return f"would notify {'the chosen agents' if p.get('user_ids') else 'the assignee'}: “{fill(p['text'], facts)}”"
    if kind == "http":
        return f"would call {p.get('method', 'POST')} {p['url']} (not called in a dry run)"
    if kind == "start_workflow":
        return "would start another workflow"
    return f"would {kind}"
