"""GraphClient against the running sandbox over real HTTP: every send type and every error class.

The sandbox serves on a real loopback port (one per module); each test resets it, registers
the number, lets the customer write (opening the 24-h window) and seeds two templates. A send
test asserts the exact JSON the sandbox received (``/sandbox/control/sent`` keeps the body as
received) against a dict written out here, and that ``SendResult.wamid`` is the sandbox's.
Error tests provoke the sandbox's real behaviour where it has one (token, body validation,
throughput, per-recipient pacing, templates, timeouts) and inject the rest of the code table
through ``POST /sandbox/control/faults``. Templates, media, number and profile live in
test_client_against_sandbox_resources.py, which reuses the fixtures below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.sandbox import SandboxState, create_sandbox_app
from app.sandbox.errors import spec_for
from app.whatsapp.client import GraphClient, SendResult
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
)
from app.whatsapp.payloads import text_parameters
from tests.support.receiver import Receiver
from tests.support.servers import serve

TOKEN = "tok-client-7001"
SECRET = "secret-client-7001"
PHONE_ID = "7001"
WABA_ID = "8001"
CUSTOMER = "15557654321"
TO = "+" + CUSTOMER
QUOTED = "<the customer's wamid>"  # replaced by the wamid of the customer's message in each test

POSITIONAL = {"name": "order_shipped", "language": "en_US", "category": "UTILITY", "components": [
    {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
    {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
    {"type": "FOOTER", "text": "Thanks for shopping"}]}
NAMED = {"name": "welcome_named", "language": "en_GB", "category": "MARKETING", "parameter_format": "NAMED",
         "components": [{"type": "BODY", "text": "Hello {{first_name}}, welcome to {{shop}}!"}]}


@dataclass
class World:
    """The running sandbox, a control client, the webhook receiver and the customer's first wamid."""

    state: SandboxState
    base: str
    control: httpx.AsyncClient
    receiver: Receiver
    hook_url: str
    wamid: str

    @property
    def graph_url(self) -> str:
        return f"{self.base}/sandbox/graph"

    async def register(self, **overrides: Any) -> None:
        body = {"phone_number_id": PHONE_ID, "waba_id": WABA_ID, "display_phone_number": "+1 555-000-7001",
                "access_token": TOKEN, "app_secret": SECRET, "webhook_url": self.hook_url, "mps": 80,
                "delivered_after_ms": None, "read_after_ms": None, **overrides}
        answer = await self.control.post("/numbers", json=body)
        assert answer.status_code == 201, answer.text

    async def inbound(self, message: dict[str, Any]) -> str:
        answer = await self.control.post("/inbound", json={
            "phone_number_id": PHONE_ID, "from": CUSTOMER, "name": "Ann Customer", "message": message})
        assert answer.status_code == 200, answer.text
        return answer.json()["wamid"]

    async def faults(self, **faults: Any) -> None:
        answer = await self.control.post("/faults", json={"phone_number_id": PHONE_ID, **faults})
        assert answer.status_code == 200, answer.text

    async def sent(self) -> list[dict[str, Any]]:
        answer = await self.control.get("/sent", params={"phone_number_id": PHONE_ID})
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[tuple[SandboxState, str, Receiver, str]]:
    state = SandboxState(webhook_retry_base_s=0.02, webhook_max_attempts=2, webhook_timeout_s=2.0, fault_hold_s=10)
    receiver = Receiver()
    with serve(create_sandbox_app(state)) as base, serve(receiver) as receiver_base:
        yield state, base, receiver, f"{receiver_base}/hook"


@pytest.fixture
async def world(sandbox_server: tuple[SandboxState, str, Receiver, str]) -> AsyncIterator[World]:
    state, base, receiver, hook_url = sandbox_server
    async with httpx.AsyncClient(base_url=f"{base}/sandbox/control", timeout=10) as control:
        assert (await control.post("/reset")).status_code == 200
        with receiver._lock:
            receiver.requests.clear()
        world = World(state, base, control, receiver, hook_url, wamid="")
        await world.register()
        world.wamid = await world.inbound({"type": "text", "text": {"body": "hi, is my order on its way?"}})
        for definition in (POSITIONAL, NAMED):
            seeded = await control.post("/templates", json={"waba_id": WABA_ID, **definition})
            assert seeded.status_code == 201, seeded.text
        yield world


@pytest.fixture
async def graph(world: World) -> AsyncIterator[GraphClient]:
    async with GraphClient(TOKEN, base_url=world.graph_url, api_version="v23.0", timeout=10) as client:
        yield client


# ---- every send type: the exact body Meta receives -----------------------------------------------

ENVELOPE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO}
MEDIA_ID = "4490709327384033"
LINK = "https://cdn.example.com/files/"
CARD = {"name": {"formatted_name": "Ben Supplier", "first_name": "Ben", "last_name": "Supplier"},
        "phones": [{"phone": "+1 555 010 2020", "type": "WORK", "wa_id": "15550102020"}],
        "emails": [{"email": "ben@example.com", "type": "WORK"}], "org": {"company": "Ben's Beans"}}
SECTIONS = [{"title": "Drinks", "rows": [{"id": "tea", "title": "Tea", "description": "Green or black"},
                                         {"id": "coffee", "title": "Coffee"}]},
            {"title": "Food", "rows": [{"id": "cake", "title": "Cake"}]}]

Send = Callable[[GraphClient, str], Awaitable[SendResult]]
SENDS: list[tuple[str, Send, dict[str, Any]]] = [
    ("text", lambda g, w: g.send_text(PHONE_ID, TO, "Hello Ann"),
     {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+15557654321", "type": "text",
      "text": {"body": "Hello Ann"}}),
    ("text with preview", lambda g, w: g.send_text(PHONE_ID, TO, "Track it: https://example.com/t/1",
                                                   preview_url=True),
     {**ENVELOPE, "type": "text", "text": {"body": "Track it: https://example.com/t/1", "preview_url": True}}),
    ("text replying", lambda g, w: g.send_text(PHONE_ID, TO, "Yes, it left today", reply_to=w),
     {**ENVELOPE, "type": "text", "text": {"body": "Yes, it left today"}, "context": {"message_id": QUOTED}}),
    ("image by id", lambda g, w: g.send_media(PHONE_ID, TO, "image", media_id=MEDIA_ID, caption="Your receipt"),
     {**ENVELOPE, "type": "image", "image": {"id": MEDIA_ID, "caption": "Your receipt"}}),
    ("image by link replying", lambda g, w: g.send_media(PHONE_ID, TO, "image", link=LINK + "a.png", reply_to=w),
     {**ENVELOPE, "type": "image", "image": {"link": LINK + "a.png"}, "context": {"message_id": QUOTED}}),
    ("video by id", lambda g, w: g.send_media(PHONE_ID, TO, "video", media_id=MEDIA_ID),
     {**ENVELOPE, "type": "video", "video": {"id": MEDIA_ID}}),
    ("video by link", lambda g, w: g.send_media(PHONE_ID, TO, "video", link=LINK + "v.mp4", caption="How-to"),
     {**ENVELOPE, "type": "video", "video": {"link": LINK + "v.mp4", "caption": "How-to"}}),
    ("audio by id", lambda g, w: g.send_media(PHONE_ID, TO, "audio", media_id=MEDIA_ID),
     {**ENVELOPE, "type": "audio", "audio": {"id": MEDIA_ID}}),
    ("audio by link", lambda g, w: g.send_media(PHONE_ID, TO, "audio", link=LINK + "note.ogg"),
     {**ENVELOPE, "type": "audio", "audio": {"link": LINK + "note.ogg"}}),
    ("document by id", lambda g, w: g.send_media(PHONE_ID, TO, "document", media_id=MEDIA_ID,
                                                 caption="Invoice", filename="invoice-17.pdf"),
     {**ENVELOPE, "type": "document", "document": {"id": MEDIA_ID, "caption": "Invoice",
                                                   "filename": "invoice-17.pdf"}}),
    ("document by link", lambda g, w: g.send_media(PHONE_ID, TO, "document", link=LINK + "t.pdf",
                                                   filename="terms.pdf"),
     {**ENVELOPE, "type": "document", "document": {"link": LINK + "t.pdf", "filename": "terms.pdf"}}),
    ("sticker by id", lambda g, w: g.send_media(PHONE_ID, TO, "sticker", media_id=MEDIA_ID),
     {**ENVELOPE, "type": "sticker", "sticker": {"id": MEDIA_ID}}),
    ("sticker by link", lambda g, w: g.send_media(PHONE_ID, TO, "sticker", link=LINK + "s.webp"),
     {**ENVELOPE, "type": "sticker", "sticker": {"link": LINK + "s.webp"}}),
    ("location", lambda g, w: g.send_location(PHONE_ID, TO, 37.4847, -122.1477, name="Cafe Uno",
                                              address="1 Hacker Way, Menlo Park"),
     {**ENVELOPE, "type": "location", "location": {"latitude": 37.4847, "longitude": -122.1477,
                                                   "name": "Cafe Uno", "address": "1 Hacker Way, Menlo Park"}}),
    ("contacts", lambda g, w: g.send_contacts(PHONE_ID, TO, [CARD]),
     {**ENVELOPE, "type": "contacts", "contacts": [
         {"name": {"formatted_name": "Ben Supplier", "first_name": "Ben", "last_name": "Supplier"},
          "phones": [{"phone": "+1 555 010 2020", "type": "WORK", "wa_id": "15550102020"}],
          "emails": [{"email": "ben@example.com", "type": "WORK"}], "org": {"company": "Ben's Beans"}}]}),
    ("reaction", lambda g, w: g.send_reaction(PHONE_ID, TO, w, "\U0001f44d"),
     {**ENVELOPE, "type": "reaction", "reaction": {"message_id": QUOTED, "emoji": "\U0001f44d"}}),
    ("reaction removed", lambda g, w: g.send_reaction(PHONE_ID, TO, w, ""),
     {**ENVELOPE, "type": "reaction", "reaction": {"message_id": QUOTED, "emoji": ""}}),
    ("buttons", lambda g, w: g.send_buttons(PHONE_ID, TO, "Pick a slot", [("am", "Morning"),
                                                                          {"id": "pm", "title": "Afternoon"}],
                                            header="Booking", footer="Reply to choose"),
     {**ENVELOPE, "type": "interactive", "interactive": {
         "type": "button", "header": {"type": "text", "text": "Booking"}, "body": {"text": "Pick a slot"},
         "footer": {"text": "Reply to choose"}, "action": {"buttons": [
             {"type": "reply", "reply": {"id": "am", "title": "Morning"}},
             {"type": "reply", "reply": {"id": "pm", "title": "Afternoon"}}]}}}),
    ("list", lambda g, w: g.send_list(PHONE_ID, TO, "Our menu", "View menu", SECTIONS, header="Cafe Uno",
                                      footer="Prices include tax"),
     {**ENVELOPE, "type": "interactive", "interactive": {
         "type": "list", "header": {"type": "text", "text": "Cafe Uno"}, "body": {"text": "Our menu"},
         "footer": {"text": "Prices include tax"}, "action": {"button": "View menu", "sections": [
             {"title": "Drinks", "rows": [{"id": "tea", "title": "Tea", "description": "Green or black"},
                                          {"id": "coffee", "title": "Coffee"}]},
             {"title": "Food", "rows": [{"id": "cake", "title": "Cake"}]}]}}}),
    ("template positional", lambda g, w: g.send_template(
        PHONE_ID, TO, "order_shipped", "en_US",
        [{"type": "header", "parameters": text_parameters(["A-17"])},
         {"type": "body", "parameters": text_parameters(["Ann", "A-17"])}], definition=POSITIONAL),
     {**ENVELOPE, "type": "template", "template": {"name": "order_shipped", "language": {"code": "en_US"},
                                                   "components": [
         {"type": "header", "parameters": [{"type": "text", "text": "A-17"}]},
         {"type": "body", "parameters": [{"type": "text", "text": "Ann"}, {"type": "text", "text": "A-17"}]}]}}),
    ("template named replying", lambda g, w: g.send_template(
        PHONE_ID, TO, "welcome_named", "en_GB",
        [{"type": "body", "parameters": text_parameters({"first_name": "Ann", "shop": "Cafe Uno"})}],
        definition=NAMED, reply_to=w),
     {**ENVELOPE, "type": "template", "context": {"message_id": QUOTED}, "template": {
         "name": "welcome_named", "language": {"code": "en_GB"}, "components": [{"type": "body", "parameters": [
             {"type": "text", "parameter_name": "first_name", "text": "Ann"},
             {"type": "text", "parameter_name": "shop", "text": "Cafe Uno"}]}]}}),
]


def _quoting(value: Any, wamid: str) -> Any:
    """``value`` with the QUOTED placeholder replaced by the customer's real wamid."""
    if isinstance(value, dict):
        return {key: _quoting(item, wamid) for key, item in value.items()}
    if isinstance(value, list):
        return [_quoting(item, wamid) for item in value]
    return wamid if value == QUOTED else value


@pytest.mark.parametrize(("send", "expected"), [case[1:] for case in SENDS], ids=[case[0] for case in SENDS])
async def test_every_send_type_reaches_the_sandbox_byte_for_byte(
        world: World, graph: GraphClient, send: Send, expected: dict[str, Any]) -> None:
    result = await send(graph, world.wamid)
    [sent] = await world.sent()
    assert sent["body"] == _quoting(expected, world.wamid)
    assert result.wamid == sent["wamid"] and result.wamid.startswith("wamid.")
    assert result.wa_id == CUSTOMER and sent["to"] == TO and sent["type"] == expected["type"]
    assert result.message_status == ("accepted" if expected["type"] == "template" else None)


async def test_mark_read_answers_true_and_is_not_a_send(world: World, graph: GraphClient) -> None:
    assert await graph.mark_read(PHONE_ID, world.wamid) is True
    assert await graph.mark_read(PHONE_ID, world.wamid, typing_indicator=True) is True
    assert await world.sent() == []
    with pytest.raises(ParameterError) as caught:  # only messages this number received can be marked
        await graph.mark_read(PHONE_ID, "wamid.not-ours")
    assert caught.value.code == 100 and caught.value.http_status == 400


# ---- errors the sandbox produces by itself ---------------------------------------------------------

def _check(error: GraphError, cls: type[GraphError], code: int | None, http_status: int | None,
           retryable: bool) -> None:
    assert type(error) is cls, repr(error)
    assert (error.code, error.http_status, error.retryable) == (code, http_status, retryable)
    assert error.agent_message.strip()
    assert TOKEN not in f"{error} {error!r} {error.to_dict()}"


async def test_wrong_token_is_auth_error_190(world: World) -> None:
    async with GraphClient("tok-wrong", base_url=world.graph_url, api_version="v23.0") as wrong:
        with pytest.raises(AuthError) as caught:
            await wrong.send_text(PHONE_ID, TO, "hi")
    _check(caught.value, AuthError, 190, 401, False)
    assert await world.sent() == []


@pytest.mark.parametrize(("body", "code", "field"), [
    ({**ENVELOPE, "type": "text", "text": {"body": "hi"}, "colour": "red"}, 100, "colour"),
    ({**ENVELOPE, "type": "text", "text": {"body": "x" * 4097}}, 100, "text['body']"),
    ({**ENVELOPE, "type": "image", "image": {"id": "1", "link": LINK + "a.png"}}, 100, "image"),
    ({**ENVELOPE, "type": "location", "location": {"latitude": 91, "longitude": 0}}, 131009, "latitude"),
    ({**ENVELOPE, "type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {
        "buttons": [{"type": "reply", "reply": {"id": f"b{i}", "title": f"B{i}"}} for i in range(4)]}}},
     131009, "buttons"),
    ({**ENVELOPE, "to": "call me", "type": "text", "text": {"body": "hi"}}, 131009, "to"),
], ids=["unknown key", "text too long", "id and link", "latitude", "four buttons", "bad recipient"])
async def test_invalid_bodies_are_parameter_errors(
        world: World, graph: GraphClient, body: dict[str, Any], code: int, field: str) -> None:
    with pytest.raises(ParameterError) as caught:
        await graph.send(PHONE_ID, body)  # send() passes raw bodies on: the builders would refuse these
    _check(caught.value, ParameterError, code, 400, False)
    assert field in (caught.value.details or "") and field in caught.value.agent_message
    assert await world.sent() == []


async def test_over_the_numbers_throughput_is_rate_limit_130429(world: World, graph: GraphClient) -> None:
    await world.register(mps=1)
    # At 1 message per second, two sends in a row meet the limit; a stalled machine gets more tries.
    with pytest.raises(RateLimitError) as caught:
        for index in range(30):
            await graph.send_text(PHONE_ID, f"+1555000{index:04d}", "flash sale")
    _check(caught.value, RateLimitError, 130429, 400, True)
    assert caught.value.backoff(2) == 2 * caught.value.backoff(1)


async def test_burst_to_one_recipient_is_recipient_rate_limit_131056(world: World, graph: GraphClient) -> None:
    await world.register(recipient_burst=2, recipient_interval_s=600)
    for _ in range(2):
        await graph.send_text(PHONE_ID, TO, "again")
    with pytest.raises(RecipientRateLimitError) as caught:
        await graph.send_text(PHONE_ID, TO, "and again")
    _check(caught.value, RecipientRateLimitError, 131056, 400, True)
    assert caught.value.backoff(2) == 4 * caught.value.backoff(1)  # Meta's 4^n
    await graph.send_text(PHONE_ID, "+15550009999", "someone else")  # other recipients are unaffected
    assert len(await world.sent()) == 3


@pytest.mark.parametrize(("name", "language", "values", "code", "http_status"), [
    ("no_such_template", "en_US", ["Ann"], 132001, 404),
    ("order_shipped", "fr_FR", ["Ann", "A-17"], 132001, 404),
    ("order_shipped", "en_US", ["Ann"], 132000, 400),
], ids=["unknown name", "unknown language", "wrong parameter count"])
async def test_template_errors(world: World, graph: GraphClient, name: str, language: str, values: list[str],
                               code: int, http_status: int) -> None:
    components = [{"type": "header", "parameters": text_parameters(["A-17"])},
                  {"type": "body", "parameters": text_parameters(values)}]
    with pytest.raises(TemplateError) as caught:
        await graph.send_template(PHONE_ID, TO, name, language, components)  # no definition: Meta judges
    _check(caught.value, TemplateError, code, http_status, False)


async def test_client_timeout_is_graph_timeout(world: World) -> None:
    await world.faults(timeout_rate=1.0)
    async with GraphClient(TOKEN, base_url=world.graph_url, api_version="v23.0", timeout=0.3) as impatient:
        with pytest.raises(GraphTimeout) as caught:
            await impatient.send_text(PHONE_ID, TO, "anyone there?")
    _check(caught.value, GraphTimeout, None, None, True)
    assert await world.sent() == []


# ---- every code of the table, injected as a fault ---------------------------------------------------

# WHATSAPP.md's table written out independently of ERROR_RULES: (class, retryable) per code.
DOCUMENTED: dict[int, tuple[type[GraphError], bool]] = {
    **dict.fromkeys((0, 190), (AuthError, False)),
    **dict.fromkeys((3, 10, 200, 250, 299, 131005), (GraphPermissionError, False)),
    **dict.fromkeys((4, 80007, 130429, 131048), (RateLimitError, True)),
    131049: (RateLimitError, False),
    131056: (RecipientRateLimitError, True),
    **dict.fromkeys((1, 2, 131016, 131057, 131000), (TransientError, True)),
    **dict.fromkeys((100, 131008, 131009, 135000, 131051), (ParameterError, False)),
    **dict.fromkeys((131021, 131026, 131050, 130472), (RecipientError, False)),
    131047: (WindowClosedError, False),
    **dict.fromkeys((131031, 368, 131042, 131045, 133010, 130497), (AccountError, False)),
    **dict.fromkeys((131052, 131053), (MediaError, False)),
    **dict.fromkeys((132000, 132001, 132005, 132007, 132012, 132015, 132016), (TemplateError, False)),
}


def test_every_documented_code_has_a_rule() -> None:
    # WHATSAPP.md's rows; the full list of Meta's codes is tests/unit/test_error_table.py's.
    assert {code for code in DOCUMENTED if not 200 <= code <= 299} <= set(ERROR_RULES)


@pytest.mark.parametrize("code", sorted(DOCUMENTED))
async def test_every_code_maps_to_its_class_over_http(world: World, graph: GraphClient, code: int) -> None:
    http_status = spec_for(code).http_status  # Meta's status for the code, as the sandbox answers it
    await world.faults(error_rate=1.0, http_status=http_status, error_code=code)
    with pytest.raises(GraphError) as caught:
        await graph.send_text(PHONE_ID, TO, "hello")
    cls, retryable = DOCUMENTED[code]
    _check(caught.value, cls, code, http_status, retryable)
    assert caught.value.details == "Error injected by the sandbox (faults)."
    assert await world.sent() == []


@pytest.mark.parametrize(("http_status", "code", "cls", "retryable"), [
    (500, 987654, TransientError, True),  # an unknown code on a 5xx is transient ...
    (400, 987654, UnknownError, False),  # ... and permanent otherwise
    (502, None, TransientError, True),  # the sandbox picks 131000 for a bare 5xx
    (429, None, RateLimitError, True),  # ... and 130429 for a bare 429
])
async def test_codes_outside_the_table(world: World, graph: GraphClient, http_status: int, code: int | None,
                                       cls: type[GraphError], retryable: bool) -> None:
    await world.faults(error_rate=1.0, http_status=http_status, error_code=code)
    with pytest.raises(GraphError) as caught:
        await graph.send_text(PHONE_ID, TO, "hello")
    _check(caught.value, cls, code if code is not None else {502: 131000, 429: 130429}[http_status],
           http_status, retryable)
