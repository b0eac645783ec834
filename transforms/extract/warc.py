"""One record's bytes parsed by FastWARC: the page a WARC response holds, or a WAT record's JSON.

A record's bytes come from its gzip member (``records``), which is the
truth about where it ends: where the Content-Length header says otherwise,
it is set to what the member holds before FastWARC reads it (counted as
``length_mismatch``), so that neither a short block nor a long one is lost.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from fastwarc.warc import WarcRecord, WarcRecordType

from paircurate.transforms.extract.records import CONTENT_LENGTH, RecordUnit

HTML_TYPES = ("text/html", "application/xhtml+xml")


class RecordError(ValueError):
    """A record whose bytes FastWARC cannot read as WARC: becomes extract_record_corrupt."""


@dataclass(frozen=True)
class Record:
    """A parsed record: its WARC headers and the reader of its (HTTP-decoded) payload."""

    warc: WarcRecord
    length_mismatch: bool
    cut: bool


@dataclass(frozen=True)
class Payload:
    """An HTML page's bytes and what its HTTP headers declare."""

    page_url: str
    record_id: str | None
    body: bytes
    charset: str | None
    content_language: str | None
    cut: bool


def with_true_length(data: bytes, cut: bool) -> tuple[bytes, bool]:
    """The record's bytes with a Content-Length that matches its block; whether it had to change."""
    header_end = data.find(b"\r\n\r\n")
    if header_end < 0:
        raise RecordError("the WARC header has no end")
    match = CONTENT_LENGTH.search(data, 0, header_end + 2)
    if match is None:
        raise RecordError("the WARC header has no Content-Length")
    if cut:
        return data, False
    block = len(data) - header_end - 4
    if data.endswith(b"\r\n\r\n"):
        block -= 4
    if int(match.group(1)) == block:
        return data, False
    fixed = data[: match.start(1)] + str(block).encode() + data[match.end(1) :]
    return fixed, True


def parse_record(unit: RecordUnit) -> Record:
    """FastWARC's record of a unit's bytes; raises RecordError where they are no WARC record."""
    assert unit.data is not None
    if not unit.data.startswith(b"WARC/"):
        raise RecordError("the bytes do not start with a WARC version line")
    data, mismatch = with_true_length(unit.data, unit.cut)
    try:
        record = WarcRecord.from_reader(io.BytesIO(data))
    except (OSError, ValueError) as error:
        raise RecordError(f"FastWARC cannot read the header: {error}") from None
    if record.record_type == WarcRecordType.unknown:
        raise RecordError("the WARC header names no known WARC-Type")
    return Record(record, mismatch, unit.cut)


def html_payload(record: Record, max_bytes: int) -> Payload | str:
    """The HTML page of a response record, or why it has none (an outcome name to count)."""
    warc = record.warc
    if warc.record_type != WarcRecordType.response:
        return "other_record"
    if not warc.is_http:
        return "not_http"
    try:
        warc.parse_http(auto_decode="all")
    except (OSError, ValueError):
        return "not_http"
    status = warc.http_headers.status_code
    if status is None:
        return "not_http"
    if not 200 <= status < 300:
        return "not_ok"
    content_type = (warc.http_content_type or "").lower()
    body = warc.reader.read(max_bytes + 1)
    if content_type and content_type not in HTML_TYPES:
        return "not_html"
    if not content_type and b"<html" not in body[:4096].lower():
        return "not_html"
    cut = record.cut or len(body) > max_bytes
    return Payload(
        page_url=warc.headers.get("WARC-Target-URI") or "",
        record_id=warc.record_id,
        body=body[:max_bytes],
        charset=warc.http_charset,
        content_language=warc.http_headers.get("Content-Language"),
        cut=cut,
    )


def metadata_json(record: Record) -> bytes | str:
    """A WAT record's JSON bytes, or why it has none (an outcome name to count)."""
    if record.warc.record_type != WarcRecordType.metadata:
        return "other_record"
    return record.warc.reader.read()
