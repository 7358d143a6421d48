"""Reading a CSV file of contacts as it streams: its encoding, its delimiter, then one record at a time.

- Encoding: a byte-order mark decides (UTF-8, UTF-16 or UTF-32 with BOM); otherwise a file that is
  valid UTF-8 throughout is UTF-8; otherwise charset-normalizer guesses from samples (the start of the
  file and the bytes around the first that is not UTF-8), and the guess must decode the whole file,
  or the file is refused in words. Workbooks (.xlsx, .xls) and other binary files are refused by
  their first bytes.
- Delimiter: ``csv.Sniffer`` on the first 64 KB, among , ; tab and |; when it cannot tell, or its
  answer gives a one-column header, the candidate that splits the first records most consistently.
- Records: :class:`RecordSplitter` is a push parser. Text goes in as it is decoded; complete
  records come out, each parsed by the ``csv`` module (Excel's dialect with the file's delimiter).
  A record ends at a line end outside double quotes, so quoted cells may hold newlines. What it
  holds at once is one record (at most ``RECORD_CHARS``): a longer one, or a line that never ends,
  becomes a per-row error and reading goes on at the next line. Memory does not grow with the file.

The upload (:func:`analyse`, in a thread, over the received file) and the worker (:func:`records`,
over GridFS chunks) run the same splitter, so the rows counted at upload are the rows imported.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

SNIFF_BYTES = 64 * 1024
MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
MAX_COLUMNS = 200
CELL_CHARS = 131_072
"""The longest cell (``csv.field_size_limit``): a longer one is that row's error."""
RECORD_CHARS = 1_048_576
"""The longest record held while reading (a missing closing quote would otherwise swallow the file)."""
PREVIEW_ROWS = 5
PREVIEW_CELL = 200
DELIMITERS = ",;\t|"
BLOCK = 256 * 1024

csv.field_size_limit(max(csv.field_size_limit(), CELL_CHARS))

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32 (byte-order mark)"),
         (codecs.BOM_UTF32_BE, "utf-32", "UTF-32 (byte-order mark)"),
         (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 (byte-order mark)"),
         (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 LE (byte-order mark)"),
         (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 BE (byte-order mark)"))
_LINE_END = re.compile(r"\r\n|\n|\r")


class FileRefused(ValueError):
    """The whole file cannot be imported; ``message`` says why in words, ``code`` is stable."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class RecordError:
    """A record the csv module could not read (too long, a cell over the limit): that row's error."""

    reason: str


Record = list[str] | RecordError


@dataclass
class Layout:
    """What the upload learnt of a file: how to read it, its header, first rows and size in rows."""

    encoding: str
    encoding_label: str
    delimiter: str
    header: list[str] = field(default_factory=list)
    preview: list[list[str]] = field(default_factory=list)
    rows: int = 0
    first_row: int = 1
    """The record after the header: where the import starts."""
    records: int = 0


def is_blank(record: Record) -> bool:
    return isinstance(record, list) and not any(cell.strip() for cell in record)


class RecordSplitter:
    """Text in (any pieces), complete CSV records out, in order."""

    def __init__(self, delimiter: str) -> None:
        self.delimiter = delimiter
        self._text = ""
        self._group: list[str] = []
        self._group_chars = 0
        self._quotes = 0
        self._skipping = False  # inside a line too long to keep: dropped up to its end

    def feed(self, text: str, *, final: bool = False) -> list[Record]:
        out: list[Record] = []
        self._text += text
        start = 0
        for match in _LINE_END.finditer(self._text):
            if match.group() == "\r" and match.end() == len(self._text) and not final:
                break  # a "\r" at the end of what came so far may be the first half of "\r\n"
            self._line(self._text[start:match.end()], out)
            start = match.end()
        self._text = self._text[start:]
        if final:
            if self._text:
                self._line(self._text, out)
                self._text = ""
            if self._group:
                self._flush(out)
        elif len(self._text) > RECORD_CHARS:  # a line with no end in sight
            if not self._skipping:
                out.append(RecordError(f"A line longer than {RECORD_CHARS:,} characters (not a CSV row?)."))
            self._skipping, self._text = True, ""
            self._group, self._group_chars, self._quotes = [], 0, 0
        return out

    def _line(self, line: str, out: list[Record]) -> None:
        if self._skipping:  # the end of the overlong line
            self._skipping = False
            return
        self._group.append(line)
        self._group_chars += len(line)
        self._quotes += line.count('"')
        if self._group_chars > RECORD_CHARS:
            out.append(RecordError(f"A row longer than {RECORD_CHARS:,} characters (a missing closing quote?)."))
            self._group, self._group_chars, self._quotes = [], 0, 0
        elif self._quotes % 2 == 0:  # outside quotes: the record is complete
            self._flush(out)

    def _flush(self, out: list[Record]) -> None:
        reader = csv.reader(self._group, delimiter=self.delimiter)
        while True:
            try:
                out.append(next(reader))
            except StopIteration:
                break
            except csv.Error as error:
                out.append(RecordError(_csv_words(str(error))))
        self._group, self._group_chars, self._quotes = [], 0, 0


def _csv_words(message: str) -> str:
    if "field larger than field limit" in message:
        return f"A cell longer than {CELL_CHARS:,} characters."
    return f"Not a readable CSV row ({message})."


# ---- encoding and delimiter ------------------------------------------------------------------------

def _refuse_binary(head: bytes) -> None:
    if head.startswith(b"PK\x03\x04"):
        raise FileRefused("This is an Excel workbook (.xlsx) or another zip file, not a CSV file: in Excel, "
                          "save it with File > Save as > CSV UTF-8.", "NOT_CSV")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRefused("This is an old Excel workbook (.xls), not a CSV file: save it as CSV UTF-8.", "NOT_CSV")


def _bom_encoding(head: bytes) -> tuple[str, str] | None:
    for bom, codec, label in _BOMS:
        if head.startswith(bom):
            return codec, label
    if len(head) >= 4 and b"\x00" in head[:200]:  # UTF-16 without a mark: every other byte of ASCII is 0
        sample = head[: min(len(head), 2000) // 2 * 2]
        odd_zero = sample[1::2].count(0) / max(1, len(sample) // 2)
        even_zero = sample[0::2].count(0) / max(1, len(sample) // 2)
        if odd_zero > 0.4 and even_zero < 0.05:
            return "utf-16-le", "UTF-16 LE (no byte-order mark, recognised)"
        if even_zero > 0.4 and odd_zero < 0.05:
            return "utf-16-be", "UTF-16 BE (no byte-order mark, recognised)"
        raise FileRefused("This file holds binary data, not text: upload a CSV file.", "NOT_CSV")
    return None


def _decoded_head(head: bytes, encoding: str) -> str:
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a file that starts with ``sample`` (see the module's docstring)."""
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    text = sample[:cut + 1] if cut > 0 else sample
    try:
        found = csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        found = None
    if found:
        first = _first_records(text, found, 1)
        if first and len(first[0]) > 1:
            return found
    best, best_score = ",", (0.0, 0)
    for candidate in DELIMITERS:
        rows = _first_records(text, candidate, 50)
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(1 for r in rows if len(r) == width) / len(rows), width)
        if score > best_score:
            best, best_score = candidate, score
    return best


def _first_records(text: str, delimiter: str, count: int) -> list[list[str]]:
    splitter = RecordSplitter(delimiter)
    rows = [r for r in splitter.feed(text, final=True) if isinstance(r, list) and not is_blank(r)]
    return rows[:count]


# ---- the upload's look at a whole file --------------------------------------------------------------

def _blocks(source: IO[bytes]) -> Iterator[bytes]:
    source.seek(0)
    while block := source.read(BLOCK):
        yield block


def _scan(source: IO[bytes], encoding: str, delimiter: str, layout: Layout) -> None:
    """Decode and split the whole file: header, preview, rows; UnicodeDecodeError when it does not decode."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    splitter = RecordSplitter(delimiter)
    layout.header, layout.preview, layout.rows, layout.records = [], [], 0, 0

    def take(records: Iterable[Record]) -> None:
        for record in records:
            layout.records += 1
            if is_blank(record):
                continue
            if not layout.header:
                if isinstance(record, RecordError):  # there is no header to map
                    raise FileRefused(f"The first row, the header, cannot be read: {record.reason}", "HEADER_INVALID")
                layout.header = [cell.strip().lstrip("\ufeff") for cell in record]
                layout.first_row = layout.records
                continue
            layout.rows += 1
            if layout.rows > MAX_ROWS:
                raise FileRefused(f"The file has more than {MAX_ROWS:,} rows: split it into smaller files.",
                                  "TOO_MANY_ROWS")
            if len(layout.preview) < PREVIEW_ROWS:
                layout.preview.append([c[:PREVIEW_CELL] for c in record] if isinstance(record, list)
                                      else [f"(unreadable: {record.reason})"])

    position = 0
    for block in _blocks(source):
        try:
            text = decoder.decode(block)
        except UnicodeDecodeError as error:
            error.start += position  # where in the file, for the detector's sample
            raise error from None
        position += len(block)
        take(splitter.feed(text))
    take(splitter.feed(decoder.decode(b"", final=True), final=True))


def _sample_around(source: IO[bytes], position: int) -> bytes:
    source.seek(0)
    head = source.read(SNIFF_BYTES)
    source.seek(max(0, position - SNIFF_BYTES // 2))
    return head + b"\n" + source.read(SNIFF_BYTES)


ENCODING_NAMES = {"utf-8": "UTF-8", "cp1252": "Windows-1252 (Western European)", "latin-1": "ISO-8859-1 (Latin-1)",
                  "iso8859-15": "ISO-8859-15 (Latin-9)", "cp1250": "Windows-1250 (Central European)",
                  "cp1251": "Windows-1251 (Cyrillic)", "cp1253": "Windows-1253 (Greek)", "cp1254": "Windows-1254 (Turkish)",
                  "cp1255": "Windows-1255 (Hebrew)", "cp1256": "Windows-1256 (Arabic)", "cp1257": "Windows-1257 (Baltic)",
                  "mac-roman": "Mac Roman", "shift_jis": "Shift JIS", "cp932": "Shift JIS (Windows)",
                  "gb18030": "GB18030 (Chinese)", "big5": "Big5 (Chinese)", "euc_kr": "EUC-KR (Korean)",
                  "koi8-r": "KOI8-R (Cyrillic)", "utf-16-le": "UTF-16 LE", "utf-16-be": "UTF-16 BE"}
"""Codecs by how people know them; the import page offers these to read a file otherwise."""
WESTERN = "cp1252"


def encoding_name(codec: str) -> str:
    return ENCODING_NAMES.get(codecs.lookup(codec).name, codec)


def _detected(sample: bytes) -> list[tuple[str, str]]:
    """charset-normalizer's candidates, best first. Short samples leave it torn between single-byte code
    pages that read the same letters (ü, ö, é are the same bytes in Windows-1250 and 1252): among its
    equally good candidates, Windows-1252 goes first, the code page of most CSV files that are not UTF-8."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample))
    if not matches:
        return []
    best = matches[0]
    tied = [m for m in matches if m.chaos <= best.chaos + 0.01 and m.coherence >= best.coherence - 0.01]
    order = [codecs.lookup(m.encoding).name for m in matches]
    western = any(codecs.lookup(m.encoding).name == WESTERN for m in tied)
    try:
        same_text = sample.decode(WESTERN) == sample.decode(best.encoding)
    except UnicodeDecodeError:
        same_text = False
    if western or same_text:
        order = [WESTERN, *[c for c in order if c != WESTERN]]
    return [(codec, f"{encoding_name(codec)}, detected (the file is not UTF-8)")
            for codec in dict.fromkeys(order)]


def analyse(source: IO[bytes], size: int) -> Layout:
    """Read the received file through once or twice (blocking: run it in a thread); FileRefused says why not."""
    source.seek(0)
    head = source.read(SNIFF_BYTES)
    if size == 0 or not head.strip(b" \t\r\n\x00" + codecs.BOM_UTF8):
        raise FileRefused("The file is empty.", "FILE_EMPTY")
    _refuse_binary(head)
    by_bom = _bom_encoding(head)
    candidates = [by_bom] if by_bom else [("utf-8", "UTF-8")]
    tried: set[str] = set()
    while candidates:
        encoding, label = candidates.pop(0)
        tried.add(encoding)
        layout = Layout(encoding, label, sniff_delimiter(_decoded_head(head, encoding)))
        try:
            _scan(source, encoding, layout.delimiter, layout)
        except UnicodeDecodeError as error:
            if by_bom is None and encoding == "utf-8":
                candidates = [c for c in _detected(_sample_around(source, error.start)) if c[0] not in tried]
            continue
        if not layout.header:
            raise FileRefused("The file is empty.", "FILE_EMPTY")
        if len(layout.header) > MAX_COLUMNS:
            raise FileRefused(f"The file has {len(layout.header)} columns; at most {MAX_COLUMNS}.", "TOO_MANY_COLUMNS")
        if layout.rows == 0:
            raise FileRefused("The file has a header but no rows.", "NO_ROWS")
        return layout
    if by_bom:
        raise FileRefused(f"The file starts with a {by_bom[1]} mark but does not decode as such.", "ENCODING_UNKNOWN")
    raise FileRefused("The file is not UTF-8 and its encoding could not be recognised: save it as CSV UTF-8 "
                      "(in Excel: File > Save as > CSV UTF-8) and upload it again.", "ENCODING_UNKNOWN")


# ---- the worker's reading, from the stored file ----------------------------------------------------------

async def records(chunks: AsyncIterator[bytes], encoding: str, delimiter: str) -> AsyncIterator[tuple[int, Record]]:
    """(record number, record) of a stored file, record 0 being the first (the header, or a blank line)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    splitter = RecordSplitter(delimiter)
    number = 0
    async for chunk in chunks:
        for record in splitter.feed(decoder.decode(chunk)):
            yield number, record
            number += 1
    for record in splitter.feed(decoder.decode(b"", final=True), final=True):
        yield number, record
        number += 1
