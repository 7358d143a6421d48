"""Template placeholders and parameter checks against a template definition."""

from __future__ import annotations

import pytest

from app.whatsapp import payloads
from app.whatsapp.payloads import PayloadError, build_message
from app.whatsapp.templates import (
    ButtonSlot,
    placeholders_in,
    template_placeholders,
    text_parameters,
)

TO = "+16505551234"

POSITIONAL = {
    "name": "order_update",
    "language": "en_US",
    "status": "APPROVED",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "BODY", "text": "Hi {{1}}, order {{2}} ships {{3}}. Thanks {{1}}!"},
        {"type": "FOOTER", "text": "Lucky Shrub"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}"},
                {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550783881"},
                {"type": "URL", "text": "Site", "url": "https://shop.example"},
            ],
        },
    ],
}

NAMED = {
    "name": "welcome",
    "language": "en",
    "parameter_format": "NAMED",
    "components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW..."]}},
        {"type": "BODY", "text": "Welcome {{first_name}}! Your code is {{code}}."},
        {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "SAVE10"}]},
    ],
}


def test_placeholders_in_text():
    assert placeholders_in("Hi {{2}} and {{1}} and {{ 2 }}") == ("1", "2")
    assert placeholders_in("Hi {{name}}, {{order_id}} {{name}}") == ("name", "order_id")
    assert placeholders_in(None) == ()
    assert placeholders_in("no variables") == ()


def test_placeholders_of_a_positional_definition():
    found = template_placeholders(POSITIONAL)
    assert found.parameter_format == "POSITIONAL"
    assert found.header_format == "TEXT"
    assert found.header == ("1",)
    assert found.body == ("1", "2", "3")
    assert found.buttons == {
        0: ButtonSlot(0, "QUICK_REPLY"),
        1: ButtonSlot(1, "URL", ("1",)),
        2: ButtonSlot(2, "PHONE_NUMBER"),
        3: ButtonSlot(3, "URL"),
    }
    assert [slot.required_parameter_type for slot in found.buttons.values()] == [None, "text", None, None]


def test_placeholders_of_a_named_definition():
    found = template_placeholders(NAMED)
    assert found.parameter_format == "NAMED"
    assert found.header_format == "IMAGE" and found.header == ()
    assert found.body == ("first_name", "code")
    assert found.buttons[0].required_parameter_type == "coupon_code"


def test_named_format_is_inferred_when_not_declared():
    definition = {"components": [{"type": "BODY", "text": "Hi {{first_name}}"}]}
    assert template_placeholders(definition).parameter_format == "NAMED"
    assert template_placeholders({"components": []}).parameter_format == "POSITIONAL"


def test_text_parameters():
    assert text_parameters(["a", "b"]) == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert text_parameters({"first_name": "Ana"}) == [{"type": "text", "parameter_name": "first_name", "text": "Ana"}]


def positional_components(body_values=("Ana", "A-1", "today"), header_values=("A-1",), url_suffix="A-1"):
    components = [
        {"type": "header", "parameters": text_parameters(list(header_values))},
        {"type": "body", "parameters": text_parameters(list(body_values))},
    ]
    if url_suffix is not None:
        components.append(
            {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": url_suffix}]}
        )
    return components


def named_components(body=None, header_type="image", coupon=True):
    components = [
        {"type": "header", "parameters": [{"type": header_type, header_type: {"link": "https://x.example/a.jpg"}}]},
        {
            "type": "body",
            "parameters": text_parameters(body if body is not None else {"first_name": "Ana", "code": "X"}),
        },
    ]
    if coupon:
        components.append(
            {
                "type": "button",
                "sub_type": "copy_code",
                "index": 0,
                "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}],
            }
        )
    return components


def test_valid_positional_send_passes_with_exact_body():
    components = positional_components()
    body = payloads.template(TO, "order_update", "en_US", components, definition=POSITIONAL)
    assert body["template"] == {"name": "order_update", "language": {"code": "en_US"}, "components": components}


def test_valid_named_send_passes():
    payloads.template(TO, "welcome", "en", named_components(), definition=NAMED)


def test_optional_quick_reply_payload_is_allowed():
    components = positional_components() + [
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": "STOP"}],
        }
    ]
    payloads.template(TO, "order_update", "en_US", components, definition=POSITIONAL)


def test_currency_and_date_time_fill_body_placeholders():
    body = [
        {"type": "currency", "currency": {"fallback_value": "$1", "code": "USD", "amount_1000": 1000}},
        {"type": "date_time", "date_time": {"fallback_value": "today"}},
        {"type": "text", "text": "x"},
    ]
    components = positional_components()
    components[1] = {"type": "body", "parameters": body}
    payloads.template(TO, "order_update", "en_US", components, definition=POSITIONAL)


@pytest.mark.parametrize(
    ("components", "field", "message_part"),
    [
        (positional_components(body_values=("Ana", "A-1")), "template.components[1].parameters", "needs 3"),
        (
            positional_components(body_values=("Ana", "A-1", "today", "extra")),
            "template.components[1].parameters",
            "got 4",
        ),
        (positional_components(header_values=()), "template.components[0].parameters", "needs 1"),
        (positional_components()[1:], "template.components", "header needs 1"),
        (positional_components(url_suffix=None), "template.components", "button 1 needs 1"),
        (
            positional_components()
            + [{"type": "button", "sub_type": "url", "index": "3", "parameters": [{"type": "text", "text": "x"}]}],
            "template.components[3]",
            "takes no parameters",
        ),
        (
            positional_components()
            + [{"type": "button", "sub_type": "url", "index": "7", "parameters": [{"type": "text", "text": "x"}]}],
            "template.components[3]",
            "no button 7",
        ),
        (positional_components() + [{"type": "body", "parameters": []}], "template.components[3]", "repeats"),
        (
            [{"type": "header", "parameters": [{"type": "image", "image": {"id": "1"}}]}] + positional_components()[1:],
            "template.components[0].parameters[0].type",
            "must be one of",
        ),
    ],
)
def test_positional_mismatches(components, field, message_part):
    with pytest.raises(PayloadError) as caught:
        payloads.template(TO, "order_update", "en_US", components, definition=POSITIONAL)
    assert caught.value.field == field
    assert message_part in caught.value.message


@pytest.mark.parametrize(
    ("components", "field"),
    [
        (named_components(body={"first_name": "Ana"}), "template.components[1].parameters"),
        (
            named_components(body={"first_name": "Ana", "coupon": "X"}),
            "template.components[1].parameters[1].parameter_name",
        ),
        (named_components(body=["Ana", "X"]), "template.components[1].parameters[0].parameter_name"),
        (named_components(header_type="video"), "template.components[0].parameters[0].type"),
        (named_components(coupon=False), "template.components"),
        (named_components()[1:], "template.components"),
    ],
)
def test_named_mismatches(components, field):
    with pytest.raises(PayloadError) as caught:
        payloads.template(TO, "welcome", "en", components, definition=NAMED)
    assert caught.value.field == field


def test_named_parameter_given_twice():
    components = named_components()
    components[1]["parameters"][1]["parameter_name"] = "first_name"
    with pytest.raises(PayloadError) as caught:
        payloads.template(TO, "welcome", "en", components, definition=NAMED)
    assert caught.value.field == "template.components[1].parameters[1].parameter_name"


def test_parameters_on_a_template_without_placeholders_are_refused():
    definition = {"name": "hello_world", "language": "en_US", "components": [{"type": "BODY", "text": "Hello!"}]}
    payloads.template(TO, "hello_world", "en_US", definition=definition)
    with pytest.raises(PayloadError) as caught:
        payloads.template(
            TO, "hello_world", "en_US", [{"type": "body", "parameters": text_parameters(["x"])}], definition=definition
        )
    assert caught.value.field == "template.components[0].parameters"


@pytest.mark.parametrize(
    ("name", "language", "field"),
    [("other", "en_US", "template.name"), ("order_update", "pt_BR", "template.language.code")],
)
def test_definition_must_be_the_same_template(name, language, field):
    with pytest.raises(PayloadError) as caught:
        payloads.template(TO, name, language, positional_components(), definition=POSITIONAL)
    assert caught.value.field == field


def test_build_message_checks_against_the_definition_too():
    content = {"name": "order_update", "language": {"code": "en_US"}, "components": positional_components()[1:]}
    build_message(TO, "template", content)  # structurally fine without a definition
    with pytest.raises(PayloadError):
        build_message(TO, "template", content, template_definition=POSITIONAL)
