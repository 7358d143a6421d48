"""GraphClient over httpx.MockTransport: the exact request of every call, errors, paging, media
(and how the send path's aiohttp failures are mapped; its requests: tests/integration/test_send_http.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import traceback
from collections.abc import Callable

import aiohttp
import httpx
import pytest

from app.whatsapp.client import GraphClient, MediaInfo, SendResult
from app.whatsapp.errors import (
    GraphConnectionError,
    GraphError,
    GraphTimeout,
    MediaChecksumMismatch,
    MediaTooLarge,
    MediaUrlExpired,
    TransientError,
    WindowClosedError,
)
from app.whatsapp.payloads import PayloadError
from tests.unit.test_wa_errors import TABLE, meta_body

TOKEN = "EAAG-secret-token-value-123"
PNID = "106540352242922"
WABA = "102290129340398"
TO = "+16505551234"
GRAPH = "https://graph.facebook.com/v23.0"
SEND_ANSWER = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": TO, "wa_id": "16505551234"}],
    "messages": [{"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA", "message_status": "accepted"}],
}


class Recorder:
    """A MockTransport handler that records requests and answers from a queue (or one answer)."""

    def __init__(self, *answers: httpx.Response | Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def make_client(*answers, **kwargs) -> tuple[GraphClient, Recorder]:
    recorder = Recorder(*answers)
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return GraphClient(TOKEN, http=http, **kwargs), recorder


def ok(body=None, status=200) -> httpx.Response:
    return httpx.Response(status, json=SEND_ANSWER if body is None else body)


def assert_graph_call(request: httpx.Request, method: str, url: str) -> None:
    assert request.method == method
    assert str(request.url) == url
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


# -- sends: exact JSON, URL and auth (one per type) ----------------------------------------------

SEND_CASES = [
    ("text", lambda c: c.send_text(PNID, "16505551234", "Hello"), {"type": "text", "text": {"body": "Hello"}}),
    (
        "text reply preview",
        lambda c: c.send_text(PNID, TO, "https://x.example", preview_url=True, reply_to="wamid.IN"),
        {
            "type": "text",
            "text": {"body": "https://x.example", "preview_url": True},
            "context": {"message_id": "wamid.IN"},
        },
    ),
    (
        "image id",
        lambda c: c.send_media(PNID, TO, "image", media_id="998", caption="Look"),
        {"type": "image", "image": {"id": "998", "caption": "Look"}},
    ),
    (
        "video link",
        lambda c: c.send_media(PNID, TO, "video", link="https://cdn.example/v.mp4"),
        {"type": "video", "video": {"link": "https://cdn.example/v.mp4"}},
    ),
    (
        "document",
        lambda c: c.send_media(
            PNID, TO, "document", media_id="7", caption="Invoice", filename="inv.pdf", reply_to="wamid.Q"
        ),
        {
            "type": "document",
            "document": {"id": "7", "caption": "Invoice", "filename": "inv.pdf"},
            "context": {"message_id": "wamid.Q"},
        },
    ),
    ("audio", lambda c: c.send_media(PNID, TO, "audio", media_id="5"), {"type": "audio", "audio": {"id": "5"}}),
    ("sticker", lambda c: c.send_media(PNID, TO, "sticker", media_id="6"), {"type": "sticker", "sticker": {"id": "6"}}),
    (
        "location",
        lambda c: c.send_location(PNID, TO, 37.758056, -122.425332, name="META HQ", address="1 Hacker Way"),
        {
            "type": "location",
            "location": {"latitude": 37.758056, "longitude": -122.425332, "name": "META HQ", "address": "1 Hacker Way"},
        },
    ),
    (
        "contacts",
        lambda c: c.send_contacts(
            PNID,
            TO,
            [{"name": {"formatted_name": "Ana Lima"}, "phones": [{"phone": "+55 11 5555 0000", "type": "CELL"}]}],
        ),
        {
            "type": "contacts",
            "contacts": [
                {"name": {"formatted_name": "Ana Lima"}, "phones": [{"phone": "+55 11 5555 0000", "type": "CELL"}]}
            ],
        },
    ),
    (
        "buttons",
        lambda c: c.send_buttons(PNID, TO, "Confirm?", [("yes", "Yes"), ("no", "No")], footer="Reply below"),
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "Confirm?"},
                "footer": {"text": "Reply below"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                        {"type": "reply", "reply": {"id": "no", "title": "No"}},
                    ]
                },
            },
        },
    ),
    (
        "list",
        lambda c: c.send_list(
            PNID,
            TO,
            "Pick shipping",
            "Options",
            [{"title": "Fast", "rows": [{"id": "x", "title": "Express", "description": "1 day"}]}],
            header="Shipping",
        ),
        {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "header": {"type": "text", "text": "Shipping"},
                "body": {"text": "Pick shipping"},
                "action": {
                    "button": "Options",
                    "sections": [{"title": "Fast", "rows": [{"id": "x", "title": "Express", "description": "1 day"}]}],
                },
            },
        },
    ),
    (
        "template",
        lambda c: c.send_template(
            PNID, TO, "order_update", "en_US", [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]
        ),
        {
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "en_US"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
            },
        },
    ),
    (
        "reaction",
        lambda c: c.send_reaction(PNID, TO, "wamid.IN", "👍"),
        {"type": "reaction", "reaction": {"message_id": "wamid.IN", "emoji": "👍"}},
    ),
]


@pytest.mark.parametrize(("send", "expected"), [(s, e) for _, s, e in SEND_CASES], ids=[n for n, *_ in SEND_CASES])
async def test_send_posts_the_exact_body(send, expected):
    client, recorder = make_client(ok())
    result = await send(client)
    request = recorder.last
    assert_graph_call(request, "POST", f"{GRAPH}/{PNID}/messages")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        **expected,
    }
    assert result == SendResult("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA", "16505551234", "accepted")


async def test_send_passes_a_prebuilt_body_through():
    client, recorder = make_client(ok({"messages": [{"id": "wamid.1"}], "contacts": [{"wa_id": "1"}]}))
    body = {"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {"body": "x"}}
    assert await client.send(PNID, body) == SendResult("wamid.1", "1", None)
    assert json.loads(recorder.last.content) == body


async def test_send_without_message_id_is_an_error():
    client, _ = make_client(ok({"messaging_product": "whatsapp"}))
    with pytest.raises(GraphError, match="no message id"):
        await client.send_text(PNID, TO, "x")


async def test_invalid_payload_never_reaches_the_network():
    client, recorder = make_client(ok())
    with pytest.raises(PayloadError):
        await client.send_text(PNID, TO, "x" * 4097)
    assert recorder.requests == []


async def test_mark_read_with_typing_indicator():
    client, recorder = make_client(ok({"success": True}))
    assert await client.mark_read(PNID, "wamid.IN", typing_indicator=True) is True
    assert_graph_call(recorder.last, "POST", f"{GRAPH}/{PNID}/messages")
    assert json.loads(recorder.last.content) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN",
        "typing_indicator": {"type": "text"},
    }


async def test_custom_base_url_version_and_timeout():
    client, recorder = make_client(
        ok(), base_url="http://127.0.0.1:8000/sandbox/graph/", api_version="v24.0", timeout=2.5
    )
    await client.send_text(PNID, TO, "x")
    assert str(recorder.last.url) == f"http://127.0.0.1:8000/sandbox/graph/v24.0/{PNID}/messages"
    assert recorder.last.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "cls", "retryable"), TABLE)
async def test_every_error_code_raises_its_class(code, cls, retryable):
    client, _ = make_client(httpx.Response(400, json=meta_body(code)))
    with pytest.raises(cls) as caught:
        await client.send_text(PNID, TO, "x")
    assert type(caught.value) is cls
    assert (caught.value.code, caught.value.retryable, caught.value.http_status) == (code, retryable, 400)
    assert caught.value.fbtrace_id == "AbCdEf123"


async def test_5xx_html_answer_is_transient():
    client, _ = make_client(httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(TransientError) as caught:
        await client.get_media("123")
    assert caught.value.http_status == 502 and caught.value.retryable


def _raise(exc_type):
    def handler(request):
        raise exc_type("boom with " + request.headers["authorization"], request=request)

    return handler


@pytest.mark.parametrize(
    ("exc_type", "ours"),
    [
        (httpx.ReadTimeout, GraphTimeout),
        (httpx.ConnectTimeout, GraphTimeout),
        (httpx.ConnectError, GraphConnectionError),
        (httpx.RemoteProtocolError, GraphConnectionError),
    ],
)
async def test_transport_failures_become_our_errors_without_the_token(exc_type, ours):
    client, _ = make_client(_raise(exc_type))
    with pytest.raises(ours) as caught:
        await client.send_text(PNID, TO, "x")
    error = caught.value
    assert error.retryable
    # The httpx exception (whose request holds our headers) is not chained at all.
    assert error.__cause__ is None and error.__context__ is None
    rendered = "".join(traceback.format_exception(error)) + repr(error) + str(error.to_dict())
    assert TOKEN not in rendered
    assert TOKEN.encode() not in pickle.dumps(error)


class _FailingHTTP:
    """Stands in for the send path's AiohttpClient: every request fails with aiohttp's exception."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def request(self, method, url, **kwargs):
        raise self.error


@pytest.mark.parametrize(
    ("error", "ours"),
    [
        (aiohttp.ConnectionTimeoutError("connecting timed out"), GraphTimeout),
        (aiohttp.SocketTimeoutError("no answer in time"), GraphTimeout),
        (TimeoutError(), GraphTimeout),  # aiohttp's total timeout (waiting for a free connection too)
        (aiohttp.ClientOSError(104, "Connection reset by peer"), GraphConnectionError),
        (aiohttp.ServerDisconnectedError(), GraphConnectionError),
        (aiohttp.ClientPayloadError("the answer is larger than expected"), GraphConnectionError),
    ],
)
async def test_aiohttp_failures_become_our_retryable_errors(error, ours):
    error.args = (*error.args, f"Bearer {TOKEN}")  # as if the exception held our headers
    client = GraphClient(TOKEN, http=_FailingHTTP(error))
    with pytest.raises(ours) as caught:
        await client.send_text(PNID, TO, "x")
    assert caught.value.retryable
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert TOKEN not in "".join(traceback.format_exception(caught.value)) + repr(caught.value)


async def test_download_transport_failure_is_ours_too():
    client, _ = make_client(_raise(httpx.ReadTimeout))
    with pytest.raises(GraphTimeout) as caught:
        await client.download_media("https://lookaside.fbsbx.com/x", max_bytes=10)
    assert caught.value.__context__ is None and TOKEN not in str(caught.value)


async def test_token_is_absent_from_repr_and_str():
    client, _ = make_client(ok())
    for text in (repr(client), str(client), f"{client}"):
        assert TOKEN not in text
    assert repr(client) == "GraphClient(base_url='https://graph.facebook.com', api_version='v23.0')"
    assert TOKEN not in str(vars(client))


def test_empty_token_is_refused():
    with pytest.raises(ValueError):
        GraphClient("")


async def test_shared_http_client_is_not_closed():
    http = httpx.AsyncClient(transport=httpx.MockTransport(Recorder(ok())))
    async with GraphClient(TOKEN, http=http) as client:
        await client.send_text(PNID, TO, "x")
    assert not http.is_closed
    await http.aclose()


async def test_owned_http_client_is_closed():
    client = GraphClient(TOKEN)
    await client.aclose()
    assert client._http.is_closed


# -- media -------------------------------------------------------------------------------------------


async def test_upload_media_is_multipart():
    client, recorder = make_client(ok({"id": "1037543291543636"}))
    media_id = await client.upload_media(PNID, b"\x89PNG-bytes", "image/png", "photo.png")
    assert media_id == "1037543291543636"
    request = recorder.last
    assert_graph_call(request, "POST", f"{GRAPH}/{PNID}/media")
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = request.content
    assert b'name="messaging_product"\r\n\r\nwhatsapp\r\n' in body
    assert b'name="type"\r\n\r\nimage/png\r\n' in body
    assert b'name="file"; filename="photo.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG-bytes\r\n' in body


async def test_get_media():
    answer = {
        "messaging_product": "whatsapp",
        "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",
        "mime_type": "image/jpeg",
        "sha256": "abc",
        "file_size": "303833",
        "id": "1",
    }
    client, recorder = make_client(ok(answer))
    info = await client.get_media("1")
    assert_graph_call(recorder.last, "GET", f"{GRAPH}/1")
    assert info == MediaInfo("1", answer["url"], "image/jpeg", "abc", 303833)


async def test_delete_media():
    client, recorder = make_client(ok({"success": True}))
    assert await client.delete_media("1") is True
    assert_graph_call(recorder.last, "DELETE", f"{GRAPH}/1")


DATA = b"x" * 3000
LOOKASIDE = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2"


async def test_download_media_checks_sha256_hex_and_base64():
    client, recorder = make_client(httpx.Response(200, content=DATA))
    digest = hashlib.sha256(DATA).digest()
    assert await client.download_media(LOOKASIDE, max_bytes=3000, expected_sha256=digest.hex()) == DATA
    assert (
        await client.download_media(LOOKASIDE, max_bytes=3000, expected_sha256=base64.b64encode(digest).decode())
        == DATA
    )
    assert_graph_call(recorder.last, "GET", LOOKASIDE)


async def test_download_media_sha256_mismatch():
    client, _ = make_client(httpx.Response(200, content=DATA))
    with pytest.raises(MediaChecksumMismatch):
        await client.download_media(LOOKASIDE, max_bytes=10_000, expected_sha256=hashlib.sha256(b"other").hexdigest())


async def test_download_media_refuses_an_announced_size_over_the_cap():
    client, _ = make_client(httpx.Response(200, content=DATA))
    with pytest.raises(MediaTooLarge):
        await client.download_media(LOOKASIDE, max_bytes=2999)


async def test_download_media_stops_reading_past_the_cap():
    served = []

    class Chunks(httpx.AsyncByteStream):
        async def __aiter__(self):
            for index in range(100):
                served.append(index)
                yield b"y" * 1024

    client, _ = make_client(lambda request: httpx.Response(200, stream=Chunks()))
    with pytest.raises(MediaTooLarge) as caught:
        await client.download_media(LOOKASIDE, max_bytes=3 * 1024)
    assert len(served) == 4  # the 4th chunk crossed the cap; nothing after it was read
    assert "3072" in str(caught.value)


async def test_download_media_404_means_expired_url():
    client, _ = make_client(httpx.Response(404, text="Not found"))
    with pytest.raises(MediaUrlExpired) as caught:
        await client.download_media(LOOKASIDE, max_bytes=10)
    assert caught.value.retryable


async def test_download_media_other_failures_are_graph_errors():
    client, _ = make_client(httpx.Response(401, json=meta_body(190)))
    with pytest.raises(GraphError) as caught:
        await client.download_media(LOOKASIDE, max_bytes=10)
    assert caught.value.code == 190


async def test_token_only_goes_to_meta_or_our_own_host():
    client, recorder = make_client(httpx.Response(200, content=b"ok"), base_url="http://sandbox.test/sandbox/graph")
    await client.download_media("https://evil.example/steal", max_bytes=10)
    assert "authorization" not in recorder.last.headers
    await client.download_media("http://sandbox.test/sandbox/media/1", max_bytes=10)
    assert recorder.last.headers["authorization"] == f"Bearer {TOKEN}"
    await client.download_media(LOOKASIDE, max_bytes=10)
    assert recorder.last.headers["authorization"] == f"Bearer {TOKEN}"


# -- templates ---------------------------------------------------------------------------------------


def page(names, after=None):
    body = {"data": [{"name": name, "language": "en_US", "status": "APPROVED", "id": name + "-id"} for name in names]}
    body["paging"] = {"cursors": {"before": "B", "after": after or "LAST"}}
    if after:
        body["paging"]["next"] = f"{GRAPH}/{WABA}/message_templates?after={after}&access_token=should-not-be-used"
    return ok(body)


async def test_list_templates_follows_every_page():
    client, recorder = make_client(page(["a", "b"], after="C1"), page(["c"], after="C2"), page(["d"]))
    templates = await client.list_templates(WABA)
    assert [t["name"] for t in templates] == ["a", "b", "c", "d"]
    assert [str(r.url) for r in recorder.requests] == [
        f"{GRAPH}/{WABA}/message_templates",
        f"{GRAPH}/{WABA}/message_templates?after=C1",
        f"{GRAPH}/{WABA}/message_templates?after=C2",
    ]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in recorder.requests)


async def test_list_templates_by_name_keeps_the_filter_on_every_page():
    client, recorder = make_client(page(["a"], after="C1"), page(["a"]))
    await client.list_templates(WABA, name="a")
    assert [r.url.params.get("name") for r in recorder.requests] == ["a", "a"]
    assert recorder.requests[1].url.params["after"] == "C1"


async def test_list_templates_follows_next_link_without_cursor():
    first = ok({"data": [{"name": "a"}], "paging": {"next": f"{GRAPH}/{WABA}/message_templates?page=2"}})
    client, recorder = make_client(first, ok({"data": [{"name": "b"}]}))
    assert [t["name"] for t in await client.list_templates(WABA)] == ["a", "b"]
    assert str(recorder.last.url) == f"{GRAPH}/{WABA}/message_templates?page=2"


async def test_list_templates_stops_on_a_repeated_cursor():
    client, recorder = make_client(page(["a"], after="SAME"))
    await client.list_templates(WABA)
    assert len(recorder.requests) == 2


async def test_create_template():
    definition = {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hi {{1}}", "example": {"body_text": [["Ana"]]}}],
    }
    answer = {"id": "594425479261596", "status": "PENDING", "category": "UTILITY"}
    client, recorder = make_client(ok(answer))
    assert await client.create_template(WABA, definition) == answer
    assert_graph_call(recorder.last, "POST", f"{GRAPH}/{WABA}/message_templates")
    assert json.loads(recorder.last.content) == definition


async def test_delete_template():
    client, recorder = make_client(ok({"success": True}))
    assert await client.delete_template(WABA, "order_update", hsm_id="594425479261596") is True
    assert_graph_call(
        recorder.last, "DELETE", f"{GRAPH}/{WABA}/message_templates?name=order_update&hsm_id=594425479261596"
    )
    await client.delete_template(WABA, "order_update")
    assert str(recorder.last.url) == f"{GRAPH}/{WABA}/message_templates?name=order_update"


async def test_template_rejection_is_a_graph_error():
    client, _ = make_client(httpx.Response(400, json=meta_body(100, "Invalid parameter", "Name already exists")))
    with pytest.raises(GraphError) as caught:
        await client.create_template(WABA, {"name": "x"})
    assert caught.value.details == "Name already exists"


# -- phone number and profile ----------------------------------------------------------------------


async def test_get_phone_number_asks_for_the_default_fields():
    answer = {"verified_name": "Lucky Shrub", "quality_rating": "GREEN", "id": PNID}
    client, recorder = make_client(ok(answer))
    assert await client.get_phone_number(PNID) == answer
    assert_graph_call(
        recorder.last,
        "GET",
        str(
            httpx.URL(
                f"{GRAPH}/{PNID}",
                params={
                    "fields": (
                        "verified_name,display_phone_number,quality_rating,messaging_limit_tier,throughput,status,"
                        "code_verification_status,name_status"
                    )
                },
            )
        ),
    )
    await client.get_phone_number(PNID, fields=("throughput",))
    assert recorder.last.url.params["fields"] == "throughput"


async def test_business_profile_is_unwrapped():
    profile = {"about": "Succulents", "email": "hi@shrub.example", "messaging_product": "whatsapp"}
    client, recorder = make_client(ok({"data": [profile]}))
    assert await client.get_business_profile(PNID) == profile
    assert recorder.last.url.path == f"/v23.0/{PNID}/whatsapp_business_profile"
    assert recorder.last.url.params["fields"] == "about,address,description,email,profile_picture_url,websites,vertical"


async def test_update_business_profile():
    client, recorder = make_client(ok({"success": True}))
    assert await client.update_business_profile(PNID, {"about": "New", "websites": ["https://shrub.example"]}) is True
    assert_graph_call(recorder.last, "POST", f"{GRAPH}/{PNID}/whatsapp_business_profile")
    assert json.loads(recorder.last.content) == {
        "messaging_product": "whatsapp",
        "about": "New",
        "websites": ["https://shrub.example"],
    }


async def test_window_closed_through_the_client():
    client, _ = make_client(httpx.Response(400, json=meta_body(131047, "(#131047) Re-engagement message")))
    with pytest.raises(WindowClosedError) as caught:
        await client.send_text(PNID, TO, "x")
    assert "send a template" in caught.value.agent_message


@pytest.mark.parametrize(
    ("answer", "call"),
    [
        (httpx.Response(200, json={"messaging_product": "whatsapp"}), lambda c: c.get_media("1")),
        (httpx.Response(200, json={}), lambda c: c.upload_media(PNID, b"x", "image/png", "x.png")),
        (httpx.Response(200, json=[1, 2]), lambda c: c.get_phone_number(PNID)),
        (httpx.Response(200, text="<html>ok</html>"), lambda c: c.get_business_profile(PNID)),
    ],
)
async def test_malformed_success_answers_are_graph_errors(answer, call):
    client, _ = make_client(answer)
    with pytest.raises(GraphError):
        await call(client)


async def test_logs_never_hold_the_token(caplog):
    first = ok({"data": [], "paging": {"next": f"{GRAPH}/{WABA}/message_templates?access_token={TOKEN}&page=2"}})
    client, _ = make_client(first, httpx.Response(400, json=meta_body(190)))
    caplog.set_level("DEBUG", logger="app.whatsapp.client")
    with pytest.raises(GraphError):
        await client.list_templates(WABA)
    assert len(caplog.records) >= 2
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
