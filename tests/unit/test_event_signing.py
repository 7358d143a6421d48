"""Our webhook signatures, and the README's few lines of Python that verify them."""

from __future__ import annotations

import re
import time
from pathlib import Path

from app.domains.subscriptions.signing import new_signing_secret, sign, verify

README = Path(__file__).resolve().parents[2] / "README.md"


def test_sign_and_verify_round_trip_and_refusals():
    secret, body, now = new_signing_secret(), b'{"id":"evt_1","type":"ping"}', int(time.time())
    signature = sign(secret, now, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(secret, str(now), body, signature)
    assert not verify(secret, str(now), body + b" ", signature)            # body changed
    assert not verify(secret, str(now + 1), body, signature)               # timestamp changed
    assert not verify(new_signing_secret(), str(now), body, signature)     # another secret
    assert not verify(secret, str(now - 3600), body, sign(secret, now - 3600, body))  # replayed later
    assert not verify(secret, None, body, signature) and not verify(secret, "x", body, signature)


def test_the_readme_snippet_verifies_our_signatures():
    block = re.search(r"```python\n(import hashlib.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(block, namespace)  # noqa: S102 - our own README's example
    secret, body, now = new_signing_secret(), b'{"id":"evt_2"}', str(int(time.time()))
    assert namespace["verify"](secret, now, body, sign(secret, now, body))
    assert not namespace["verify"](secret, now, b"{}", sign(secret, now, body))
