"""Issue 15 item 7: POST /api/v1/templates also takes Meta's own create body (``components``) and the
``template_name`` / ``language_code`` aliases; both shapes go through the one set of rules (drafts.py) and
every error is a 422 naming the field as sent (``components[1].example.body_text``), never a 500.

The request bodies below are Meta's own examples (the Cloud API reference's "Create template w/ text
header, text body, text footer, and 2 quick reply buttons" and friends, and the custom marketing
template guide's named-parameter example); the Cloud API sandbox stands in for Meta.
"""

from __future__ import annotations

import copy

import pytest

from tests.support.admin import (  # noqa: F401 (fixtures)
    AUTH,
    NUMBER,
    admin_client,
    register_in_sandbox,
    sandbox,
    sandbox_server,
)

# Meta's reference example, byte for byte (its "Unsubcribe" typo included).
SEASONAL = {
    "category": "MARKETING",
    "components": [
        {"example": {"header_text": ["Summer Sale"]}, "format": "TEXT", "text": "Our {{1}} is on!", "type": "HEADER"},
        {"example": {"body_text": [["the end of August", "25OFF", "25%"]]},
         "text": "Shop now through {{1}} and use code {{2}} to get {{3}} off of all merchandise.", "type": "BODY"},
        {"text": "Use the buttons below to manage your marketing subscriptions", "type": "FOOTER"},
        {"buttons": [{"text": "Unsubcribe from Promos", "type": "QUICK_REPLY"},
                     {"text": "Unsubscribe from All", "type": "QUICK_REPLY"}], "type": "BUTTONS"},
    ],
    "language": "en",
    "name": "seasonal_promotion_text_only",
}
# Meta's image header + phone + URL example (its phone number has no "+", its URL example is {{1}}'s value).
TUSCAN = {
    "category": "MARKETING",
    "components": [
        {"example": {"header_handle": ["4::aW1hZ2UvanBn:ARYytyb0kLp5htbBB8vWlclG5M9gMBxiEyt4FNCvrueWBOmFmRAztEuNtPGUnEC22"
                                       "Etc_SAAVU0YJOk3B7A-JuR1241_nq7gfITFxXKdDGnfvw:e:1681000441:634974688087057"]},
         "format": "IMAGE", "type": "HEADER"},
        {"example": {"body_text": [["Mark", "Tuscan Getaway package", "800"]]},
         "text": "Hi {{1}}! For a limited time only you can get our {{2}} for as low as {{3}}. "
                 "Tap the Offer Details button for more information.", "type": "BODY"},
        {"text": "Offer valid until May 31, 2023", "type": "FOOTER"},
        {"buttons": [{"phone_number": "16467043595", "text": "Call", "type": "PHONE_NUMBER"},
                     {"example": ["summer2023"], "text": "Shop Now", "type": "URL",
                      "url": "https://damp-sea-63235.herokuapp.com/shop?promo={{1}}"}], "type": "BUTTONS"},
    ],
    "language": "en_US",
    "name": "limited_time_offer_tuscan_getaway_2023",
}
# The custom marketing template guide: lower-case types, named parameters, the URL example as the whole link.
LUCKY_SHRUB = {
    "name": "welcome_offer", "language": "en_US", "category": "marketing", "parameter_format": "named",
    "components": [
        {"type": "header", "format": "text", "text": "Welcome, {{first_name}}!",
         "example": {"header_text_named_params": [{"param_name": "first_name", "example": "Pablo"}]}},
        {"type": "body",
         "text": "Welcome to Lucky Shrub, {{first_name}}!\n\nUse code *{{discount_code}}* to get {{discount_amount}} "
                 "off of your first purchase!",
         "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Pablo"},
                                                {"param_name": "discount_code", "example": "WELCOME20"},
                                                {"param_name": "discount_amount", "example": "20%"}]}},
        {"type": "footer", "text": "Lucky Shrub: Your gateway to succulents!"},
        {"type": "buttons", "buttons": [
            {"type": "url", "text": "Get started", "url": "https://www.luckyshrub.com/onboarding/{{1}}",
             "example": ["https://www.luckyshrub.com/onboarding/WELCOME20"]},
            {"type": "phone_number", "text": "Call us", "phone_number": "+15550051310"},
            {"type": "quick_reply", "text": "Unsubscribe"}]},
    ],
}
# Meta's authentication example.
AUTH_CODE = {
    "category": "AUTHENTICATION",
    "components": [{"add_security_recommendation": True, "type": "BODY"},
                   {"code_expiration_minutes": 10, "type": "FOOTER"},
                   {"buttons": [{"otp_type": "COPY_CODE", "text": "Copy Code", "type": "OTP"}], "type": "BUTTONS"}],
    "language": "en_US",
    "name": "authentication_code_copy_code_button",
}


@pytest.fixture
async def account(admin_client, sandbox):
    state, _ = sandbox
    register_in_sandbox(state)
    response = await admin_client.post("/api/v1/accounts", json=NUMBER, headers=AUTH)
    return response.json()


async def _create(admin_client, account, body):
    return await admin_client.post("/api/v1/templates", json={**body, "account_id": account["id"]}, headers=AUTH)


async def test_metas_own_example_is_created_and_reaches_the_cloud_api(admin_client, sandbox, account):
    state, _ = sandbox
    response = await _create(admin_client, account, SEASONAL)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["name"], created["language"], created["category"], created["status"]) == (
        "seasonal_promotion_text_only", "en", "MARKETING", "PENDING")
    stored = state.templates.get(created["meta_id"])
    assert stored.name == "seasonal_promotion_text_only" and stored.body_vars == ["1", "2", "3"]
    assert stored.components == SEASONAL["components"]  # what Meta gets is what was sent
    assert created["components"] == SEASONAL["components"]
    listed = (await admin_client.get("/api/v1/templates?name=seasonal", headers=AUTH)).json()["data"]
    assert [t["id"] for t in listed] == [created["id"]]


async def test_media_header_phone_and_url_suffix_example(admin_client, sandbox, account):
    state, _ = sandbox
    response = await _create(admin_client, account, TUSCAN)
    assert response.status_code == 201, response.text
    stored = state.templates.get(response.json()["meta_id"])
    header, _, _, buttons = stored.components
    assert header == TUSCAN["components"][0]
    assert buttons["buttons"][0] == {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+16467043595"}
    assert buttons["buttons"][1]["example"] == ["https://damp-sea-63235.herokuapp.com/shop?promo=summer2023"]


async def test_lower_case_types_and_named_parameters(admin_client, sandbox, account):
    state, _ = sandbox
    response = await _create(admin_client, account, LUCKY_SHRUB)
    assert response.status_code == 201, response.text
    assert response.json()["parameter_format"] == "NAMED"
    stored = state.templates.get(response.json()["meta_id"])
    assert stored.parameter_format == "NAMED" and stored.category == "MARKETING"
    header, body, footer, buttons = stored.components
    assert [c["type"] for c in stored.components] == ["HEADER", "BODY", "FOOTER", "BUTTONS"]
    assert header["example"] == {"header_text_named_params": [{"param_name": "first_name", "example": "Pablo"}]}
    assert body["example"] == LUCKY_SHRUB["components"][1]["example"]
    assert [b["type"] for b in buttons["buttons"]] == ["URL", "PHONE_NUMBER", "QUICK_REPLY"]
    assert buttons["buttons"][0]["example"] == ["https://www.luckyshrub.com/onboarding/WELCOME20"]


async def test_metas_authentication_example(admin_client, sandbox, account):
    state, _ = sandbox
    response = await _create(admin_client, account, AUTH_CODE)
    assert response.status_code == 201, response.text
    assert state.templates.get(response.json()["meta_id"]).components == AUTH_CODE["components"]


async def test_template_name_and_language_code_aliases(admin_client, sandbox, account):
    state, _ = sandbox
    body = {k: v for k, v in SEASONAL.items() if k not in ("name", "language")}
    response = await _create(admin_client, account, {**body, "template_name": "aliased", "language_code": "en_US"})
    assert response.status_code == 201, response.text
    assert (response.json()["name"], response.json()["language"]) == ("aliased", "en_US")
    assert state.templates.get(response.json()["meta_id"]).name == "aliased"
    again = await _create(admin_client, account, {**body, "template_name": "aliased", "language_code": "en_US"})
    assert again.status_code == 409 and again.json()["details"] == {"template_name": "Already used in this language."}
    # The aliases in our own shape too; the same value under both names is no conflict.
    ours = {"template_name": "ours_aliased", "name": "ours_aliased", "language_code": "en", "category": "UTILITY",
            "body": "Your code is {{1}} today.", "body_examples": ["1234"]}
    response = await _create(admin_client, account, ours)
    assert response.status_code == 201, response.text
    assert (response.json()["name"], response.json()["language"]) == ("ours_aliased", "en")
    bad = await _create(admin_client, account, {**ours, "template_name": "Bad Name", "name": None})
    assert bad.status_code == 422 and "template_name" in bad.json()["details"], bad.json()


@pytest.mark.parametrize("body,fields", [
    ({**SEASONAL, "template_name": "other_name"}, {"name", "template_name"}),
    ({**SEASONAL, "language_code": "en_US"}, {"language", "language_code"}),
])
async def test_conflicting_aliases_are_refused(admin_client, sandbox, account, body, fields):
    state, _ = sandbox
    response = await _create(admin_client, account, body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error_code"] == "TEMPLATE_INVALID" and set(answer["details"]) == fields
    assert "differ" in answer["error"]
    assert state.templates.list(NUMBER["waba_id"]) == []


def _changed(change) -> dict:
    body = copy.deepcopy(SEASONAL)
    change(body)
    return body


def _component(index, **values):
    return lambda body: body["components"][index].update(values)


def _button(index, **values):
    return lambda body: body["components"][3]["buttons"][index].update(values)


def _buttons(*buttons):
    return lambda body: body["components"][3].update(buttons=list(buttons))


URL = {"type": "URL", "text": "Shop", "url": "https://shop.example/p/{{1}}", "example": ["https://shop.example/p/a"]}
BAD_INPUTS = {
    # the body's shape
    "components not a list": (lambda b: b.update(components={"type": "BODY"}), "components"),
    "component not an object": (lambda b: b["components"].__setitem__(2, "FOOTER"), "components[2]"),
    "unknown component type": (_component(2, type="CAROUSEL"), "components[2].type"),
    "component type not a string": (_component(2, type=7), "components[2].type"),
    "two bodies": (lambda b: b["components"].append({"type": "body", "text": "Again"}), "components[4].type"),
    "no body": (lambda b: b["components"].pop(1), "components"),
    "unknown top-level field": (lambda b: b.update(colour="blue"), "colour"),
    "unknown component field": (_component(2, colour="blue"), "components[2].colour"),
    "mixed with our shape": (lambda b: b.update(body="Hi"), "body"),
    "name not a string": (lambda b: b.update(name=["x"]), "name"),
    "parameter_format not a string": (lambda b: b.update(parameter_format=1), "parameter_format"),
    "text not a string": (_component(1, text={"x": 1}), "components[1].text"),
    # examples
    "example not an object": (_component(1, example=[["a", "b", "c"]]), "components[1].example"),
    "body_text not nested": (_component(1, example={"body_text": ["a", "b", "c"]}), "components[1].example.body_text"),
    "body_text value an object": (_component(1, example={"body_text": [["a", {}, "c"]]}),
                                  "components[1].example.body_text[0][1]"),
    "too few body examples": (_component(1, example={"body_text": [["a", "b"]]}), "components[1].example.body_text"),
    "no body example": (lambda b: b["components"][1].pop("example"), "components[1].example.body_text"),
    "both example kinds": (_component(1, example={"body_text": [["a", "b", "c"]], "body_text_named_params": []}),
                           "components[1].example"),
    "named example twice": (lambda b: b.update(parameter_format="NAMED", components=[
        {"type": "BODY", "text": "Hi {{first_name}}, welcome.", "example": {"body_text_named_params": [
            {"param_name": "first_name", "example": "Ann"}, {"param_name": "first_name", "example": "Bo"}]}}]),
        "components[0].example.body_text_named_params[1].param_name"),
    "named example for another name": (lambda b: b.update(components=[
        {"type": "BODY", "text": "Hi {{first_name}}, welcome.",
         "example": {"body_text_named_params": [{"param_name": "name", "example": "Ann"}]}}]),
        "components[0].example.body_text_named_params"),
    "header_text with two values": (_component(0, example={"header_text": ["a", "b"]}),
                                    "components[0].example.header_text"),
    "no header example": (lambda b: b["components"][0].pop("example"), "components[0].example.header_text"),
    "media header without handle": (lambda b: b["components"].__setitem__(0, {"type": "HEADER", "format": "VIDEO"}),
                                    "components[0].example.header_handle"),
    "header without format": (lambda b: b["components"][0].pop("format"), "components[0].format"),
    "unknown header format": (_component(0, format="GIF"), "components[0].format"),
    # WhatsApp's rules, pointed at the component
    "header over 60": (_component(0, text="Our {{1}} is on! " + "x" * 50), "components[0].text"),
    "body over 1024": (_component(1, text="Hi {{1}} {{2}} and {{3}}." + "x" * 1010), "components[1].text"),
    "body starts with a variable": (_component(1, text="{{1}} through {{2}} and {{3}} off."), "components[1].text"),
    "variables touch": (_component(1, text="Shop {{1}}{{2}} and {{3}} off."), "components[1].text"),
    "footer with a variable": (_component(2, text="Reply {{1}}"), "components[2].text"),
    "footer over 60": (_component(2, text="x" * 61), "components[2].text"),
    "label over 25": (_button(1, text="x" * 26), "components[3].buttons[1].text"),
    "button without label": (_button(0, text=""), "components[3].buttons[0].text"),
    "buttons not a list": (_component(3, buttons="QUICK_REPLY"), "components[3].buttons"),
    "button not an object": (_buttons("QUICK_REPLY"), "components[3].buttons[0]"),
    "unknown button type": (_buttons({"type": "FLOW", "text": "Go"}), "components[3].buttons[0].type"),
    "eleven buttons": (_buttons(*({"type": "QUICK_REPLY", "text": f"B{i}"} for i in range(11))), "components[3].buttons"),
    "three links": (_buttons(URL, URL, URL), "components[3].buttons[2].type"),
    "two phones": (_buttons({"type": "PHONE_NUMBER", "text": "A", "phone_number": "+15550100"},
                            {"type": "PHONE_NUMBER", "text": "B", "phone_number": "+15550101"}),
                   "components[3].buttons[1].type"),
    "two copy codes": (_buttons({"type": "COPY_CODE", "example": "SAVE10"}, {"type": "COPY_CODE", "example": "SAVE20"}),
                       "components[3].buttons[1].type"),
    "copy code too long": (_buttons({"type": "COPY_CODE", "example": "X" * 16}), "components[3].buttons[0].example"),
    "quick replies split": (_buttons({"type": "QUICK_REPLY", "text": "A"}, URL, {"type": "QUICK_REPLY", "text": "C"}),
                            "components[3].buttons"),
    "link variable not at the end": (_buttons({**URL, "url": "https://shop.example/{{1}}/more"}),
                                     "components[3].buttons[0].url"),
    "link with two variables": (_buttons({**URL, "url": "https://shop.example/{{1}}/{{2}}"}),
                                "components[3].buttons[0].url"),
    "link example not a list": (_buttons({**URL, "example": "https://shop.example/p/a"}),
                                "components[3].buttons[0].example"),
    "link example of another site": (_buttons({**URL, "example": ["https://other.example/a"]}),
                                     "components[3].buttons[0].example"),
    "link without example": (_buttons({k: v for k, v in URL.items() if k != "example"}),
                             "components[3].buttons[0].example"),
    "phone without country code": (_buttons({"type": "PHONE_NUMBER", "text": "Call", "phone_number": "555"}),
                                   "components[3].buttons[0].phone_number"),
    "example on a quick reply": (_button(0, example=["x"]), "components[3].buttons[0].example"),
}


@pytest.mark.parametrize("change,field", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
async def test_bad_input_is_a_pointed_422(admin_client, sandbox, account, change, field):
    state, _ = sandbox
    response = await _create(admin_client, account, _changed(change))
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error_code"] == "TEMPLATE_INVALID", answer
    assert field in answer["details"], answer["details"]
    assert state.templates.list(NUMBER["waba_id"]) == []


async def test_every_problem_at_once_shape_and_rules(admin_client, account):
    body = _changed(lambda b: (b["components"][1].update(example={"body_text": "x"}),
                               b["components"][3]["buttons"][1].update(text="x" * 30),
                               b["components"][2].update(text="x" * 61)))
    details = (await _create(admin_client, account, body)).json()["details"]
    assert set(details) == {"components[1].example.body_text", "components[3].buttons[1].text",
                            "components[2].text"}, details


@pytest.mark.parametrize("body", [
    [], "template", 5, None, {"components": None}, {"components": [None, [], 1.5, True]},
    {"components": [{"type": "BUTTONS", "buttons": [None, {"type": None}, {"type": "URL", "url": 5, "example": {}}]}]},
    {"components": [{"type": "HEADER", "format": ["TEXT"], "example": {"header_text_named_params": [{}]}}]},
    {"components": [{"type": "BODY", "text": "Hi {{1}} you", "example": {"body_text": [[None]]}}],
     "category": "MARKETING"},
    {"components": [{"type": "FOOTER", "code_expiration_minutes": "10"}], "category": "AUTHENTICATION"},
    {"components": [{"type": "BODY", "add_security_recommendation": "yes"}], "category": 3},
])
async def test_malformed_bodies_never_break_the_server(admin_client, account, body):
    payload = body if not isinstance(body, dict) else {**body, "account_id": account["id"]}
    response = await admin_client.post("/api/v1/templates", json=payload, headers=AUTH)
    assert response.status_code == 422, response.text
    # A JSON null is "no body" to Litestar, which answers its own 422 before the handler.
    assert response.json()["error_code"] == ("VALIDATION_ERROR" if body is None else "TEMPLATE_INVALID")


async def test_our_shape_is_pointed_the_same_way(admin_client, account):
    ours = {"name": "ours", "language": "en", "category": "UTILITY", "body": "Hi {{1}} there.",
            "body_examples": ["Ann"], "account_id": account["id"]}
    for change, field in (({"buttons": [{"text": "No type"}]}, "buttons[0].type"),
                          ({"header": {"format": 5}}, "header.format"),
                          ({"colour": "blue"}, "colour"),
                          ({"body_examples": [{"x": 1}]}, "body_examples"),
                          ({"buttons": [{"type": "COPY_CODE", "example": "SAVE10"}]}, "buttons[0].type")):
        response = await admin_client.post("/api/v1/templates", json={**ours, **change}, headers=AUTH)
        assert response.status_code == 422, response.text
        assert response.json()["error_code"] == "TEMPLATE_INVALID" and field in response.json()["details"], change


async def test_openapi_describes_both_shapes(client):
    document = (await client.get("/schema/openapi.json")).json()
    body = document["paths"]["/api/v1/templates"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    ours, metas = body["oneOf"]
    assert (ours["title"], metas["title"]) == ("Our shape", "Meta's shape")
    assert {"body", "body_examples", "header", "buttons", "template_name", "language_code"} <= set(ours["properties"])
    assert metas["required"] == ["components"] and ours["additionalProperties"] is False
    assert {"components", "parameter_format", "template_name", "language_code"} <= set(metas["properties"])
    kinds = metas["properties"]["components"]["items"]["anyOf"]
    assert [k["properties"]["type"]["enum"] for k in kinds] == [
        ["HEADER", "header"], ["BODY", "body"], ["FOOTER", "footer"], ["BUTTONS", "buttons"]]
    assert "components[0].example.body_text" in body["description"]
