"""Real, tiny media files for simulated inbound messages, generated in code.

Images and stickers come from Pillow; the PDF, the Ogg Opus voice note and the MP4 video are
built byte by byte here (no ffmpeg offline), so the package needs no data files: a 1 s Ogg
Opus stream of silence packets, and an MP4 holding one 16x16 H.264 frame (baseline profile,
one I_PCM macroblock, so no entropy coder is needed).  Every file is valid for its format.
"""

from __future__ import annotations

import io
import random
import struct
from functools import lru_cache

from PIL import Image, ImageDraw

# kind -> (default MIME, every MIME we can generate for it)
SUPPORTED: dict[str, tuple[str, frozenset[str]]] = {
    "image": ("image/jpeg", frozenset({"image/jpeg", "image/png"})),
    "sticker": ("image/webp", frozenset({"image/webp"})),
    "audio": ("audio/ogg; codecs=opus", frozenset({"audio/ogg", "audio/ogg; codecs=opus"})),
    "video": ("video/mp4", frozenset({"video/mp4"})),
    "document": ("application/pdf", frozenset({"application/pdf", "text/plain"})),
}


def generate(kind: str, mime_type: str | None = None, *, label: str = "wa-inbox sandbox") -> tuple[bytes, str]:
    """Bytes of a valid ``kind`` file and the MIME type to announce; ValueError if unsupported."""
    if kind not in SUPPORTED:
        raise ValueError(f"no generator for media kind {kind!r}")
    default, accepted = SUPPORTED[kind]
    mime = (mime_type or default).strip()
    if mime.split(";")[0].strip().lower() not in {m.split(";")[0] for m in accepted}:
        raise ValueError(f"the sandbox can generate {kind} as {', '.join(sorted(accepted))}, not {mime!r}")
    base = mime.split(";")[0].strip().lower()
    if base in ("image/jpeg", "image/png", "image/webp"):
        return _picture(base, label), mime
    if base == "audio/ogg":
        return ogg_opus(), mime
    if base == "video/mp4":
        return mp4(), mime
    if base == "text/plain":
        return f"{label}\n".encode(), mime
    return pdf(label), mime


def _picture(mime: str, label: str) -> bytes:
    # A random background keeps each file (and so its sha256) distinct, like real photos.
    size = (512, 512) if mime == "image/webp" else (96, 64)
    mode = "RGBA" if mime == "image/webp" else "RGB"
    colour = tuple(random.randrange(40, 220) for _ in range(3)) + ((255,) if mode == "RGBA" else ())
    image = Image.new(mode, size, colour)
    ImageDraw.Draw(image).text((4, 4), label[:40], fill=(255, 255, 255) + ((255,) if mode == "RGBA" else ()))
    out = io.BytesIO()
    image.save(out, format={"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}[mime])
    return out.getvalue()


def pdf(text: str) -> bytes:
    """A one-page PDF 1.4 showing ``text`` (ASCII), with a correct xref table."""
    safe = "".join(c for c in text if 32 <= ord(c) < 127).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 12 Tf 20 50 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 100] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# --- Ogg Opus --------------------------------------------------------------------------

def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _ogg_crc_table()


def _ogg_page(packets: list[bytes], *, granule: int, seq: int, flags: int, serial: int = 0x5A4E4458) -> bytes:
    lacing = bytearray()
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = b"OggS" + struct.pack("<BBqIIIB", 0, flags, granule, serial, seq, 0, len(lacing)) + bytes(lacing)
    page = bytearray(header + b"".join(packets))
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ byte]
    page[22:26] = struct.pack("<I", crc)
    return bytes(page)


@lru_cache(maxsize=1)
def ogg_opus(seconds: int = 1) -> bytes:
    """Mono 48 kHz Ogg Opus of silence (``F8 FF FE`` is a 20 ms CELT silence frame)."""
    pre_skip = 312
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    vendor = b"wa-inbox sandbox"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    frames = [b"\xf8\xff\xfe"] * (50 * seconds)
    return (_ogg_page([head], granule=0, seq=0, flags=0x02)
            + _ogg_page([tags], granule=0, seq=1, flags=0x00)
            + _ogg_page(frames, granule=pre_skip + 960 * len(frames), seq=2, flags=0x04))


# --- MP4 / H.264 -------------------------------------------------------------------------

class _Bits:
    """MSB-first bit writer with Exp-Golomb codes, for H.264 headers."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(code.bit_length() * 2 - 1, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        while len(self.bits) % 8:
            self.bits.append(0)

    def trailing(self) -> bytes:
        self.bits.append(1)
        self.align_zero()
        return bytes(int("".join(map(str, self.bits[i:i + 8])), 2) for i in range(0, len(self.bits), 8))


def _nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit with emulation-prevention bytes inserted."""
    out, zeros = bytearray([header]), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _syntax(fields: list[tuple[str, int, int]]) -> _Bits:
    """Write H.264 syntax elements: ("u", bits, value), ("ue", 0, value) or ("se", 0, value)."""
    bits = _Bits()
    for kind, n, value in fields:
        if kind == "u":
            bits.u(n, value)
        elif kind == "ue":
            bits.ue(value)
        else:
            bits.se(value)
    return bits


def _h264_frame() -> tuple[bytes, bytes, bytes]:
    """SPS, PPS and one IDR slice of a 16x16 picture."""
    sps = _syntax([
        ("u", 8, 66), ("u", 8, 0xC0), ("u", 8, 10),  # baseline profile, constraint sets 0+1, level 1.0
        ("ue", 0, 0), ("ue", 0, 0), ("ue", 0, 2),  # sps id, log2_max_frame_num - 4, pic_order_cnt_type 2
        ("ue", 0, 1), ("u", 1, 0),  # one reference frame, no gaps
        ("ue", 0, 0), ("ue", 0, 0),  # 1 x 1 macroblocks
        ("u", 1, 1), ("u", 1, 1), ("u", 1, 0), ("u", 1, 0),  # frames only, direct 8x8, no crop, no VUI
    ])
    pps = _syntax([
        ("ue", 0, 0), ("ue", 0, 0), ("u", 1, 0), ("u", 1, 0),  # ids, CAVLC, no field POC
        ("ue", 0, 0), ("ue", 0, 0), ("ue", 0, 0),  # one slice group, default ref counts
        ("u", 1, 0), ("u", 2, 0), ("se", 0, 0), ("se", 0, 0), ("se", 0, 0),  # no weighting, QP 26
        ("u", 1, 1), ("u", 1, 0), ("u", 1, 0),  # deblocking control present
    ])
    idr = _syntax([
        ("ue", 0, 0), ("ue", 0, 7), ("ue", 0, 0), ("u", 4, 0), ("ue", 0, 0),  # mb 0, I slice, frame 0, idr 0
        ("u", 1, 0), ("u", 1, 0), ("se", 0, 0), ("ue", 0, 1),  # ref marking, qp delta 0, deblocking off
        ("ue", 0, 25),  # mb_type I_PCM: raw samples, so no entropy coder is needed
    ])
    idr.align_zero()
    for y in range(16):
        for x in range(16):
            idr.u(8, 16 + (x + y) * 6)  # a diagonal luma gradient (PCM samples are never 0)
    for _ in range(128):
        idr.u(8, 128)  # neutral chroma
    return _nal(0x67, sps.trailing()), _nal(0x68, pps.trailing()), _nal(0x65, idr.trailing())


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


@lru_cache(maxsize=1)
def mp4() -> bytes:
    """An ISO-BMFF MP4 (avc1) with one 16x16 frame lasting one second."""
    sps, pps, idr = _h264_frame()
    sample = struct.pack(">I", len(idr)) + idr
    avcc = _box(b"avcC", bytes([1, 66, 0xC0, 10, 0xFF, 0xE1]), struct.pack(">H", len(sps)), sps,
                b"\x01", struct.pack(">H", len(pps)), pps)
    avc1 = _box(b"avc1", b"\x00" * 6, struct.pack(">H", 1), b"\x00" * 16, struct.pack(">HHIIIH", 16, 16, 0x480000,
                0x480000, 0, 1), b"\x00" * 32, struct.pack(">Hh", 0x18, -1), avcc)
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")

    def moov(chunk_offset: int) -> bytes:
        stbl = _box(b"stbl", _full(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
                    _full(b"stts", 0, 0, struct.pack(">III", 1, 1, 1000)),
                    _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1)),
                    _full(b"stsz", 0, 0, struct.pack(">III", 0, 1, len(sample))),
                    _full(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)))
        minf = _box(b"minf", _full(b"vmhd", 0, 1, b"\x00" * 8),
                    _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1))), stbl)
        mdia = _box(b"mdia", _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, 1000, 1000, 0x55C4, 0)),
                    _full(b"hdlr", 0, 0, b"\x00" * 4, b"vide", b"\x00" * 12, b"VideoHandler\x00"), minf)
        tkhd = _full(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, 1, 0, 1000), b"\x00" * 8,
                     struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX, struct.pack(">II", 16 << 16, 16 << 16))
        mvhd = _full(b"mvhd", 0, 0, struct.pack(">IIIIIH", 0, 0, 1000, 1000, 0x10000, 0x100), b"\x00" * 10,
                     _MATRIX, b"\x00" * 24, struct.pack(">I", 2))
        return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))

    offset = len(ftyp) + len(moov(0)) + 8  # the sample starts right after the mdat header
    return ftyp + moov(offset) + _box(b"mdat", sample)
