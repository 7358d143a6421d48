"""Media out: real type sniffed from the bytes, conversion with Pillow, one upload per number, and mark-as-read."""

from __future__ import annotations

import io

from PIL import Image

from app.domains.conversations.models import Conversation
from app.domains.messages.models import Message, MessageStatus
from app.domains.outbox.media import OutboundMedia
from tests.integration.outbound_env import outbound, sandbox_server, wait_for  # noqa: F401
from tests.support.servers import scrape_metrics


def image_bytes(fmt: str, size=(64, 48), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30)).save(buffer, fmt)
    return buffer.getvalue()


async def upload(env, data: bytes, filename: str, kind: str | None = None):
    files = {"file": (filename, data, "application/octet-stream")}
    return await env.client.post("/api/v1/media", headers=env.headers, files=files,
                                 data={"type": kind} if kind else None)


async def test_upload_sniffs_converts_and_refuses(outbound):
    env = await outbound()
    png = await upload(env, image_bytes("PNG"), "photo.jpg")  # the name lies: the bytes are PNG
    assert png.status_code == 201, png.text
    assert png.json()["mime_type"] == "image/png" and not png.json()["converted"]
    gif = await upload(env, image_bytes("GIF"), "anim.gif")
    assert gif.json()["mime_type"] == "image/jpeg" and gif.json()["converted"]
    webp_alpha = await upload(env, image_bytes("WEBP", mode="RGBA"), "clear.webp")
    assert webp_alpha.json()["mime_type"] == "image/png", webp_alpha.text
    sticker = await upload(env, image_bytes("PNG", (900, 300)), "s.png", "sticker")
    assert sticker.json()["kind"] == "sticker" and sticker.json()["mime_type"] == "image/webp"
    assert Image.open(io.BytesIO(await env.runtime.outbox.media.read(
        await OutboundMedia.get(sticker.json()["id"])))).size == (512, 512)
    pdf = await upload(env, b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n", "file.bin")
    assert pdf.json()["kind"] == "document" and pdf.json()["mime_type"] == "application/pdf"
    text = await upload(env, "Hello, plain text ✓\n".encode(), "notes", "document")
    assert text.json()["mime_type"] == "text/plain"
    again = await upload(env, image_bytes("PNG"), "other-name.png")
    assert again.json()["id"] == png.json()["id"]  # same bytes: stored once
    wav = b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + bytes(24) + b"data" + bytes(4)
    for data, name, kind, code in [
        (wav, "a.wav", "audio", "MEDIA_TYPE_UNSUPPORTED"),
        (image_bytes("PNG"), "x.png", "video", "MEDIA_TYPE_UNSUPPORTED"),
        (b"\x00\x01\x02garbage\xff", "x.bin", None, "MEDIA_TYPE_UNSUPPORTED"),
        (b"", "empty.txt", None, "MEDIA_EMPTY"),
        (image_bytes("PNG"), "x.png", "hologram", "MEDIA_KIND_INVALID"),
    ]:
        answer = await upload(env, data, name, kind)
        assert answer.status_code == 422 and answer.json()["error_code"] == code, (name, answer.text)
    answer = await env.client.post("/api/v1/media", headers=env.headers, json={"file": "x"})
    assert answer.json()["error_code"] == "MULTIPART_REQUIRED"


async def test_big_image_is_downscaled_under_5_mb(outbound):
    import os

    env = await outbound()
    noise = Image.frombytes("RGB", (2600, 2600), os.urandom(2600 * 2600 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    assert buffer.tell() > 5 * 1024 * 1024
    answer = await upload(env, buffer.getvalue(), "noise.png")
    assert answer.status_code == 201, answer.text
    assert answer.json()["converted"] and answer.json()["size"] <= 5 * 1024 * 1024


async def test_media_is_uploaded_once_per_number_and_sent_by_meta_id(outbound):
    env = await outbound()
    first, second = await env.add_number(), await env.add_number()
    media_id = (await upload(env, image_bytes("PNG"), "p.png")).json()["id"]
    wrong = await env.client.post(f"/api/v1/conversations/{(await env.conversation(first, '15550003000')).id}/messages",
                                  headers=env.headers, json={"type": "video", "content": {"id": media_id}})
    assert wrong.json()["error_code"] == "MEDIA_KIND_MISMATCH"
    ids = []
    for account, wa_id in [(first, "15550003001"), (first, "15550003002"), (second, "15550003003")]:
        conversation = await env.conversation(account, wa_id)
        answer = await env.client.post(f"/api/v1/conversations/{conversation.id}/messages", headers=env.headers,
                                       json={"type": "image", "content": {"id": media_id, "caption": "look"}})
        assert answer.status_code == 202, answer.text
        assert answer.json()["media"]["id"] == media_id
        ids.append(answer.json()["id"])
        await wait_for(lambda i=answer.json()["id"]: _accepted(i))
    sent = await env.sent(first) + await env.sent(second)
    meta_ids = [s["body"]["image"]["id"] for s in sent]
    assert len(sent) == 3 and meta_ids[0] == meta_ids[1] != meta_ids[2]  # one upload per number
    assert all(s["body"]["image"]["caption"] == "look" for s in sent)
    media = await OutboundMedia.get(media_id)
    assert set(media.meta_ids) == {str(first.id), str(second.id)}


async def _accepted(message_id: str) -> bool:
    message = await Message.get(message_id)
    return message is not None and message.status is MessageStatus.ACCEPTED


async def test_mark_as_read_once_for_newest_unread_inbound(outbound):
    env = await outbound()
    account = await env.add_number()
    wamids = []
    for text in ("first", "second"):
        answer = await env.control.post("/sandbox/control/inbound", json={
            "phone_number_id": account.phone_number_id, "from": "15550003101", "message": {"type": "text",
                                                                                          "text": {"body": text}}})
        wamids.append(answer.json()["wamid"])
    conversation = await env.conversation(account, "15550003101")
    for wamid in wamids:
        await Message(workspace_id=env.workspace_id, conversation_id=conversation.id, account_id=account.id,
                      contact_id=conversation.contact_id, direction="inbound", type="text",
                      content={"body": "x"}, wamid=wamid, status=MessageStatus.RECEIVED).insert()
    conversation = await Conversation.get(conversation.id)
    assert conversation.unread_count >= 1
    # The app runs on the test client's own loop: talk to Redis with this loop's clients.
    from redis.asyncio import Redis

    from app.domains.outbox.service import OutboxService
    from app.queue import open_pool

    runtime = env.runtime
    pool = await open_pool(runtime.settings.redis_url)
    redis = Redis.from_url(runtime.settings.redis_url)
    outbox = OutboxService(redis=redis, arq=lambda: pool, live=runtime.live, accounts=runtime.accounts,
                           media=runtime.outbox.media)
    assert await outbox.mark_conversation_read(conversation) is True
    assert await outbox.mark_conversation_read(await Conversation.get(conversation.id)) is False
    assert (await Conversation.get(conversation.id)).unread_count == 0

    async def receipt_done():
        return [j for j in await pool.all_job_results() if j.function == "send_read_receipt"]

    results = await wait_for(receipt_done)
    assert len(results) == 1 and results[0].success and results[0].result is True
    assert results[0].args[1] == wamids[-1]
    await pool.aclose()
    await redis.aclose()
    metrics = await scrape_metrics(env.client.app)
    assert metrics.status_code == 200
    assert 'inbox_graph_request_seconds_count{endpoint="mark_read"}' in metrics.text
    assert "inbox_outbox_depth" in metrics.text
