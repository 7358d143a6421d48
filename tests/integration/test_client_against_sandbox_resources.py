"""GraphClient against the running sandbox over real HTTP: templates, media, phone number, profile.

Templates: 250 seeded ones come back from ``list_templates`` across several pages (counted on
the wire against the sandbox's page size), create answers PENDING, delete removes. Media: a
real PNG goes up, its metadata and bytes come back sha256-checked; the size cap, a wrong hash
and an expired URL raise their classes; an inbound image is fetched with the base64 sha256
from its signed webhook. The fixtures come from test_client_against_sandbox.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import math
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from app.sandbox.graph_templates import DEFAULT_LIMIT
from app.whatsapp.client import DEFAULT_PHONE_FIELDS, GraphClient
from app.whatsapp.errors import (
    MediaChecksumMismatch,
    MediaTooLarge,
    MediaUrlExpired,
    ParameterError,
    TemplateError,
)
from app.whatsapp.media import max_bytes
from app.whatsapp.signature import verify
from app.whatsapp.webhooks import iter_messages, parse_envelope
from tests.integration import test_client_against_sandbox as shared
from tests.integration.test_client_against_sandbox import (
    ENVELOPE,
    NAMED,
    PHONE_ID,
    POSITIONAL,
    SECRET,
    TO,
    TOKEN,
    WABA_ID,
    World,
)

# The shared fixtures, bound here so pytest finds them in this module too.
sandbox_server, world, graph = shared.sandbox_server, shared.world, shared.graph


@pytest.fixture
async def counted(world: World) -> AsyncIterator[tuple[GraphClient, list[httpx.Request]]]:
    """A GraphClient on an httpx client that records every request it makes."""
    requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        requests.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        yield GraphClient(TOKEN, base_url=world.graph_url, api_version="v23.0", http=http), requests


def _png() -> bytes:
    image = Image.new("RGB", (64, 48), (20, 120, 200))
    for x in range(64):
        image.putpixel((x, x % 48), (255, 255, 0))  # not a flat colour: compression must keep every byte
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# ---- templates --------------------------------------------------------------------------------------

async def test_list_templates_walks_every_page(
        world: World, counted: tuple[GraphClient, list[httpx.Request]]) -> None:
    graph, requests = counted
    for index in range(250):
        world.state.seed_template(WABA_ID, f"promo_{index:03d}", "en_US", "MARKETING",
                                  [{"type": "BODY", "text": f"Offer number {index}"}])
    templates = await graph.list_templates(WABA_ID)
    names = [t["name"] for t in templates]
    assert names == ["order_shipped", "welcome_named", *(f"promo_{i:03d}" for i in range(250))]
    assert len({t["id"] for t in templates}) == 252
    pages = [r for r in requests if r.url.path.endswith(f"/v23.0/{WABA_ID}/message_templates")]
    assert len(pages) == len(requests) == math.ceil(252 / DEFAULT_LIMIT) > 1
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in pages)
    assert "after" not in pages[0].url.params and all("after" in r.url.params for r in pages[1:])
    assert templates[0] == {"name": "order_shipped", "parameter_format": "POSITIONAL", "language": "en_US",
                            "status": "APPROVED", "category": "UTILITY", "id": templates[0]["id"],
                            "components": POSITIONAL["components"]}

    for index in range(3):  # the same name in more languages
        world.state.seed_template(WABA_ID, "promo_1", f"x{index}", "MARKETING", [{"type": "BODY", "text": "Hi"}])
    requests.clear()
    # Meta's name filter matches substrings: the sandbox answers promo_1 and promo_100..199 over
    # several pages (the filter kept on each); the client keeps only the exact name.
    filtered = await graph.list_templates(WABA_ID, name="promo_1")
    assert [(t["name"], t["language"]) for t in filtered] == [("promo_1", f"x{i}") for i in range(3)]
    assert len(requests) == math.ceil(103 / DEFAULT_LIMIT) > 1
    assert all(r.url.params["name"] == "promo_1" for r in requests)


async def test_create_then_delete_template(world: World, graph: GraphClient) -> None:
    definition = {"name": "pickup_ready", "language": "en_US", "category": "UTILITY", "components": [
        {"type": "BODY", "text": "Hi {{1}}, your order is ready at {{2}}.",
         "example": {"body_text": [["Ann", "Cafe Uno"]]}}]}
    created = await graph.create_template(WABA_ID, definition)
    assert created == {"id": created["id"], "status": "PENDING", "category": "UTILITY"}
    [listed] = await graph.list_templates(WABA_ID, name="pickup_ready")
    assert (listed["id"], listed["status"]) == (created["id"], "PENDING")
    with pytest.raises(TemplateError) as caught:  # a PENDING template cannot be sent yet
        await graph.send_template(PHONE_ID, TO, "pickup_ready", "en_US",
                                  [{"type": "body", "parameters": [{"type": "text", "text": "Ann"},
                                                                   {"type": "text", "text": "Cafe Uno"}]}])
    assert caught.value.code == 132001

    second = await graph.create_template(WABA_ID, {**definition, "language": "de"})
    assert await graph.delete_template(WABA_ID, "pickup_ready", hsm_id=second["id"]) is True
    assert [t["language"] for t in await graph.list_templates(WABA_ID, name="pickup_ready")] == ["en_US"]
    assert await graph.delete_template(WABA_ID, "pickup_ready") is True
    assert await graph.list_templates(WABA_ID, name="pickup_ready") == []
    assert {t["name"] for t in await graph.list_templates(WABA_ID)} == {POSITIONAL["name"], NAMED["name"]}
    with pytest.raises(ParameterError):
        await graph.delete_template(WABA_ID, "pickup_ready")


# ---- media -----------------------------------------------------------------------------------------

async def test_media_round_trip_with_sha256(world: World, graph: GraphClient) -> None:
    png = _png()
    media_id = await graph.upload_media(PHONE_ID, png, "image/png", "chart.png")
    info = await graph.get_media(media_id)
    assert (info.id, info.mime_type, info.file_size) == (media_id, "image/png", len(png))
    assert info.sha256 == hashlib.sha256(png).hexdigest()
    assert info.url.startswith(world.base)
    downloaded = await graph.download_media(info.url, max_bytes=max_bytes("image"), expected_sha256=info.sha256)
    assert downloaded == png
    assert Image.open(io.BytesIO(downloaded)).size == (64, 48)

    result = await graph.send_media(PHONE_ID, TO, "image", media_id=media_id, caption="This week")
    [sent] = await world.sent()
    assert sent["wamid"] == result.wamid
    assert sent["body"] == {**ENVELOPE, "type": "image", "image": {"id": media_id, "caption": "This week"}}

    with pytest.raises(MediaTooLarge):
        await graph.download_media(info.url, max_bytes=len(png) - 1, expected_sha256=info.sha256)
    with pytest.raises(MediaChecksumMismatch) as mismatch:
        await graph.download_media(info.url, max_bytes=len(png), expected_sha256=hashlib.sha256(b"x").hexdigest())
    assert mismatch.value.retryable
    assert await graph.download_media(info.url, max_bytes=len(png)) == png  # exactly at the cap is fine

    assert (await world.control.post("/media/expire_urls")).status_code == 200
    with pytest.raises(MediaUrlExpired):
        await graph.download_media(info.url, max_bytes=len(png))
    fresh = await graph.get_media(media_id)  # a new URL works again
    assert await graph.download_media(fresh.url, max_bytes=len(png), expected_sha256=fresh.sha256) == png

    assert await graph.delete_media(media_id) is True
    with pytest.raises(ParameterError) as gone:
        await graph.get_media(media_id)
    assert (gone.value.code, gone.value.subcode) == (100, 33)


async def test_inbound_image_downloads_with_the_webhooks_sha256(world: World, graph: GraphClient) -> None:
    wamid = await world.inbound({"type": "image", "image": {"caption": "my receipt"}})
    media = None
    for _ in range(500):  # the signed webhook is posted in the background
        for received in list(world.receiver.requests):
            assert verify(SECRET, received.body, received.headers.get("x-hub-signature-256"))
            for inbound in iter_messages(parse_envelope(received.body)):
                if inbound.message.id == wamid:
                    media = inbound.message.media
        if media is not None:
            break
        await asyncio.sleep(0.02)
    assert media is not None, "the inbound image's webhook never arrived"
    assert media.mime_type == "image/jpeg" and media.caption == "my receipt" and media.sha256 and media.id
    info = await graph.get_media(media.id)
    assert info.mime_type == "image/jpeg"
    # Webhooks carry the digest in base64, GET /{media_id} in hex: the client accepts both.
    data = await graph.download_media(info.url, max_bytes=max_bytes("image"), expected_sha256=media.sha256)
    assert await graph.download_media(info.url, max_bytes=max_bytes("image"), expected_sha256=info.sha256) == data
    assert bytes.fromhex(info.sha256 or "") == base64.b64decode(media.sha256)
    assert len(data) == info.file_size
    assert Image.open(io.BytesIO(data)).format == "JPEG"


# ---- phone number and business profile ---------------------------------------------------------------

async def test_get_phone_number_honours_fields(world: World, graph: GraphClient) -> None:
    await world.register(verified_name="Cafe Uno", quality_rating="YELLOW", messaging_limit_tier="TIER_10K")
    number = await graph.get_phone_number(PHONE_ID)
    assert number == {
        "verified_name": "Cafe Uno", "display_phone_number": "+1 555-000-7001", "quality_rating": "YELLOW",
        "messaging_limit_tier": "TIER_10K", "throughput": {"level": "STANDARD"}, "status": "CONNECTED",
        "code_verification_status": "VERIFIED", "name_status": "APPROVED", "id": PHONE_ID,
    }
    assert set(number) == {*DEFAULT_PHONE_FIELDS, "id"}
    await world.register(mps=1000)
    assert await graph.get_phone_number(PHONE_ID, fields=["throughput"]) == {
        "throughput": {"level": "HIGH"}, "id": PHONE_ID}
    assert await graph.get_phone_number(PHONE_ID, fields=("quality_rating", "status")) == {
        "quality_rating": "YELLOW", "status": "CONNECTED", "id": PHONE_ID}
    with pytest.raises(ParameterError):
        await graph.get_phone_number(PHONE_ID, fields=["favourite_colour"])


async def test_business_profile_round_trip(world: World, graph: GraphClient) -> None:
    assert await graph.get_business_profile(PHONE_ID) == {
        "about": "", "address": "", "description": "", "email": "", "profile_picture_url": "", "websites": [],
        "vertical": "UNDEFINED", "messaging_product": "whatsapp"}
    changes = {"about": "Coffee & cake since 1999", "address": "1 Hacker Way, Menlo Park",
               "description": "Neighbourhood cafe", "email": "hello@cafe-uno.example",
               "websites": ["https://cafe-uno.example", "https://cafe-uno.example/menu"], "vertical": "RESTAURANT"}
    assert await graph.update_business_profile(PHONE_ID, changes) is True
    assert await graph.get_business_profile(PHONE_ID) == {
        **changes, "profile_picture_url": "", "messaging_product": "whatsapp"}
    with pytest.raises(ParameterError) as caught:
        await graph.update_business_profile(PHONE_ID, {"vertical": "SPACESHIPS"})
    assert caught.value.code == 131009 and "vertical" in (caught.value.details or "")
    assert (await graph.get_business_profile(PHONE_ID))["vertical"] == "RESTAURANT"  # all or nothing
