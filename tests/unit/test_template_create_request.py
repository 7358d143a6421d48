"""The create body's two shapes become one TemplateDraft; whatever JSON comes in, the only failure is a
ValidationFailed naming request paths (issue 15 item 7)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domains.templates.create_request import template_draft
from app.domains.templates.drafts import TemplateDraft
from app.errors import ValidationFailed
from tests.integration.test_api_templates_meta_shape import AUTH_CODE, LUCKY_SHRUB, SEASONAL, TUSCAN

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    max_leaves=12)


def _definition(body: Any) -> dict[str, Any] | dict[str, str]:
    """Meta's create body, or the error details keyed by the request's paths."""
    try:
        draft, paths = template_draft(body)
    except ValidationFailed as error:
        assert error.error_code == "TEMPLATE_INVALID"
        return {"details": error.details}
    try:
        return draft.definition()
    except ValidationFailed as error:  # the API points these the same way (api.py)
        assert error.error_code == "TEMPLATE_INVALID"
        return {"details": paths.point(error).details}


def _paths(value: Any, path: str = "") -> list[str]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, f"{path}[{index}]")
    return out


def _replace(body: Any, path: str, new: Any) -> Any:
    """``body`` with the value at ``path`` (as _paths writes it) replaced by ``new``."""
    if not path:
        return new
    body = copy.deepcopy(body)
    parts: list[Any] = []
    for chunk in path.replace("]", "").replace("[", ".[").split("."):
        parts.append(int(chunk[1:]) if chunk.startswith("[") else chunk)
    target = body
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = new
    return body


def test_metas_examples_come_out_as_meta_wrote_them():
    for example in (SEASONAL, AUTH_CODE):
        definition = _definition(example)
        assert definition["components"] == example["components"], definition


def test_both_shapes_make_the_same_draft():
    ours = {"name": "order_update", "language": "en_US", "category": "UTILITY",
            "header": {"format": "TEXT", "text": "Order {{1}}", "example": "#1042"},
            "body": "Hi {{1}}, your order {{2}} has shipped.", "body_examples": ["Ana", "#1042"], "footer": "Thanks",
            "buttons": [{"type": "URL", "text": "Track", "url": "https://shop.example/t/{{1}}", "example": "1042"},
                        {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550100002"}]}
    metas = {"template_name": "order_update", "language_code": "en_US", "category": "utility", "components": [
        {"type": "header", "format": "text", "text": "Order {{1}}", "example": {"header_text": ["#1042"]}},
        {"type": "body", "text": "Hi {{1}}, your order {{2}} has shipped.", "example": {"body_text": [["Ana", "#1042"]]}},
        {"type": "footer", "text": "Thanks"},
        {"type": "buttons", "buttons": [
            {"type": "url", "text": "Track", "url": "https://shop.example/t/{{1}}",
             "example": ["https://shop.example/t/1042"]},
            {"type": "phone_number", "text": "Call us", "phone_number": "15550100002"}]}]}
    assert _definition(ours) == _definition(metas)
    draft, _ = template_draft(metas)
    assert isinstance(draft, TemplateDraft) and draft.buttons[0].example == "1042"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=JSON)
def test_any_json_is_a_draft_or_a_validation_error(body):
    _definition(body)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), example=st.sampled_from([SEASONAL, TUSCAN, LUCKY_SHRUB, AUTH_CODE]), new=JSON)
def test_any_part_of_metas_examples_replaced_by_any_json(data, example, new):
    path = data.draw(st.sampled_from(_paths(example)[1:]))  # the whole body: the test above
    result = _definition(_replace(example, path, new))
    if "details" in result:  # every error names a request path, not one of the draft's own keys
        assert all(not key.startswith(("body.", "header.", "buttons")) for key in result["details"]), result


def test_a_copy_code_button_in_metas_shape():
    body = copy.deepcopy(SEASONAL)
    body["components"][3]["buttons"] = [{"type": "copy_code", "example": "25OFF"},
                                        {"type": "url", "text": "Shop", "url": "https://shop.example/{{1}}",
                                         "example": ["https://shop.example/summer"]}]
    buttons = _definition(body)["components"][3]["buttons"]
    assert buttons == [{"type": "COPY_CODE", "example": "25OFF"},
                       {"type": "URL", "text": "Shop", "url": "https://shop.example/{{1}}",
                        "example": ["https://shop.example/summer"]}]
    body["category"] = "UTILITY"
    assert _definition(body)["details"] == {
        "components[3].buttons[0].type": "Copy-code buttons are for marketing templates only."}
