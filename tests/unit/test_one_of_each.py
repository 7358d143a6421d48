"""One concept, one shape (issue 13): one message preview, one cursor codec with one error code,
one retry-delay formula. Each test fails if a second copy creeps back where it matters."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from beanie import PydanticObjectId

from app import retry
from app.domains.conversations.services import CONVERSATION_LISTING
from app.domains.messages.preview import preview_text
from app.domains.messages.queries import thread_listing
from app.pagination import InvalidCursor, decode_cursor, encode_cursor
from app.whatsapp import payloads

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "app").rglob("*.py"), *(ROOT / "workers").rglob("*.py")])


def _files_matching(pattern: str) -> set[str]:
    regex = re.compile(pattern)
    return {str(p.relative_to(ROOT)) for p in SOURCES if regex.search(p.read_text(encoding="utf-8"))}


# -- one preview ------------------------------------------------------------------------------------

def test_there_is_one_preview_function_and_both_paths_use_it():
    from app.domains.messages import ingest
    from app.domains.outbox import service

    assert _files_matching(r"def preview_text\b") == {"app/domains/messages/preview.py"}
    assert ingest.preview_text is preview_text and service.preview_text is preview_text


TO = "+15550100"
# (what the outbox stores for a send: the payload's content object) vs (what a webhook brings for the
# same message received, or echoed from the WhatsApp Business app).
SAME_MESSAGE = [
    ("text", payloads.text(TO, "hello there")["text"], {"body": "hello there"}),
    ("image", payloads.media(TO, "image", media_id="1", caption="the receipt")["image"],
     {"id": "1", "mime_type": "image/jpeg", "caption": "the receipt"}),
    ("image", payloads.media(TO, "image", media_id="1")["image"], {"id": "1", "mime_type": "image/jpeg"}),
    ("document", payloads.media(TO, "document", media_id="2", filename="invoice.pdf")["document"],
     {"id": "2", "filename": "invoice.pdf", "mime_type": "application/pdf"}),
    ("location", payloads.location(TO, 1.0, 2.0, name="Office", address="Main St 1")["location"],
     {"latitude": 1.0, "longitude": 2.0, "name": "Office", "address": "Main St 1"}),
    ("reaction", payloads.reaction(TO, "wamid.X", "👍")["reaction"], {"message_id": "wamid.X", "emoji": "👍"}),
    ("interactive", payloads.buttons(TO, "Delivery or pick-up?", [("b1", "Delivery"), ("b2", "Pick-up")])["interactive"],
     {"type": "button", "body": {"text": "Delivery or pick-up?"},
      "action": {"buttons": [{"type": "reply", "reply": {"id": "b1", "title": "Delivery"}}]}}),
]


@pytest.mark.parametrize("kind,sent,received", SAME_MESSAGE, ids=[f"{k}-{i}" for i, (k, *_) in enumerate(SAME_MESSAGE)])
def test_a_message_previews_the_same_sent_or_received(kind, sent, received):
    assert preview_text(kind, sent) == preview_text(kind, received)
    assert preview_text(kind, sent)  # never blank for these


@pytest.mark.parametrize("kind,content,expected", [
    ("document", {"caption": "see this", "filename": "a.pdf"}, "see this"),
    ("interactive", {"type": "list_reply", "list_reply": {"id": "x", "title": "Size M"}}, "Size M"),
    ("interactive", {"type": "nfm_reply", "nfm_reply": {"body": "Sent", "name": "flow"}}, "Sent"),
    ("interactive", {"type": "button", "action": {}}, "[interactive]"),
    ("template", {"name": "order_update", "language": {"code": "en"}}, "[template order_update]"),
    ("template", {}, "[template]"),
    ("reaction", {"message_id": "wamid.X", "emoji": ""}, ""),  # a removed reaction
    ("system", {"body": "Number changed"}, "Number changed"), ("system", {}, "[system]"),
    ("text", "not a dict", ""), ("order", {"catalog_id": "1"}, "[order]"),
])
def test_preview_cases(kind, content, expected):
    assert preview_text(kind, content) == expected


def test_preview_is_one_line_of_at_most_200_characters():
    assert len(preview_text("text", {"body": "x" * 5000})) == 200
    assert len(preview_text("interactive", {"body": {"text": "y" * 1025}})) == 200


# -- one cursor codec, one error code ---------------------------------------------------------------

def test_one_cursor_codec_and_one_error_code():
    # No other module builds or reads a base64 token for paging (the sandbox imitates Meta's own
    # cursors and group ids; security.py's base64 is a Fernet key).
    assert _files_matching(r"urlsafe_b64(en|de)code") == {
        "app/pagination.py", "app/sandbox/templates.py", "app/sandbox/groups.py", "app/security.py"}
    assert _files_matching(r"BAD_CURSOR") == set()
    from app.domains.inbox import queries as inbox

    assert not hasattr(inbox, "encode_cursor") or inbox.encode_cursor is encode_cursor
    assert not hasattr(inbox, "decode_cursor") or inbox.decode_cursor is decode_cursor
    assert InvalidCursor.error_code == "INVALID_CURSOR" and InvalidCursor.status_code == 400


def test_lists_in_the_same_order_share_cursors_and_refuse_other_orders():
    at, oid = datetime(2026, 5, 1, 12, 30, 0, 123000, tzinfo=UTC), PydanticObjectId()
    listed = encode_cursor(CONVERSATION_LISTING, at, oid)  # the inbox's and the API's conversation lists
    assert decode_cursor(CONVERSATION_LISTING, listed, key_type=datetime) == (at, oid)
    conversation = PydanticObjectId()
    older = encode_cursor(thread_listing(conversation), oid, oid)  # the inbox thread's and the API's messages
    assert decode_cursor(thread_listing(conversation), older) == (oid, oid)
    with pytest.raises(InvalidCursor):
        decode_cursor(CONVERSATION_LISTING, older)
    with pytest.raises(InvalidCursor):
        decode_cursor(thread_listing(PydanticObjectId()), older)  # another conversation's thread
    with pytest.raises(InvalidCursor):  # a conversation without messages: no date to page the inbox from
        decode_cursor(CONVERSATION_LISTING, encode_cursor(CONVERSATION_LISTING, None, oid), key_type=datetime)
    with pytest.raises(InvalidCursor):  # the inbox's thread links used to be bare message ids
        decode_cursor(thread_listing(conversation), str(oid))


# -- one retry delay --------------------------------------------------------------------------------

def test_one_retry_formula():
    """Exponential growth and jitter live in app/retry.py only. app/whatsapp/error_classes.py is the
    standalone WhatsApp library (it may import nothing of ours): Meta's suggested delay, fed to
    backoff(suggested=)."""
    growth = r"\*\* \(?(attempt|tries|min\(|max\()|\b2 \*\* |random\.uniform\("
    allowed = {"app/retry.py", "app/whatsapp/error_classes.py"}
    assert _files_matching(growth) <= allowed


@pytest.mark.parametrize("params", [
    {"base": 0.5, "cap": 30.0},                                           # worker supervisor
    {"base": 2.0},                                                        # webhook ingestion / read receipts
    {"base": 5.0, "cap": 300.0, "jitter": (0.8, 1.2)},                    # media downloads
    {"base": 2.0, "cap": 3600.0, "scale": 0.01, "jitter": (0.5, 1.0)},   # sends
    {"schedule": (10, 30, 60, 300), "scale": 2.0, "jitter": (0.9, 1.1)},  # event webhooks
    {"base": 1.0, "cap": 60.0, "factor": 4.0},
])
def test_backoff_is_monotone_capped_and_jitter_stays_in_bounds(params):
    exact = {k: v for k, v in params.items() if k != "jitter"}
    delays = [retry.backoff(n, **exact) for n in range(0, 200)]
    assert delays == sorted(delays) and delays[0] == delays[1] > 0  # attempt 0 counts as the first
    top = min(params.get("cap", float("inf")), max(params.get("schedule", (float("inf"),))))
    assert max(delays) <= top * params.get("scale", 1.0)
    lo, hi = params.get("jitter", (1.0, 1.0))
    for n in (1, 2, 5, 50, 10_000):
        for _ in range(50):
            assert lo * delays[min(n, 199)] <= retry.backoff(n, **params) <= hi * delays[min(n, 199)]


def test_backoff_keeps_each_callers_delays():
    assert [retry.backoff(n, base=0.5, cap=30.0) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert [retry.backoff(tries, base=2.0) for tries in (1, 2, 3, 4)] == [2, 4, 8, 16]  # was 2 ** tries
    assert [retry.backoff(n, schedule=(10, 30, 60)) for n in (1, 2, 3, 4, 99)] == [10, 30, 60, 60, 60]
    # A suggested delay (Meta's) wins over the formula, and is still capped and scaled.
    assert retry.backoff(3, base=2.0, cap=3600.0, suggested=60.0, scale=0.5) == 30.0
    assert retry.backoff(3, base=2.0, cap=3600.0, suggested=7200.0) == 3600.0
    assert retry.backoff(3, base=2.0, cap=3600.0, suggested=None) == 8.0


def test_backoff_jitter_uses_the_whole_range():
    random.seed(13)
    draws = [retry.backoff(1, base=10.0, jitter=(0.5, 1.0)) for _ in range(400)]
    assert min(draws) < 5.5 and max(draws) > 9.5


def test_the_callers_use_it():
    from app.domains.media.services import MAX_DELAY_SECONDS, retry_delay

    random.seed(1)
    assert all(0.8 * 5 <= retry_delay(1) <= 1.2 * 5 for _ in range(50))
    assert all(0.8 * 20 <= retry_delay(2, hint=10.0) <= 1.2 * 20 for _ in range(50))
    assert retry_delay(40) <= 1.2 * MAX_DELAY_SECONDS
