"""X-Hub-Signature-256: sign/verify over the raw body bytes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.whatsapp.signature import HEADER, sign, verify

SECRET = "app-secret-123"
BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def test_header_name_is_metas():
    assert HEADER == "X-Hub-Signature-256"


def test_sign_is_hex_hmac_sha256_with_prefix():
    expected = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY) == expected


def test_good_signature_verifies():
    assert verify(SECRET, BODY, sign(SECRET, BODY)) is True


def test_bad_signature_is_refused():
    assert verify(SECRET, BODY, "sha256=" + "0" * 64) is False


@pytest.mark.parametrize("header", [None, "", "sha256=", "md5=abc", sign(SECRET, BODY).removeprefix("sha256=")])
def test_missing_or_malformed_header_is_refused(header):
    assert verify(SECRET, BODY, header) is False


def test_wrong_secret_is_refused():
    assert verify("another-secret", BODY, sign(SECRET, BODY)) is False


def test_empty_secret_never_verifies():
    assert verify("", BODY, sign("", BODY)) is False


@pytest.mark.parametrize(
    "tampered",
    [
        BODY.replace(b"[]", b"[{}]"),
        BODY + b" ",
        # Same JSON, re-serialised with spaces: must fail, the raw bytes are what was signed.
        b'{"object": "whatsapp_business_account", "entry": []}',
    ],
)
def test_tampered_body_is_refused(tampered):
    assert verify(SECRET, tampered, sign(SECRET, BODY)) is False
