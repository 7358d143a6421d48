"""The webhook parser against every real payload in tests/fixtures/webhooks: nothing lost, all typed."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.whatsapp.errors import ParameterError, RecipientError, TransientError
from app.whatsapp.webhooks import (
    AccountUpdate,
    MessagesValue,
    PhoneNumberNameUpdate,
    PhoneNumberQualityUpdate,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
    WebhookParseError,
    epoch_to_datetime,
    iter_changes,
    iter_echoes,
    iter_messages,
    iter_rejected,
    iter_statuses,
    parse_envelope,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"


def _all_envelopes() -> list[tuple[str, dict]]:
    cases = [(path.name, json.loads(path.read_bytes())) for path in sorted(FIXTURES.glob("*.json"))]
    for path in sorted((FIXTURES / "pywa_raw").glob("*.json")):
        for key, envelope in json.loads(path.read_bytes()).items():
            cases.append((f"pywa_raw/{path.stem}[{key}]", envelope))
    return cases


ENVELOPES = _all_envelopes()
IDS = [name for name, _ in ENVELOPES]


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_bytes())


def only_message(name: str):
    found = list(iter_messages(parse_envelope((FIXTURES / name).read_bytes())))
    assert len(found) == 1
    return found[0]


def test_every_fixture_file_is_covered():
    assert len(list(FIXTURES.glob("*.json"))) == 90
    assert len(list((FIXTURES / "pywa_raw").glob("*.json"))) == 19
    assert len(ENVELOPES) > 150


@pytest.mark.parametrize(("name", "raw"), ENVELOPES, ids=IDS)
def test_parses_and_dumps_back_to_the_original(name, raw):
    envelope = parse_envelope(json.dumps(raw).encode())
    assert envelope.model_dump(by_alias=True, exclude_unset=True) == raw
    assert envelope.model_dump(by_alias=True, exclude_unset=True, mode="json") == raw


@pytest.mark.parametrize(("name", "raw"), ENVELOPES, ids=IDS)
def test_every_message_and_status_comes_out_right(name, raw):
    envelope = parse_envelope(raw)
    raw_values = [
        (entry["id"], change["value"])
        for entry in raw["entry"]
        for change in entry["changes"]
        if change["field"] == "messages"
    ]
    raw_messages = [(waba, value, m) for waba, value in raw_values for m in value.get("messages", [])]
    raw_statuses = [(waba, value, s) for waba, value in raw_values for s in value.get("statuses", [])]
    messages = list(iter_messages(envelope))
    statuses = list(iter_statuses(envelope))
    assert len(messages) == len(raw_messages) and len(statuses) == len(raw_statuses)

    for item, (waba_id, value, raw_message) in zip(messages, raw_messages, strict=True):
        message = item.message
        assert item.waba_id == waba_id
        assert item.phone_number_id == value["metadata"]["phone_number_id"]
        assert item.display_phone_number == value["metadata"]["display_phone_number"]
        assert (message.type, message.id, message.from_, message.timestamp) == (
            raw_message["type"],
            raw_message["id"],
            raw_message.get("from"),
            raw_message["timestamp"],
        )
        assert message.epoch_seconds == int(raw_message["timestamp"])
        assert message.occurred_at == datetime.fromtimestamp(int(raw_message["timestamp"]), UTC)
        assert message.content == raw_message.get(raw_message["type"])
        assert message.model_dump(by_alias=True, exclude_unset=True) == raw_message

    for item, (waba_id, value, raw_status) in zip(statuses, raw_statuses, strict=True):
        status = item.status
        assert (item.waba_id, item.phone_number_id) == (waba_id, value["metadata"]["phone_number_id"])
        assert (status.id, status.status, status.timestamp, status.recipient_id) == (
            raw_status["id"],
            raw_status["status"],
            raw_status["timestamp"],
            raw_status.get("recipient_id"),
        )
        assert status.model_dump(by_alias=True, exclude_unset=True) == raw_status


@pytest.mark.parametrize(("name", "raw"), ENVELOPES, ids=IDS)
def test_every_change_is_iterated_with_its_raw_value(name, raw):
    changes = list(iter_changes(parse_envelope(raw)))
    expected = [(e["id"], e.get("time"), c["field"], c["value"]) for e in raw["entry"] for c in e["changes"]]
    assert [(c.waba_id, c.time, c.field, c.change.raw_value) for c in changes] == expected


# -- the type's body fields, one fixture each ----------------------------------------------------


def test_text():
    item = only_message("msg_text.json")
    assert item.message.text.body == "Body Text"
    assert item.message.content == {"body": "Body Text"}
    assert item.contact.wa_id == "972987654321" and item.contact.profile.name == "Test Name"
    assert item.contact.user_id == "US.13491208655302741918"
    assert item.contact.parent_user_id == "US.ENT.11815799212886844830"
    assert item.message.occurred_at == datetime(2023, 10, 11, 16, 53, 43, tzinfo=UTC)


def test_image_with_url():
    media = only_message("msg_image_with_url.json").message.media
    assert (media.id, media.mime_type, media.sha256) == ("65463453", "image/jpeg", "4654+8g=")
    assert media.url.startswith("https://lookaside.fbsbx.com/")


def test_meta_image_caption():
    message = only_message("meta_msg_image.json").message
    assert message.image.caption == "Taj Mahal" and message.image.id == "1003383421387256"


def test_document_filename_and_forwarded_context():
    message = only_message("msg_document.json").message
    assert (message.document.filename, message.document.caption) == ("filename.pdf", "caption")
    assert message.context.forwarded is True


@pytest.mark.parametrize(("name", "voice"), [("msg_audio.json", False), ("msg_audio_voice.json", True)])
def test_audio_voice_flag(name, voice):
    audio = only_message(name).message.audio
    assert audio.voice is voice and audio.mime_type == "audio/ogg; codecs=opus"


@pytest.mark.parametrize(
    ("name", "animated"), [("msg_sticker_static.json", False), ("msg_sticker_animated.json", True)]
)
def test_sticker_animated_flag(name, animated):
    assert only_message(name).message.sticker.animated is animated


def test_video_caption():
    assert only_message("msg_video_forwarded.json").message.video.caption == "caption"


def test_location():
    location = only_message("msg_location_named.json").message.location
    assert (location.latitude, location.longitude) == (37.4611978, -122.2164385)
    assert (location.name, location.address) == ("Facebook HQ", "1 Hacker Way, Menlo Park, CA 94025")
    assert location.url == "https://maps.google.com/?cid=2000000000000000000"


def test_contacts_message():
    cards = only_message("msg_contacts.json").message.contacts
    assert [card["name"]["formatted_name"] for card in cards] == ["Chandler Bing", "Monica", "Rachel Green"]
    assert only_message("meta_msg_contacts.json").message.contacts[0]["org"] == {"company": "Google"}


def test_interactive_replies():
    button = only_message("meta_msg_interactive_button_reply.json").message
    assert button.interactive.type == "button_reply"
    assert (button.interactive.button_reply.id, button.interactive.button_reply.title) == ("cancel-button", "Cancel")
    assert button.context.id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA"
    chosen = only_message("msg_interactive_list_reply_with_description.json").message.interactive.list_reply
    assert (chosen.id, chosen.title, chosen.description) == ("callback_data", "title", "description")
    flow = only_message("msg_interactive_nfm_reply_flow.json").message.interactive.nfm_reply
    assert (flow.name, flow.body) == ("flow", "Sent")
    assert json.loads(flow.response_json)["flow_token"] == "AQAAAAACS5FpgQ_cAAAAAD0QI3s."


def test_call_permission_reply():
    message = only_message("call_permission_update_accept.json").message
    assert message.interactive.type == "call_permission_reply"
    assert message.interactive.call_permission_reply == {
        "response": "accept",
        "expiration_timestamp": 1753186982,
        "response_source": "user_action",
    }


def test_template_quick_reply_button():
    message = only_message("msg_button_template_quick_reply.json").message
    assert (message.button.payload, message.button.text) == ("callback_data", "title")
    assert message.context.from_ == "972123456789"


def test_from_user_id_and_sender():
    message = only_message("msg_button_template_quick_reply_no_context.json").message
    assert message.from_user_id == "US.13491208655302741918"
    assert message.sender == "972987654321"


@pytest.mark.parametrize(
    ("name", "emoji", "removed"),
    [
        ("msg_reaction.json", "😮", False),
        ("msg_reaction_removed_empty_emoji.json", "", True),
        ("msg_reaction_removed_no_emoji.json", None, True),
    ],
)
def test_reactions(name, emoji, removed):
    reaction = only_message(name).message.reaction
    assert reaction.message_id == "wamid.yzxyzx="
    assert reaction.emoji == emoji and reaction.removed is removed


def test_order():
    order = only_message("meta_msg_order.json").message.order
    assert order.catalog_id == "194836987003835" and order.text == ""
    assert order.product_items[0] == {
        "product_retailer_id": "di9ozbzfi4",
        "quantity": 2,
        "item_price": 30,
        "currency": "USD",
    }


def test_system_number_change_without_contacts():
    item = only_message("msg_system_user_changed_number.json")
    assert item.contact is None
    assert (item.message.system.type, item.message.system.wa_id) == ("user_changed_number", "972912345678")


def test_system_identity_change_keeps_identity_extra():
    message = only_message("msg_system_customer_identity_changed.json").message
    assert message.system.type == "customer_identity_changed"
    assert message.model_extra["identity"] == {
        "acknowledged": True,
        "created_timestamp": "1697044706",
        "hash": "xyzxyz",
    }


@pytest.mark.parametrize("name", ["msg_unsupported.json", "meta_msg_unsupported.json"])
def test_unsupported_carries_131051(name):
    message = only_message(name).message
    assert message.type == "unsupported" and message.content is None
    assert message.errors[0].code == 131051
    assert message.errors[0].details == "Message type is currently not supported."
    assert isinstance(message.errors[0].to_graph_error(), ParameterError)
    assert only_message("msg_unsupported_with_type.json").message.content == {"type": "pool"}


def test_message_without_body_but_value_errors():
    item = only_message("msg_interactive_with_value_errors.json")
    assert item.message.type == "interactive" and item.message.interactive is None and item.message.content is None
    assert [error.code for error in item.errors] == [131000]
    assert isinstance(item.errors[0].to_graph_error(), TransientError)


def test_revoke():
    message = only_message("msg_revoke_deleted.json").message
    assert message.revoke.original_message_id == "<ORIGINAL_WHATSAPP_MESSAGE_ID>"


def test_edit_holds_the_new_content():
    edit = only_message("msg_edit_image.json").message.edit
    assert edit.original_message_id == "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
    assert edit.message.type == "image"
    assert edit.message.image.caption == "Updated image caption"
    assert edit.message.content["url"] == "https://media.example.com/updated-image.jpg"


def test_referral_and_referred_product():
    message = only_message("meta_msg_text_referral_ctwa.json").message
    assert message.referral["source_type"] == "ad" and message.referral["welcome_message"]["text"].startswith("Hi")
    context = only_message("meta_msg_text_context_referred_product.json").message.context
    assert context.referred_product == {"catalog_id": "194836987003835", "product_retailer_id": "di9ozbzfi4"}


def test_frequently_forwarded():
    assert only_message("msg_text_frequently_forwarded.json").message.context.frequently_forwarded is True


# -- statuses ------------------------------------------------------------------------------------


def test_failed_status_becomes_a_graph_error():
    (item,) = iter_statuses(parse_envelope(load("status_failed.json")))
    assert item.status.status == "failed"
    error = item.status.error
    assert isinstance(error, RecipientError) and error.code == 130472
    assert error.details == "Failed to send message because this user's phone number is part of an experiment"


def test_sent_status_pricing_conversation_and_callback_data():
    (item,) = iter_statuses(parse_envelope(load("status_sent_biz_opaque_callback_data.json")))
    status = item.status
    assert status.biz_opaque_callback_data == "some data"
    assert status.pricing == {"billable": True, "pricing_model": "CBP", "category": "service"}
    assert status.conversation["origin"] == {"type": "service"}
    assert status.error is None and status.epoch_seconds == 1698266945


def test_group_status_keeps_participant_fields():
    (item,) = iter_statuses(parse_envelope(load("status_read_group.json")))
    assert (item.status.recipient_type, item.status.recipient_id) == ("group", "fowefinoewcnw")
    assert item.status.recipient_participant_id == "<GROUP_PARTICIPANT_USER_PHONE_NUMBER>"
    assert item.status.model_extra["recipient_participant_user_id"] == "US.123456"


def test_call_statuses_are_not_message_statuses():
    envelope = parse_envelope(load("call_status_call_status.json"))
    assert list(iter_statuses(envelope)) == []
    (change,) = iter_changes(envelope)
    assert change.field == "calls" and change.value["statuses"][0]["status"] == "RINGING"


# -- other fields --------------------------------------------------------------------------------


def value_of(name):
    (change,) = iter_changes(parse_envelope(load(name)))
    return change.value


def test_template_status_update_is_typed():
    value = value_of("template_status_rejected.json")
    assert isinstance(value, TemplateStatusUpdate)
    assert (value.event, value.message_template_id, value.reason) == ("REJECTED", 1689556908129835, "INVALID_FORMAT")
    assert value.rejection_info["recommendation"].startswith("Separate parameters")
    assert not value.usable and value_of("template_status_approved.json").usable


def test_template_quality_and_category_updates_are_typed():
    quality = value_of("template_quality_update.json")
    assert isinstance(quality, TemplateQualityUpdate)
    assert (quality.previous_quality_score, quality.new_quality_score) == ("GREEN", "YELLOW")
    category = value_of("template_category_update.json")
    assert isinstance(category, TemplateCategoryUpdate) and category.new_category == "MARKETING"


def test_account_update_is_typed():
    value = value_of("account_update_account_restriction.json")
    assert isinstance(value, AccountUpdate) and value.event == "ACCOUNT_RESTRICTION"
    assert value.restriction_info[0]["restriction_type"] == "RESTRICTED_BIZ_INITIATED_MESSAGING"


def test_phone_number_updates_are_typed():
    quality = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "time": 1,
                "changes": [
                    {
                        "field": "phone_number_quality_update",
                        "value": {
                            "display_phone_number": "15550783881",
                            "event": "FLAGGED",
                            "current_limit": "TIER_10K",
                        },
                    },
                    {
                        "field": "phone_number_name_update",
                        "value": {
                            "display_phone_number": "15550783881",
                            "decision": "APPROVED",
                            "requested_verified_name": "Shrub",
                        },
                    },
                ],
            }
        ],
    }
    first, second = iter_changes(parse_envelope(quality))
    assert isinstance(first.value, PhoneNumberQualityUpdate) and first.value.current_limit == "TIER_10K"
    assert isinstance(second.value, PhoneNumberNameUpdate) and second.value.decision == "APPROVED"


@pytest.mark.parametrize(
    "name",
    ["user_preferences_marketing_signup.json", "call_connect_user_initiated.json", "meta_group_lifecycle_update.json"],
)
def test_other_fields_keep_their_raw_value(name):
    raw_value = load(name)["entry"][0]["changes"][0]["value"]
    assert value_of(name) == raw_value


def test_echoes_are_not_inbound_messages():
    envelope = parse_envelope(load("echo_smb_message_text.json"))
    assert list(iter_messages(envelope)) == []
    (echo,) = iter_echoes(envelope)
    assert echo.message.type == "text" and echo.message.text.body == "Test message"
    assert echo.message.to == "<WHATSAPP_USER_PHONE_NUMBER>"


# -- unknown things are kept; broken things are refused ------------------------------------------


def test_unknown_type_and_fields_are_kept():
    raw = load("msg_text.json")
    message = raw["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update({"type": "hologram", "hologram": {"frames": 3}, "new_top_level": True})
    message.pop("text")
    raw["entry"][0]["changes"][0]["value"]["brand_new_list"] = [{"a": 1}]
    raw["entry"][0]["extra_entry_field"] = "kept"
    raw["brand_new_envelope_field"] = {"x": None}
    envelope = parse_envelope(copy.deepcopy(raw))
    assert envelope.model_dump(by_alias=True, exclude_unset=True) == raw
    (item,) = iter_messages(envelope)
    assert item.message.type == "hologram" and item.message.content == {"frames": 3}
    assert item.message.model_extra["new_top_level"] is True


def test_unknown_change_field_is_kept_raw():
    raw = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "from_the_future", "value": {"k": [1, 2]}}]}],
    }
    (change,) = iter_changes(parse_envelope(raw))
    assert (change.field, change.value) == ("from_the_future", {"k": [1, 2]})


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", "\xff", b"\xff\xfe"])
def test_malformed_json_is_refused(raw):
    with pytest.raises(WebhookParseError, match="not valid JSON"):
        parse_envelope(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'"text"',
        {},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": {}},
        {"object": "whatsapp_business_account", "entry": [{"id": "1"}]},
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"value": {}}]}]},
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages"}]}]},
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "x", "value": [1]}]}]},
    ],
)
def test_wrong_shape_is_refused(raw):
    with pytest.raises(WebhookParseError):
        parse_envelope(raw)


def test_parse_error_is_a_value_error_and_names_the_place():
    with pytest.raises(ValueError, match=r"entry\.0\.changes"):
        parse_envelope({"object": "whatsapp_business_account", "entry": [{"id": "1"}]})


def test_accepts_bytes_str_and_dict_alike():
    raw = load("msg_text.json")
    from_bytes = parse_envelope(json.dumps(raw).encode())
    assert parse_envelope(json.dumps(raw)) == from_bytes == parse_envelope(raw)
    assert isinstance(from_bytes.entry[0].changes[0].value, MessagesValue)


def test_contact_matched_by_user_id_when_no_wa_id():
    raw = load("msg_text.json")
    value = raw["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"username": "@ana"}, "user_id": "US.1"}]
    del value["messages"][0]["from"]
    value["messages"][0]["from_user_id"] = "US.1"
    (item,) = iter_messages(parse_envelope(raw))
    assert item.contact.key == "US.1" and item.contact.profile.username == "@ana"
    assert item.message.sender == "US.1" and item.message.from_ is None


def test_epoch_to_datetime():
    assert epoch_to_datetime("0") == datetime(1970, 1, 1, tzinfo=UTC)
    assert epoch_to_datetime(1731705721).tzinfo is UTC


def test_numbers_where_text_is_expected_do_not_fail_the_envelope():
    raw = load("msg_text.json")
    value = raw["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = 972987654321
    value["messages"][0]["from"] = 972987654321
    (item,) = iter_messages(parse_envelope(raw))
    assert item.message.from_ == "972987654321"
    assert item.contact is not None and item.contact.wa_id == "972987654321"


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"messages": [{"type": "text", "timestamp": "1"}]}, "messages[0]"),  # no id, no sender
        ({"messages": "not a list"}, "value"),
    ],
)
def test_an_unreadable_item_is_left_out_and_said_not_the_envelope(value, where):
    """One bad message must not cost the rest of the body (issue 14, item 1): the envelope parses,
    the item is not among the messages, and ``iter_rejected`` says where and why."""
    envelope = parse_envelope({"object": "whatsapp_business_account",
                               "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]})
    assert list(iter_messages(envelope)) == []
    [rejected] = list(iter_rejected(envelope))
    assert rejected.field == "messages" and rejected.where == where and rejected.reason
