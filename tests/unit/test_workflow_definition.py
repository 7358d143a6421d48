"""The workflow definition's checks, its cursor arithmetic, conditions and placeholders (pure functions)."""

from __future__ import annotations

import pytest
from beanie import PydanticObjectId

from app.domains.contacts.models import Contact
from app.domains.workflows.conditions import Facts, fill, has_word
from app.domains.workflows.conditions import test as compare
from app.domains.workflows.definition import check_definition, find_step, into_branch, locate, next_cursor
from app.errors import ValidationFailed

STEPS = [{"id": "a", "type": "note"},
         {"id": "b", "type": "condition", "branches": [{"steps": [{"id": "c"}, {"id": "d"}]}, {"steps": []}]},
         {"id": "e", "type": "note"}]


def test_the_cursor_walks_into_branches_and_back_out():
    assert next_cursor(STEPS, [0]) == [1]
    assert into_branch(STEPS, [1], 0) == [1, 0, 0]
    assert next_cursor(STEPS, [1, 0, 0]) == [1, 0, 1]
    assert next_cursor(STEPS, [1, 0, 1]) == [2]  # the branch ends: the step after the condition
    assert into_branch(STEPS, [1], 1) == [2]  # an empty branch goes straight on
    assert next_cursor(STEPS, [2]) is None
    assert locate(STEPS, [1, 0, 1])["id"] == "d" and find_step(STEPS, "d") == [1, 0, 1]


def test_mistakes_are_named_by_their_place():
    with pytest.raises(ValidationFailed) as refused:
        check_definition({"name": "x", "trigger": {"type": "message_received", "match": "keywords"},
                          "steps": [{"id": "s", "type": "condition", "branches": [
                              {"when": None, "steps": [{"id": "t", "type": "send_text", "params": {}}]}]},
                              {"id": "j", "type": "jump", "params": {"to": "nowhere"}}]})
    details = refused.value.details
    assert refused.value.error_code == "WORKFLOW_INVALID"
    assert details["trigger.keywords"] == "list the words to look for"
    assert details["steps.0.branches.0.steps.0.params.text"] == "write something"
    assert details["steps.1.params.to"] == "no step has that id"


def test_words_match_whole_words_and_vars_follow_dotted_paths():
    assert has_word("This is URGENT!", ["urgent"]) and not has_word("urgently", ["urgent"])
    assert has_word("I want a refund now", ["a refund"])
    assert compare("gt", "6", 4) and not compare("gt", "lots", 4) and compare("is", True, "yes")
    contact = Contact.model_construct(workspace_id=PydanticObjectId(), key="k", name="Ana", profile_name="",
                                      phone=None, wa_id=None, attributes={"city": "Porto"}, tags=[])
    facts = Facts(workspace_id=contact.workspace_id, contact=contact, vars={"webhook": {"order": "A-1"}})
    assert fill("{{contact.name}} in {{attributes.city}}: {{vars.webhook.order}} {{vars.missing}}", facts) == \
        "Ana in Porto: A-1 "
