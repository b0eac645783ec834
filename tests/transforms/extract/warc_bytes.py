"""WARC records as bytes, for the extract tests: written by FastWARC, damaged by hand."""

from __future__ import annotations

import gzip
import io

from fastwarc.warc import WarcRecord, WarcRecordType


def http_page(html: bytes, content_type: str = "text/html; charset=utf-8") -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(html)}\r\n\r\n"
    return head.encode() + html


def warc_record(
    uri: str, block: bytes, record_type: WarcRecordType = WarcRecordType.response, number: int = 0
) -> bytes:
    record = WarcRecord()
    record.init_headers(
        record_type, record_urn=f"urn:uuid:00000000-0000-0000-0000-{number:012d}".encode()
    )
    record.headers.set("WARC-Target-URI", uri)
    record.headers.set("Content-Type", "application/http; msgtype=response")
    record.set_bytes_content(block)
    out = io.BytesIO()
    record.write(out)
    return out.getvalue()


def pages(count: int) -> list[bytes]:
    """``count`` response records of small pages, each with one image."""
    return [
        warc_record(
            f"http://site.test/{n}.html",
            http_page(f'<html><img src="/img/{n}.jpg" alt="picture {n}"></html>'.encode()),
            number=n,
        )
        for n in range(count)
    ]


def members(records: list[bytes]) -> list[bytes]:
    return [gzip.compress(record, mtime=0) for record in records]


def with_content_length(record: bytes, length: int) -> bytes:
    """The record with its WARC Content-Length header set to ``length`` (a lie)."""
    head, _, rest = record.partition(b"\r\n\r\n")
    lines = [
        f"Content-Length: {length}".encode()
        if line.lower().startswith(b"content-length:")
        else line
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + rest


def damaged(member: bytes) -> bytes:
    """A member with bytes in its middle flipped: it no longer inflates or fails its checksum."""
    middle = len(member) // 2
    flipped = bytes(b ^ 0x5A for b in member[middle : middle + 16])
    return member[:middle] + flipped + member[middle + 16 :]
