"""Issue 15 item 5: every code in Meta's error lists has its own rule in app/whatsapp/error_table.py.

The list below was compiled (November 2026) from Meta's references, cross-checked with pywa 4.5.0's
``pywa/errors.py`` (MIT; it names each code with Meta's description and links the same pages):

- META: WhatsApp error codes, https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes/
  (authorization, throttling, integrity, other/messaging, registration, template and flow sending errors;
  its #template-creation-errors and #phone-migration-errors sections are TEMPLATES and MIGRATION).
- GRAPH: Graph API error handling, https://developers.facebook.com/docs/graph-api/guides/error-handling
  (generic Graph codes the Cloud API also answers: 613 call rate limit, 803 unknown id alias).
- FLOWS: https://developers.facebook.com/docs/whatsapp/flows/reference/error-codes
- GROUPS: https://developers.facebook.com/documentation/business-messaging/whatsapp/groups/error-codes
- CALLING: https://developers.facebook.com/docs/whatsapp/cloud-api/calling/troubleshooting
- BLOCK: https://developers.facebook.com/docs/whatsapp/cloud-api/block-users#error-codes
- USERNAME: https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids
  (#adopt-or-change-a-business-username)
- SIGNUP: the in-app signup API's codes as pywa 4.5.0 lists them.

Retryable is what Meta documents ("try again later", "temporarily unavailable", throttled), not our
guess; 131049/133008/133009/133015/133016 are "wait" codes (not retried by themselves, with a hint).
"""

from __future__ import annotations

import pickle

import pytest

from app.whatsapp.error_table import ERROR_RULES, RULE_TABLE, UNKNOWN
from app.whatsapp.errors import (
    AccountError,
    FlowError,
    GroupError,
    RecipientError,
    TransientError,
    UnknownError,
    error_from_code,
    error_from_response,
    rule_for_code,
)

META, GRAPH, FLOWS, GROUPS, CALLING = "META", "GRAPH", "FLOWS", "GROUPS", "CALLING"
BLOCK, USERNAME, TEMPLATES, MIGRATION, SIGNUP = "BLOCK", "USERNAME", "TEMPLATES", "MIGRATION", "SIGNUP"

# code: (source, retryable as Meta documents it)
META_CODES: dict[int, tuple[str, bool]] = {
    # authorization
    0: (META, False), 3: (META, False), 10: (META, False), 190: (META, False),
    200: (META, False), 250: (META, False), 299: (META, False),  # 200-299 API permission
    # throttling
    4: (META, True), 80007: (META, True), 130429: (META, True), 131048: (META, True), 131056: (META, True),
    131064: (META, False), 133016: (META, False),
    # integrity
    368: (META, False), 130497: (META, False), 131031: (META, False),
    # other / messaging
    1: (META, True), 2: (META, True), 33: (META, False), 100: (META, False), 130403: (META, False),
    130472: (META, False), 131000: (META, True), 131005: (META, False), 131008: (META, False),
    131009: (META, False), 131016: (META, True), 131021: (META, False), 131026: (META, False),
    131030: (META, False), 131037: (META, False), 131042: (META, False), 131044: (META, False),
    131045: (META, False), 131047: (META, False), 131049: (META, False), 131050: (META, False),
    131051: (META, False), 131052: (META, False), 131053: (META, False), 131057: (META, True),
    131058: (META, False), 131060: (META, True), 131062: (META, False), 131063: (META, False),
    135000: (META, False), 137000: (META, False),
    # templates (sending)
    132000: (META, False), 132001: (META, False), 132005: (META, False), 132007: (META, False),
    132008: (META, False), 132012: (META, False), 132015: (META, False), 132016: (META, False),
    # flows (sending): blocked, and throttled (10 an hour), which is retried
    132068: (META, False), 132069: (META, True),
    # registration
    133000: (META, False), 133004: (META, True), 133005: (META, False), 133006: (META, False),
    133008: (META, False), 133009: (META, False), 133010: (META, False), 133015: (META, False),
    136024: (META, False), 136025: (META, False),
    # generic Graph codes
    613: (GRAPH, True), 803: (GRAPH, False),
    # template creation
    2388019: (TEMPLATES, False), 2388040: (TEMPLATES, False), 2388047: (TEMPLATES, False),
    2388073: (TEMPLATES, False), 2388293: (TEMPLATES, False), 2388299: (TEMPLATES, False),
    # phone number migration
    2388012: (MIGRATION, False), 2388091: (MIGRATION, False), 2388093: (MIGRATION, False),
    2388103: (MIGRATION, False), 2494100: (MIGRATION, True),
    # flows (management)
    139000: (FLOWS, False), 139001: (FLOWS, False), 139002: (FLOWS, False), 139003: (FLOWS, False),
    139004: (FLOWS, False),
    # groups (131200-131215 is the Groups API's range: the ones not named here get the group rule)
    131020: (GROUPS, False), 131041: (GROUPS, False), 131059: (GROUPS, False), 131201: (GROUPS, False),
    131202: (GROUPS, False), 131204: (GROUPS, False), 131207: (GROUPS, False), 131208: (GROUPS, True),
    131209: (GROUPS, False), 131210: (GROUPS, False), 131211: (GROUPS, False), 131212: (GROUPS, False),
    131213: (GROUPS, False), 131214: (GROUPS, False), 131215: (GROUPS, False),
    # calling
    138000: (CALLING, False), 138001: (CALLING, False), 138002: (CALLING, True), 138003: (CALLING, False),
    138004: (CALLING, False), 138005: (CALLING, True), 138006: (CALLING, False), 138007: (CALLING, False),
    138009: (CALLING, False), 138012: (CALLING, False), 138013: (CALLING, True), 138018: (CALLING, False),
    # block list
    139100: (BLOCK, False), 139101: (BLOCK, False), 139102: (BLOCK, True), 139103: (BLOCK, True),
    # business username
    147001: (USERNAME, False), 147002: (USERNAME, False), 147003: (USERNAME, False), 147004: (USERNAME, False),
    147005: (USERNAME, False),
    # in-app signup
    2494164: (SIGNUP, False), 2494165: (SIGNUP, False), 2494166: (SIGNUP, False), 2494167: (SIGNUP, False),
    2494168: (SIGNUP, False), 2494176: (SIGNUP, False), 2494177: (SIGNUP, False), 2494179: (SIGNUP, False),
}
RANGES = {range(200, 300), range(131200, 131216)}


def test_the_list_and_the_table_agree():
    """Every code in the table is in the compiled list (with its source), and the other way round."""
    listed = {code for code in META_CODES if not any(code in r and code not in ERROR_RULES for r in RANGES)}
    assert set(ERROR_RULES) == listed
    assert len(ERROR_RULES) >= 120


def test_no_code_is_in_two_rows():
    codes = [code for row_codes, _ in RULE_TABLE for code in row_codes]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(("code", "source", "retryable"), [(c, s, r) for c, (s, r) in sorted(META_CODES.items())])
def test_every_listed_code_has_its_own_rule(code, source, retryable):
    assert rule_for_code(code) is not UNKNOWN, (code, source)
    error = error_from_code(code, "Meta's title", "Meta's details")
    assert type(error) is not UnknownError
    assert error.retryable is retryable, (code, source)
    assert error.code == code
    assert error.concerns in ("message", "contact", "number")
    sentence = error.agent_message
    assert sentence and sentence[-1] in ".)" and "{" not in sentence and "}" not in sentence
    if retryable:
        assert error.retry_after and error.retry_after > 0 and error.max_retries >= 1
        assert error.backoff(1) == error.retry_after
    else:
        assert error.max_retries == 0 and error.backoff(1) is None
    # The synchronous answer and the webhook's errors[] end in the same rule.
    synchronous = error_from_response(400, {"error": {"message": "x", "code": code}})
    assert (type(synchronous), synchronous.retryable, synchronous.agent_message.split(":")[0]) == (
        type(error), error.retryable, sentence.split(":")[0])


def test_flow_throttled_is_retried_with_backoff_and_blocked_is_not():
    throttled = error_from_code(132069)
    assert isinstance(throttled, FlowError) and throttled.retryable
    assert [throttled.backoff(n) for n in (1, 2, 3)] == [60.0, 120.0, 240.0]
    assert "retried" in throttled.agent_message
    blocked = error_from_code(132068)
    assert isinstance(blocked, FlowError) and not blocked.retryable


def test_only_policy_restrictions_stop_the_number():
    stopping = {code for code, rule in ERROR_RULES.items() if rule.stops_number}
    assert stopping == {368, 131031}
    for code in (368, 131031):
        error = error_from_code(code)
        assert isinstance(error, AccountError) and not error.retryable
        assert error.stops_number and error.concerns == "number"
        assert "stay queued" in error.agent_message and "resumes sending" in error.agent_message


def test_only_131050_opts_the_customer_out_of_marketing():
    assert {code for code, rule in ERROR_RULES.items() if rule.opts_out_marketing} == {131050}
    error = error_from_code(131050, "User stopped marketing messages")
    assert isinstance(error, RecipientError) and error.opts_out_marketing and error.concerns == "contact"
    assert not error.stops_number and not error.retryable


def test_bsuid_identity_and_block_errors_concern_the_customer():
    bsuid = error_from_code(131062)
    assert isinstance(bsuid, RecipientError) and bsuid.concerns == "contact"
    assert "user id" in bsuid.agent_message and "username" in bsuid.agent_message
    identity = error_from_code(137000)
    assert identity.concerns == "contact" and "identity" in identity.agent_message
    assert error_from_code(130403).concerns == "contact"
    assert error_from_code(131026).concerns == "contact"


def test_number_level_codes_concern_the_number():
    for code in (0, 190, 3, 10, 250, 131005, 4, 80007, 130429, 131048, 368, 131031, 131042, 131045, 133010, 33,
                 131037, 131063, 131064):
        assert error_from_code(code).concerns == "number", code


def test_group_codes_not_named_one_by_one_still_get_the_group_rule():
    for code in (131200, 131203, 131205, 131206):
        error = error_from_code(code, "Group thing", "what Meta said")
        assert isinstance(error, GroupError) and not error.retryable
        assert "what Meta said" in error.agent_message
    assert type(error_from_code(131216)) is UnknownError  # outside the range: unknown, permanent


def test_transient_rules_stay_transient():
    for code in (1, 2, 131000, 131016, 131057, 131060, 133004, 139102, 139103, 2494100):
        assert isinstance(error_from_code(code), TransientError), code


def test_new_attributes_survive_pickling():
    for code in (368, 131050, 132069):
        error = error_from_code(code, "t", "d")
        clone = pickle.loads(pickle.dumps(error))
        assert type(clone) is type(error) and clone.to_dict() == error.to_dict()
        assert (clone.stops_number, clone.opts_out_marketing, clone.concerns) == (
            error.stops_number, error.opts_out_marketing, error.concerns)
