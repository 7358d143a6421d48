"""Every Meta error code in WHATSAPP.md maps to its class, retry policy and agent sentence."""

from __future__ import annotations

import json
import pickle

import pytest

from app.whatsapp.errors import (
    ERROR_RULES,
    AccountError,
    AuthError,
    GraphError,
    GraphPermissionError,
    GraphTimeout,
    MediaError,
    ParameterError,
    RateLimitError,
    RecipientError,
    RecipientRateLimitError,
    TemplateError,
    TransientError,
    UnknownError,
    WindowClosedError,
    error_from_code,
    error_from_response,
)

# (code, class, retryable) for every row of WHATSAPP.md's table; 200-299 sampled at both ends.
TABLE = [
    (0, AuthError, False),
    (190, AuthError, False),
    (3, GraphPermissionError, False),
    (10, GraphPermissionError, False),
    (200, GraphPermissionError, False),
    (250, GraphPermissionError, False),
    (299, GraphPermissionError, False),
    (131005, GraphPermissionError, False),
    (4, RateLimitError, True),
    (80007, RateLimitError, True),
    (1, TransientError, True),
    (2, TransientError, True),
    (131016, TransientError, True),
    (131057, TransientError, True),
    (131000, TransientError, True),
    (130429, RateLimitError, True),
    (131056, RecipientRateLimitError, True),
    (131048, RateLimitError, True),
    (131049, RateLimitError, False),
    (131050, RecipientError, False),
    (100, ParameterError, False),
    (131008, ParameterError, False),
    (131009, ParameterError, False),
    (135000, ParameterError, False),
    (131021, RecipientError, False),
    (131026, RecipientError, False),
    (131031, AccountError, False),
    (368, AccountError, False),
    (131042, AccountError, False),
    (131045, AccountError, False),
    (133010, AccountError, False),
    (131047, WindowClosedError, False),
    (131051, ParameterError, False),
    (131052, MediaError, False),
    (131053, MediaError, False),
    (130472, RecipientError, False),
    (130497, AccountError, False),
    (132000, TemplateError, False),
    (132012, TemplateError, False),
    (132001, TemplateError, False),
    (132005, TemplateError, False),
    (132007, TemplateError, False),
    (132015, TemplateError, False),
    (132016, TemplateError, False),
]


def meta_body(code, message="(#%s) Something", details="Some details", subcode=None):
    error = {
        "message": message % code if "%s" in message else message,
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "AbCdEf123",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def test_table_covers_every_explicit_code():
    # WHATSAPP.md's rows are all in the table; the table has more (tests/unit/test_error_table.py).
    explicit = {code for code, _, _ in TABLE if not 200 <= code <= 299}
    assert explicit <= set(ERROR_RULES)


@pytest.mark.parametrize(("code", "cls", "retryable"), TABLE)
def test_error_from_response_picks_class_and_policy(code, cls, retryable):
    error = error_from_response(400, json.dumps(meta_body(code)).encode())
    assert type(error) is cls
    assert error.code == code
    assert error.retryable is retryable
    assert error.http_status == 400
    assert error.title == f"(#{code}) Something"
    assert error.details == "Some details"
    assert error.fbtrace_id == "AbCdEf123"
    assert error.error_type == "OAuthException"
    assert error.agent_message and error.agent_message[-1] in ".)" and "{" not in error.agent_message
    if retryable:
        assert error.retry_after and error.retry_after > 0
        assert error.max_retries >= 1
        assert error.backoff(1) == error.retry_after
    else:
        assert error.max_retries == 0
        assert error.backoff(1) is None


@pytest.mark.parametrize(("code", "cls", "retryable"), TABLE)
def test_error_from_code_matches_the_synchronous_path(code, cls, retryable):
    error = error_from_code(code, "Title from webhook", "Details from webhook")
    assert type(error) is cls
    assert (error.code, error.retryable, error.http_status) == (code, retryable, None)
    assert (error.title, error.details) == ("Title from webhook", "Details from webhook")
    synchronous = error_from_response(400, meta_body(code))
    assert (error.retry_after, error.max_retries) == (synchronous.retry_after, synchronous.max_retries)


def test_window_closed_sentence_tells_agent_to_use_a_template():
    error = error_from_code(131047, "Re-engagement message")
    assert error.agent_message == (
        "More than 24 hours have passed since the customer last wrote; send a template instead."
    )
    assert isinstance(error, RecipientError)


def test_parameter_errors_show_metas_detail_to_the_agent():
    error = error_from_response(400, meta_body(131009, "(#131009) Parameter value is not valid", "text.body too long"))
    assert "text.body too long" in error.agent_message


def test_specific_policies():
    assert error_from_code(1).max_retries == 1
    assert error_from_code(131000).max_retries == 3
    # Per-recipient pacing grows as 4^n; the others double.
    assert [error_from_code(131056).backoff(n) for n in (1, 2, 3)] == [4.0, 16.0, 64.0]
    assert [error_from_code(130429).backoff(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert error_from_code(131048).backoff(30) == 3600.0  # capped
    marketing_limit = error_from_code(131049)
    assert not marketing_limit.retryable and marketing_limit.retry_after == 86400.0


def test_unknown_code_on_4xx_is_permanent_and_keeps_metas_words():
    error = error_from_response(400, meta_body(999123, "Brand new failure", "With a detail"))
    assert type(error) is UnknownError
    assert not error.retryable
    assert (error.code, error.title, error.details) == (999123, "Brand new failure", "With a detail")
    assert "Brand new failure" in error.agent_message and "With a detail" in error.agent_message


def test_unknown_code_on_5xx_is_transient():
    error = error_from_response(503, meta_body(999123, "Overloaded"))
    assert type(error) is TransientError
    assert error.retryable and error.retry_after
    assert error.code == 999123


def test_known_code_wins_over_http_status():
    assert type(error_from_response(500, meta_body(131047))) is WindowClosedError


@pytest.mark.parametrize("body", [None, b"", b"<html>Bad Gateway</html>", b"\xff\xfe", "not json", {"no": "error"}])
def test_5xx_without_a_graph_error_body_is_transient(body):
    error = error_from_response(502, body)
    assert isinstance(error, TransientError)
    assert error.code is None and error.http_status == 502
    assert error.title == "HTTP 502"


def test_html_excerpt_is_kept_as_details():
    error = error_from_response(502, b"<html>\n  Bad   Gateway</html>")
    assert error.details == "<html> Bad Gateway</html>"


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (401, AuthError, False),
        (403, GraphPermissionError, False),
        (429, RateLimitError, True),
        (404, UnknownError, False),
    ],
)
def test_bodyless_errors_fall_back_on_http_status(status, cls, retryable):
    error = error_from_response(status, None)
    assert type(error) is cls and error.retryable is retryable


def test_string_codes_and_subcodes_are_read():
    body = meta_body("131056", subcode="2494055")
    error = error_from_response(400, body)
    assert type(error) is RecipientRateLimitError
    assert (error.code, error.subcode) == (131056, 2494055)


def test_error_user_msg_is_used_when_details_are_absent():
    body = {"error": {"message": "Invalid parameter", "code": 100, "error_user_msg": "Name is too long"}}
    assert error_from_response(400, body).details == "Name is too long"


def test_str_and_repr_are_informative_and_stable():
    error = error_from_response(400, meta_body(131047, "(#131047) Re-engagement message", "24h passed"))
    assert str(error) == "WindowClosedError 131047 (HTTP 400) (#131047) Re-engagement message: 24h passed"
    assert repr(error) == "WindowClosedError(code=131047, http_status=400, title='(#131047) Re-engagement message')"


def test_errors_survive_pickling_with_every_attribute():
    # arq pickles exceptions raised by jobs.
    error = error_from_response(400, meta_body(131056, subcode=7))
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is RecipientRateLimitError
    assert clone.to_dict() == error.to_dict()


def test_to_dict_is_json_serialisable():
    error = error_from_response(400, meta_body(132001))
    assert json.loads(json.dumps(error.to_dict()))["code"] == 132001


def test_client_side_errors_have_sensible_defaults():
    timeout = GraphTimeout("POST x timed out")
    assert timeout.retryable and timeout.retry_after == 2.0 and timeout.max_retries == 5
    assert "did not answer in time" in timeout.agent_message
    assert isinstance(timeout, TransientError) and isinstance(timeout, GraphError)
