"""Unit tests of the sandbox's pure parts: body validation, templates, media files, envelopes.

The send validator is checked against every request example of Meta's OpenAPI spec
(``shared/conformance/send_examples``), with the spec's placeholders filled in.
"""

from __future__ import annotations

import io
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.sandbox import media_assets
from app.sandbox.errors import GraphError
from app.sandbox.models import Number
from app.sandbox.templates import Template, build_template, check_send_parameters, paginate, placeholders
from app.sandbox.validation import normalise_to, parse_mark_read, parse_send
from app.sandbox.webhooks import build_envelope

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "send_examples"
# Examples the spec itself gets wrong (see WHATSAPP.md): no "type" for an interactive
# body, and boolean "text" parameters.
SPEC_BUGS = {"req_send_reply_to_list_message.json", "req_send_sample_issue_resolution_template.json"}


def _fill_placeholders(text: str) -> str:
    text = re.sub(r'"\{\{Recipient[A-Za-z-]*\}\}"', '"+15551234567"', text)
    text = re.sub(r'"<?http\(s\)://([^">]*)>?"', r'"https://\1"', text)
    return text.replace('"<HEADER_TYPE>"', '"text"')


def test_every_spec_send_example_validates() -> None:
    checked = 0
    for path in sorted(EXAMPLES.glob("req_*.json")):
        body = json.loads(_fill_placeholders(path.read_text()))
        if path.name in SPEC_BUGS:
            with pytest.raises(GraphError):
                parse_send(body)
            continue
        if body.get("status") == "read":
            assert parse_mark_read(body).startswith("wamid.")
        else:
            parsed = parse_send(body)
            assert parsed.wa_id.isdigit(), path.name
        checked += 1
    assert checked >= 40


@pytest.mark.parametrize(("raw", "digits"), [("+1 (650) 555-1234", "16505551234"), ("447700900123", "447700900123"),
                                             ("+49 30.1234567", "49301234567")])
def test_to_is_normalised_to_digits(raw: str, digits: str) -> None:
    assert normalise_to(raw) == digits


@pytest.mark.parametrize("raw", ["", "12345", "+1234567890123456", "call me", "١٢٣٤٥٦٧٨"])
def test_bad_to_is_131009(raw: str) -> None:
    with pytest.raises(GraphError) as info:
        normalise_to(raw)
    assert info.value.code == 131009 and "to" in (info.value.details or "")


def test_error_body_has_metas_shape() -> None:
    body = GraphError(131009, "Param to is bad").body()
    assert set(body["error"]) == {"message", "type", "code", "error_data", "fbtrace_id"}
    assert body["error"]["message"] == "(#131009) Parameter value is not valid"
    assert body["error"]["error_data"] == {"messaging_product": "whatsapp", "details": "Param to is bad"}
    assert GraphError(190).http_status == 401 and GraphError(132001).http_status == 404


def test_placeholders_and_named_templates() -> None:
    assert placeholders("Hi {{1}}, code {{ 2 }}") == ["1", "2"]
    template = build_template({
        "name": "named", "language": "en", "category": "MARKETING", "parameter_format": "NAMED",
        "components": [{"type": "BODY", "text": "Hi {{first_name}}, see {{deal}} now",
                        "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ann"}]}}],
    }, template_id="1", waba_id="w")
    good = [{"type": "body", "parameters": [{"type": "text", "parameter_name": "deal", "text": "x"},
                                            {"type": "text", "parameter_name": "first_name", "text": "y"}]}]
    check_send_parameters(template, good)
    wrong = [{"type": "body", "parameters": [{"type": "text", "parameter_name": "deal", "text": "x"},
                                             {"type": "text", "parameter_name": "nope", "text": "y"}]}]
    with pytest.raises(GraphError) as info:
        check_send_parameters(template, wrong)
    assert info.value.code == 132000


def test_positional_variables_must_be_in_order() -> None:
    with pytest.raises(GraphError):
        build_template({"name": "x", "language": "en", "category": "UTILITY", "components": [
            {"type": "BODY", "text": "Hi {{2}} and {{1}}!", "example": {"body_text": [["a", "b"]]}}]},
            template_id="1", waba_id="w")


def test_paginate_forward_and_back() -> None:
    items = [Template(str(i), "w", f"t{i}", "en", "UTILITY", []) for i in range(5)]
    from app.sandbox.templates import encode_cursor
    page, has_next, has_previous = paginate(items, limit=2, after=None, before=None)
    assert [t.id for t in page] == ["0", "1"] and has_next and not has_previous
    page, has_next, has_previous = paginate(items, limit=2, after=encode_cursor("1"), before=None)
    assert [t.id for t in page] == ["2", "3"] and has_next and has_previous
    page, _, has_previous = paginate(items, limit=2, after=None, before=encode_cursor("2"))
    assert [t.id for t in page] == ["0", "1"] and not has_previous


@pytest.mark.parametrize(("mime", "fmt"), [("image/jpeg", "JPEG"), ("image/png", "PNG")])
def test_generated_images_open_with_pillow(mime: str, fmt: str) -> None:
    data, announced = media_assets.generate("image", mime)
    assert announced == mime and Image.open(io.BytesIO(data)).format == fmt
    sticker, _ = media_assets.generate("sticker")
    image = Image.open(io.BytesIO(sticker))
    assert image.format == "WEBP" and image.size == (512, 512) and len(sticker) < 100 * 1024


def test_generated_pdf_xref_points_at_its_objects() -> None:
    data = media_assets.pdf("Invoice (March)")
    start = int(re.search(rb"startxref\n(\d+)", data).group(1))  # type: ignore[union-attr]
    assert data[start:].startswith(b"xref")
    offsets = [int(m) for m in re.findall(rb"(\d{10}) 00000 n", data)]
    for number, offset in enumerate(offsets, start=1):
        assert data[offset:].startswith(b"%d 0 obj" % number)


def test_generated_ogg_opus_pages_have_valid_crcs() -> None:
    data = media_assets.ogg_opus()
    pos, pages = 0, 0
    while pos < len(data):
        assert data[pos:pos + 4] == b"OggS"
        segments = data[pos + 26]
        size = 27 + segments + sum(data[pos + 27:pos + 27 + segments])
        page = bytearray(data[pos:pos + size])
        crc = struct.unpack("<I", bytes(page[22:26]))[0]
        page[22:26] = b"\0\0\0\0"
        expected = 0
        for byte in page:
            expected = ((expected << 8) & 0xFFFFFFFF) ^ media_assets._CRC[((expected >> 24) & 0xFF) ^ byte]
        assert crc == expected
        pos, pages = pos + size, pages + 1
    assert pages == 3 and b"OpusHead" in data[:64]


def test_generated_mp4_box_tree() -> None:
    data = media_assets.mp4()

    def boxes(blob: bytes) -> list[tuple[bytes, bytes]]:
        out, pos = [], 0
        while pos < len(blob):
            size, kind = struct.unpack(">I4s", blob[pos:pos + 8])
            out.append((kind, blob[pos + 8:pos + size]))
            pos += size
        assert pos == len(blob)
        return out

    top = dict(boxes(data))
    assert list(top) == [b"ftyp", b"moov", b"mdat"]
    stco = data.index(b"stco")
    offset = struct.unpack(">I", data[stco + 12:stco + 16])[0]
    sample_size = struct.unpack(">I", data[offset:offset + 4])[0]
    assert data[offset + 4] == 0x65 and offset + 4 + sample_size == len(data)  # one IDR NAL, then EOF


def test_envelope_batches_consecutive_statuses_into_one_change() -> None:
    number = Number("1", "w", "+1 555 0100", "t", "s", "http://x")
    status = {"id": "wamid.a", "status": "sent", "timestamp": "1", "recipient_id": "2"}
    message: Any = ({"profile": {"name": "A"}, "wa_id": "2"}, {"id": "wamid.b", "type": "text"})
    envelope = build_envelope(number, [("status", status), ("status", {**status, "status": "delivered"}),
                                       ("message", message), ("status", status)])
    changes = envelope["entry"][0]["changes"]
    assert [len(c["value"].get("statuses", [])) for c in changes] == [2, 0, 1]
    assert changes[1]["value"]["messages"][0]["id"] == "wamid.b"
    assert changes[0]["value"]["metadata"] == {"display_phone_number": "15550100", "phone_number_id": "1"}
