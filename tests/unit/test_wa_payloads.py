"""Outbound payload builders: exact bodies, every limit at the boundary and one past it."""

from __future__ import annotations

import pytest

from app.whatsapp import payloads
from app.whatsapp.payloads import PayloadError, build_message, normalize_recipient

TO = "+16505551234"
WRAP = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO}


def expect(type_, content, **extra):
    return {**WRAP, "type": type_, type_: content, **extra}


# -- recipients ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("+16505551234", "+16505551234"),
        ("16505551234", "+16505551234"),
        ("+1 (650) 555-1234", "+16505551234"),
        ("0044 20 7946 0958", "+442079460958"),
        (972987654321, "+972987654321"),
        ("+49.30.1234567", "+49301234567"),
        ("+123456789012345", "+123456789012345"),  # 15 digits: E.164's maximum
    ],
)
def test_recipient_is_normalised_to_plus_and_digits(raw, normalised):
    assert normalize_recipient(raw) == normalised


@pytest.mark.parametrize(
    "raw", ["", "+", "abc", "+1 650 CALL NOW", "+1234567890123456", "123456", "+0123456789", "١٢٣٤٥٦٧٨٩"]
)
def test_invalid_recipients_are_refused(raw):
    with pytest.raises(PayloadError) as caught:
        normalize_recipient(raw)
    assert caught.value.field == "to"


# -- exact bodies --------------------------------------------------------------------------------


def test_text():
    assert payloads.text("16505551234", "Hello") == expect("text", {"body": "Hello"})


def test_text_with_preview_and_reply():
    body = payloads.text(TO, "See https://example.com", preview_url=True, reply_to="wamid.PREV")
    assert body == expect(
        "text", {"body": "See https://example.com", "preview_url": True}, context={"message_id": "wamid.PREV"}
    )


@pytest.mark.parametrize("kind", ["image", "video", "document", "audio", "sticker"])
def test_media_by_id(kind):
    assert payloads.media(TO, kind, media_id="1234") == expect(kind, {"id": "1234"})


@pytest.mark.parametrize("kind", ["image", "video", "document", "audio", "sticker"])
def test_media_by_link_with_reply(kind):
    body = payloads.media(TO, kind, link="https://cdn.example.com/f", reply_to="wamid.X")
    assert body == expect(kind, {"link": "https://cdn.example.com/f"}, context={"message_id": "wamid.X"})


@pytest.mark.parametrize("kind", ["image", "video", "document"])
def test_caption_on_captioned_kinds(kind):
    assert payloads.media(TO, kind, media_id="1", caption="Look")[kind] == {"id": "1", "caption": "Look"}


def test_document_with_filename():
    body = payloads.media(TO, "document", link="https://x.example/r.pdf", caption="Invoice", filename="invoice.pdf")
    assert body == expect(
        "document", {"link": "https://x.example/r.pdf", "caption": "Invoice", "filename": "invoice.pdf"}
    )


def test_location():
    body = payloads.location(TO, 37.758056, -122.425332, name="META HQ", address="1 Hacker Way")
    assert body == expect(
        "location", {"latitude": 37.758056, "longitude": -122.425332, "name": "META HQ", "address": "1 Hacker Way"}
    )


def test_contacts():
    card = {"name": {"formatted_name": "John Smith", "first_name": "John"}, "phones": [{"phone": "+1 940 555 1234"}]}
    assert payloads.contacts(TO, [card]) == expect("contacts", [card])


def test_reaction_and_its_removal():
    assert payloads.reaction(TO, "wamid.A", "👍") == expect("reaction", {"message_id": "wamid.A", "emoji": "👍"})
    assert payloads.reaction(TO, "wamid.A", "") == expect("reaction", {"message_id": "wamid.A", "emoji": ""})


def test_reaction_cannot_quote():
    with pytest.raises(PayloadError) as caught:
        build_message(TO, "reaction", {"message_id": "wamid.A", "emoji": "👍"}, reply_to="wamid.B")
    assert caught.value.field == "context"


def test_buttons():
    body = payloads.buttons(
        TO, "Pick one", [("yes", "Yes"), {"id": "no", "title": "No"}], header="Question", footer="Thanks"
    )
    assert body == expect(
        "interactive",
        {
            "type": "button",
            "header": {"type": "text", "text": "Question"},
            "body": {"text": "Pick one"},
            "footer": {"text": "Thanks"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "no", "title": "No"}},
                ]
            },
        },
    )


def test_buttons_accept_a_media_header():
    header = {"type": "image", "image": {"link": "https://x.example/a.jpg"}}
    assert payloads.buttons(TO, "b", [("a", "A")], header=header)["interactive"]["header"] == header


def test_list():
    sections = [{"title": "Shipping", "rows": [{"id": "exp", "title": "Express", "description": "Next day"}]}]
    body = payloads.list_message(TO, "Choose", "Options", sections, reply_to="wamid.Q")
    assert body == expect(
        "interactive",
        {"type": "list", "body": {"text": "Choose"}, "action": {"button": "Options", "sections": sections}},
        context={"message_id": "wamid.Q"},
    )


def test_template():
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]
    body = payloads.template(TO, "order_update", "en_US", components)
    assert body == expect("template", {"name": "order_update", "language": {"code": "en_US"}, "components": components})


def test_template_without_components():
    assert payloads.template(TO, "hello_world", "en_US")["template"] == {
        "name": "hello_world",
        "language": {"code": "en_US"},
    }


def test_mark_read():
    assert payloads.mark_read("wamid.R") == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.R"}
    assert payloads.mark_read("wamid.R", typing_indicator=True)["typing_indicator"] == {"type": "text"}


# -- build_message with integrator content --------------------------------------------------------


def test_build_message_copies_content():
    content = {"body": "hi"}
    body = build_message(TO, "text", content)
    content["body"] = "changed"
    assert body["text"] == {"body": "hi"}


def test_build_message_keeps_fields_we_do_not_model():
    interactive = {
        "type": "cta_url",
        "body": {"text": "Visit"},
        "action": {"name": "cta_url", "parameters": {"url": "https://x"}},
    }
    assert build_message(TO, "interactive", interactive)["interactive"] == interactive


@pytest.mark.parametrize("bad_type", ["", "voice", "TEXT", "order"])
def test_unknown_type_is_refused(bad_type):
    with pytest.raises(PayloadError) as caught:
        build_message(TO, bad_type, {})
    assert caught.value.field == "type"


@pytest.mark.parametrize(
    ("type_", "content", "field"),
    [
        ("text", {}, "text.body"),
        ("text", {"body": "   "}, "text.body"),
        ("text", {"body": 5}, "text.body"),
        ("text", {"body": "x", "preview_url": "yes"}, "text.preview_url"),
        ("text", "hello", "text"),
        ("image", {}, "image"),
        ("image", {"id": "1", "link": "https://x"}, "image"),
        ("image", {"link": "ftp://x/y.jpg"}, "image.link"),
        ("image", {"link": "/relative.jpg"}, "image.link"),
        ("audio", {"id": "1", "caption": "no"}, "audio.caption"),
        ("sticker", {"id": "1", "caption": "no"}, "sticker.caption"),
        ("image", {"id": "1", "filename": "a.jpg"}, "image.filename"),
        ("location", {"latitude": 91, "longitude": 0}, "location.latitude"),
        ("location", {"latitude": 0, "longitude": -180.5}, "location.longitude"),
        ("location", {"latitude": "1.0", "longitude": 0}, "location.latitude"),
        ("location", {"latitude": True, "longitude": 0}, "location.latitude"),
        ("contacts", [], "contacts"),
        ("contacts", {"name": {"formatted_name": "A"}}, "contacts"),
        ("contacts", [{"name": {"first_name": "A"}}], "contacts[0].name.formatted_name"),
        ("contacts", [{"phones": []}], "contacts[0].name"),
        ("reaction", {"emoji": "👍"}, "reaction.message_id"),
        ("reaction", {"message_id": "wamid.A"}, "reaction.emoji"),
        ("template", {"language": {"code": "en"}}, "template.name"),
        ("template", {"name": "t", "language": "en"}, "template.language"),
        (
            "template",
            {"name": "t", "language": {"code": "en"}, "components": [{"type": "button", "index": "0"}]},
            "template.components[0].sub_type",
        ),
        (
            "template",
            {
                "name": "t",
                "language": {"code": "en"},
                "components": [{"type": "button", "sub_type": "url", "index": "10"}],
            },
            "template.components[0].index",
        ),
        (
            "template",
            {
                "name": "t",
                "language": {"code": "en"},
                "components": [{"type": "body", "parameters": [{"type": "text"}]}],
            },
            "template.components[0].parameters[0].text",
        ),
        (
            "template",
            {
                "name": "t",
                "language": {"code": "en"},
                "components": [{"type": "header", "parameters": [{"type": "image", "image": {}}]}],
            },
            "template.components[0].parameters[0].image",
        ),
    ],
)
def test_invalid_content_names_the_field(type_, content, field):
    with pytest.raises(PayloadError) as caught:
        build_message(TO, type_, content)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_media_helper_refuses_unknown_kind():
    with pytest.raises(PayloadError) as caught:
        payloads.media(TO, "gif", media_id="1")
    assert caught.value.field == "type"


def test_media_helper_refuses_both_id_and_link():
    with pytest.raises(PayloadError):
        payloads.media(TO, "image", media_id="1", link="https://x.example/a.jpg")


# -- interactive rules ---------------------------------------------------------------------------


def _rows(count, prefix="r"):
    return [{"id": f"{prefix}{i}", "title": f"Row {i}"} for i in range(count)]


@pytest.mark.parametrize(
    ("interactive", "field"),
    [
        ({"type": "button", "body": {"text": "b"}, "action": {"buttons": []}}, "interactive.action.buttons"),
        (
            {
                "type": "button",
                "body": {"text": "b"},
                "action": {"buttons": [{"type": "url", "reply": {"id": "a", "title": "A"}}]},
            },
            "interactive.action.buttons[0].type",
        ),
        (
            {
                "type": "button",
                "body": {"text": "b"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "a", "title": "A"}},
                        {"type": "reply", "reply": {"id": "a", "title": "B"}},
                    ]
                },
            },
            "interactive.action.buttons[1].reply.id",
        ),
        (
            {"type": "button", "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}},
            "interactive.body",
        ),
        ({"type": "button", "body": {"text": "b"}}, "interactive.action"),
        (
            {
                "type": "list",
                "body": {"text": "b"},
                "header": {"type": "image", "image": {"id": "1"}},
                "action": {"button": "Go", "sections": [{"rows": _rows(1)}]},
            },
            "interactive.header.type",
        ),
        (
            {"type": "list", "body": {"text": "b"}, "action": {"button": "Go", "sections": []}},
            "interactive.action.sections",
        ),
        (
            {
                "type": "list",
                "body": {"text": "b"},
                "action": {"button": "Go", "sections": [{"title": "A", "rows": _rows(1)}, {"rows": _rows(1, "s")}]},
            },
            "interactive.action.sections[1].title",
        ),
        (
            {
                "type": "list",
                "body": {"text": "b"},
                "action": {"button": "Go", "sections": [{"title": "A", "rows": []}]},
            },
            "interactive.action.sections[0].rows",
        ),
        (
            {
                "type": "list",
                "body": {"text": "b"},
                "action": {
                    "button": "Go",
                    "sections": [{"title": "A", "rows": _rows(1)}, {"title": "B", "rows": _rows(1)}],
                },
            },
            "interactive.action.sections[1].rows[0].id",
        ),
        ({"body": {"text": "b"}, "action": {}}, "interactive.type"),
        (
            {
                "type": "button",
                "header": {"type": "image", "image": {}},
                "body": {"text": "b"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]},
            },
            "interactive.header.image",
        ),
    ],
)
def test_invalid_interactive_names_the_field(interactive, field):
    with pytest.raises(PayloadError) as caught:
        build_message(TO, "interactive", interactive)
    assert caught.value.field == field


def test_a_single_list_section_may_go_untitled():
    body = payloads.list_message(TO, "b", "Go", [{"rows": _rows(2)}])
    assert body["interactive"]["action"]["sections"] == [{"rows": _rows(2)}]


# -- every limit at the boundary and one past it -------------------------------------------------


def _buttons(count=1, id_len=None, title_len=None):
    return [
        (("i" * id_len) if id_len and i == 0 else f"b{i}", ("t" * title_len) if title_len and i == 0 else f"B{i}")
        for i in range(count)
    ]


def _list(body="b", button="Go", sections=None, header=None, footer=None):
    return payloads.list_message(TO, body, button, sections or [{"rows": _rows(1)}], header=header, footer=footer)


LIMITS = [
    ("text body", 4096, lambda n: payloads.text(TO, "x" * n), "text.body"),
    ("image caption", 1024, lambda n: payloads.media(TO, "image", media_id="1", caption="c" * n), "image.caption"),
    ("video caption", 1024, lambda n: payloads.media(TO, "video", media_id="1", caption="c" * n), "video.caption"),
    (
        "document caption",
        1024,
        lambda n: payloads.media(TO, "document", media_id="1", caption="c" * n),
        "document.caption",
    ),
    (
        "contacts",
        5,
        lambda n: payloads.contacts(TO, [{"name": {"formatted_name": f"P{i}"}} for i in range(n)]),
        "contacts",
    ),
    ("buttons", 3, lambda n: payloads.buttons(TO, "b", _buttons(n)), "interactive.action.buttons"),
    (
        "button id",
        256,
        lambda n: payloads.buttons(TO, "b", _buttons(id_len=n)),
        "interactive.action.buttons[0].reply.id",
    ),
    (
        "button title",
        20,
        lambda n: payloads.buttons(TO, "b", _buttons(title_len=n)),
        "interactive.action.buttons[0].reply.title",
    ),
    ("button body", 1024, lambda n: payloads.buttons(TO, "b" * n, _buttons()), "interactive.body.text"),
    ("button header", 60, lambda n: payloads.buttons(TO, "b", _buttons(), header="h" * n), "interactive.header.text"),
    ("button footer", 60, lambda n: payloads.buttons(TO, "b", _buttons(), footer="f" * n), "interactive.footer.text"),
    ("list body", 1024, lambda n: _list(body="b" * n), "interactive.body.text"),
    ("list header", 60, lambda n: _list(header="h" * n), "interactive.header.text"),
    ("list footer", 60, lambda n: _list(footer="f" * n), "interactive.footer.text"),
    ("list button", 20, lambda n: _list(button="g" * n), "interactive.action.button"),
    (
        "sections",
        10,
        lambda n: _list(sections=[{"title": f"S{i}", "rows": _rows(1, f"s{i}-")} for i in range(n)]),
        "interactive.action.sections",
    ),
    (
        "section title",
        24,
        lambda n: _list(sections=[{"title": "s" * n, "rows": _rows(1)}]),
        "interactive.action.sections[0].title",
    ),
    (
        "rows in all",
        10,
        lambda n: _list(sections=[{"title": "A", "rows": _rows(5, "a")}, {"title": "B", "rows": _rows(n - 5, "b")}]),
        "interactive.action.sections[1].rows[5]",
    ),
    (
        "row id",
        200,
        lambda n: _list(sections=[{"rows": [{"id": "r" * n, "title": "T"}]}]),
        "interactive.action.sections[0].rows[0].id",
    ),
    (
        "row title",
        24,
        lambda n: _list(sections=[{"rows": [{"id": "r", "title": "t" * n}]}]),
        "interactive.action.sections[0].rows[0].title",
    ),
    (
        "row description",
        72,
        lambda n: _list(sections=[{"rows": [{"id": "r", "title": "T", "description": "d" * n}]}]),
        "interactive.action.sections[0].rows[0].description",
    ),
]


@pytest.mark.parametrize(
    ("limit", "build"), [(limit, build) for _, limit, build, _ in LIMITS], ids=[name for name, *_ in LIMITS]
)
def test_limit_is_accepted_at_the_boundary(limit, build):
    assert build(limit)["messaging_product"] == "whatsapp"


@pytest.mark.parametrize(
    ("limit", "build", "field"),
    [(limit, build, field) for _, limit, build, field in LIMITS],
    ids=[name for name, *_ in LIMITS],
)
def test_limit_is_refused_one_past_it(limit, build, field):
    with pytest.raises(PayloadError) as caught:
        build(limit + 1)
    assert caught.value.field == field


def test_payload_error_is_a_value_error():
    assert issubclass(PayloadError, ValueError)
