"""Crawl files cut into records, one bad record never costing the ones after it.

Common Crawl compresses each WARC record as a gzip member of its own, which
is what makes a record reachable by (offset, length) and what lets a reader
recover: a member that does not inflate, or that ends early, is reported
and reading goes on at the next gzip header. FastWARC's iterator stops at
the first damaged member, and a record whose Content-Length claims more
bytes than it has silently swallows the records after it (tests/transforms/
extract/test_records.py shows both), so the members are found here, with
zlib, and each member's bytes are parsed as one record (``warc``).

A file that is not gzipped per record (plain, or gzipped as one stream) is
read through its decompressed bytes, record after record by Content-Length;
where a Content-Length lies, the next ``WARC/1.`` line ends the record.

Memory stays bounded: a record keeps at most ``max_bytes`` of its content
(the rest is inflated and thrown away, the record marked ``cut``), and the
window over the file holds at most a few chunks beyond that.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

GZIP_MAGIC = b"\x1f\x8b\x08"
READ_CHUNK = 1 << 20
INFLATE_CHUNK = 1 << 18
FEED_CHUNK = 1 << 16  # compressed bytes given to zlib at a time (most members are smaller)
HEADER_SLACK = 1 << 16  # WARC and HTTP headers kept on top of max_bytes of content
_RECORD_START = b"WARC/1."
CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d{1,15})[ \t]*\r?$")


@dataclass(frozen=True)
class RecordUnit:
    """One record's place in its file and its bytes (WARC header and block), or its problem.

    ``problem`` is (reason code, detail) where the bytes at ``offset`` are no
    readable record; ``cut`` says ``data`` holds only the record's first bytes.
    """

    offset: int
    length: int
    data: bytes | None = None
    problem: tuple[str, str] | None = None
    cut: bool = False


class _Window:
    """A stream read forward in chunks, addressed by absolute offset, forgetting what is dropped."""

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.buffer = bytearray()
        self.base = 0  # the stream offset of buffer[0]
        self.eof = False

    @property
    def end(self) -> int:
        return self.base + len(self.buffer)

    def fill(self, until: int) -> None:
        """Read until the buffer reaches offset ``until`` or the stream ends."""
        while self.end < until and not self.eof:
            chunk = self.stream.read(max(READ_CHUNK, until - self.end))
            if chunk:
                self.buffer += chunk
            else:
                self.eof = True

    def slice(self, start: int, stop: int) -> bytes:
        self.fill(stop)
        with memoryview(self.buffer) as view:
            return bytes(view[start - self.base : stop - self.base])

    def find(self, needle: bytes, start: int, stop: int | None = None) -> int:
        """The offset of the next ``needle`` at or after ``start``, or -1.

        Without ``stop`` the search goes to the end of the stream and drops the
        bytes it passes; with it, it looks only before ``stop`` and keeps them.
        """
        position = max(start, self.base)
        while True:
            limit = self.end if stop is None else stop
            self.fill(
                min(position + READ_CHUNK, limit) if stop is not None else position + READ_CHUNK
            )
            found = self.buffer.find(needle, position - self.base, limit - self.base)
            if found >= 0:
                return self.base + found
            if self.eof or (stop is not None and self.end >= stop):
                return -1
            position = max(position, self.end - len(needle) + 1)
            if stop is None:
                self.drop(position)

    def skip(self, until: int) -> None:
        """Read on to offset ``until`` (or the end of the stream), keeping nothing."""
        while self.base < until and not (self.eof and not self.buffer):
            self.fill(min(until, self.base + READ_CHUNK))
            self.drop(min(until, self.end))
            if self.eof and self.end < until:
                return

    def drop(self, before: int) -> None:
        """Forget the bytes before offset ``before``."""
        count = before - self.base
        if count > 0:
            del self.buffer[:count]
            self.base = before


def is_gzip(head: bytes) -> bool:
    return head.startswith(GZIP_MAGIC[:2])


@dataclass
class _Inflated:
    """What inflating one gzip member from ``start`` gave."""

    end: int  # where the member ended, or how far inflating got before it failed
    data: bytes = b""
    cut: bool = False
    error: str | None = None  # zlib's complaint
    at_eof: bool = False  # the file ended inside the member


def _inflate(window: _Window, start: int, max_keep: int) -> _Inflated:
    """Inflate the member at ``start``, keeping at most ``max_keep`` bytes of its content."""
    inflater = zlib.decompressobj(31)
    kept: list[bytes] = []
    size, position, cut = 0, start, False

    def keep(out: bytes) -> None:
        nonlocal size, cut
        room = max_keep - size
        if len(out) > room:
            out, cut = out[: max(room, 0)], True
        if out:
            kept.append(out)
            size += len(out)

    while True:
        data = window.slice(position, position + FEED_CHUNK)
        if not data:
            return _Inflated(position, b"".join(kept), cut, "the file ends inside it", True)
        try:
            keep(inflater.decompress(data, INFLATE_CHUNK))
            while inflater.unconsumed_tail and not inflater.eof:
                keep(inflater.decompress(inflater.unconsumed_tail, INFLATE_CHUNK))
        except zlib.error as error:
            return _Inflated(position + len(data), error=str(error))
        if inflater.eof:
            end = position + len(data) - len(inflater.unused_data)
            return _Inflated(end, b"".join(kept), cut)
        position += len(data)
        if not cut:
            continue
        # The content is past what we keep: the compressed bytes behind are no longer needed.
        window.drop(position)


def _next_member(window: _Window, after: int, keep: int) -> int:
    """The offset of the next gzip header after ``after`` that starts a WARC record, or -1.

    The first ``keep`` bytes searched stay in the window (``_damage`` reads them).
    """
    position = after
    while True:
        found = window.find(GZIP_MAGIC, position, after + keep)
        if found < 0 and not window.eof:
            found = window.find(GZIP_MAGIC, max(position, after + keep - len(GZIP_MAGIC)))
        if found < 0:
            return -1
        probe = zlib.decompressobj(31)
        try:
            head = probe.decompress(window.slice(found, found + 4096), len(_RECORD_START))
        except zlib.error:
            head = b""
        if head.startswith(_RECORD_START):
            return found
        position = found + 1


def _damage(window: _Window, start: int, end: int) -> str:
    """Why the member at ``start`` failed, from its bytes up to ``end`` (where the next begins).

    Bytes that inflate cleanly but stop before the member's end were cut
    short; bytes that do not inflate, or fail their checksum, are damaged.
    """
    if window.base > start:
        return "extract_record_corrupt"
    inflater = zlib.decompressobj(31)
    try:
        inflater.decompress(window.slice(start, end), INFLATE_CHUNK)
        while inflater.unconsumed_tail and not inflater.eof:
            inflater.decompress(inflater.unconsumed_tail, INFLATE_CHUNK)
    except zlib.error:
        return "extract_record_corrupt"
    return "extract_record_corrupt" if inflater.eof else "extract_record_truncated"


def gzip_records(stream: IO[bytes], max_bytes: int) -> Iterator[RecordUnit]:
    """The records of a file gzipped per record: one unit per gzip member, or per damaged run.

    A member that fails to inflate is reported up to the next member that
    starts a WARC record: as ``extract_record_truncated`` where its bytes
    stop short (the file was cut, or a record was lost from the middle),
    else as ``extract_record_corrupt``.
    """
    window = _Window(stream)
    position, keep = 0, max_bytes + HEADER_SLACK
    while True:
        window.drop(position)
        window.fill(position + len(GZIP_MAGIC))
        if window.end <= position:
            return
        if window.slice(position, position + len(GZIP_MAGIC)) != GZIP_MAGIC:
            found = _next_member(window, position, keep)
            end = found if found >= 0 else window.end
            detail = f"{end - position} bytes that are not a gzip member"
            yield RecordUnit(position, end - position, problem=("extract_record_corrupt", detail))
            if found < 0:
                return
            position = found
            continue
        inflated = _inflate(window, position, keep)
        if inflated.error is None:
            yield RecordUnit(position, inflated.end - position, inflated.data, cut=inflated.cut)
            position = inflated.end
            continue
        if inflated.at_eof:
            detail = f"the gzip member {inflated.error}"
            problem = ("extract_record_truncated", detail)
            yield RecordUnit(position, window.end - position, problem=problem)
            return
        found = _next_member(window, position + 1, keep)
        end = found if found >= 0 else window.end
        reason = _damage(window, position, end)
        how = "stops short" if reason == "extract_record_truncated" else "does not inflate"
        detail = f"the gzip member {how} ({inflated.error})"
        yield RecordUnit(position, end - position, problem=(reason, detail))
        if found < 0:
            return
        position = found


def holds_several_records(unit: RecordUnit) -> bool:
    """Whether a gzip member's content is more than one record: a file gzipped as one stream."""
    if unit.data is None:
        return False
    end = _declared_end(unit.data)
    return end is not None and unit.data[end : end + len(_RECORD_START)] == _RECORD_START


def _declared_end(data: bytes) -> int | None:
    """Where a record ends by its header's Content-Length (its trailing CRLF CRLF included)."""
    header_end = data.find(b"\r\n\r\n")
    if header_end < 0:
        return None
    match = CONTENT_LENGTH.search(data, 0, header_end + 2)
    if match is None:
        return None
    return header_end + 4 + int(match.group(1)) + 4


class _InflatingReader:
    """The decompressed bytes of a gzip file, member after member, ending quietly where it breaks.

    ``problem`` then says why, so the records read before the break are kept.
    """

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.inflater = zlib.decompressobj(31)
        self.fed = False  # the current member's inflater has had bytes
        self.pending = b""
        self.problem: str | None = None
        self.done = False

    def read(self, size: int) -> bytes:
        out: list[bytes] = []
        total = 0
        while total < size and not self.done:
            data = self.pending or self.stream.read(READ_CHUNK)
            self.pending = b""
            if not data:
                if self.fed:
                    self.problem = "the file ends inside a gzip member"
                self.done = True
                break
            self.fed = True
            try:
                chunk = self.inflater.decompress(data, size - total)
            except zlib.error as error:
                self.problem, self.done = f"the gzip stream breaks: {error}", True
                break
            self.pending = self.inflater.unconsumed_tail
            if self.inflater.eof:
                self.pending = self.inflater.unused_data
                self.inflater, self.fed = zlib.decompressobj(31), False
            out.append(chunk)
            total += len(chunk)
        return b"".join(out)


def stream_records(stream: IO[bytes], max_bytes: int, gzipped: bool) -> Iterator[RecordUnit]:
    """The records of a plain file, or one gzipped as a single stream, by Content-Length.

    Offsets are into the decompressed bytes. Where the bytes after a record's
    declared end are not the next record, the record ends at the next
    ``WARC/1.`` line instead (looked for within the bytes a record may keep).
    Where the gzip stream breaks, the records before the break are read and
    the break is reported: no later record can be found in a broken stream.
    """
    source = _InflatingReader(stream) if gzipped else stream
    window = _Window(source)
    last = None
    for last in _split_stream(window, max_bytes):
        yield last
    problem = getattr(source, "problem", None)
    if problem and (last is None or last.problem is None):
        yield RecordUnit(window.end, 0, problem=("extract_record_truncated", problem))


def _split_stream(window: _Window, max_bytes: int) -> Iterator[RecordUnit]:
    position = 0
    while True:
        window.drop(position)
        window.fill(position + HEADER_SLACK)
        if window.end <= position:
            return
        if window.slice(position, position + len(_RECORD_START)) != _RECORD_START:
            found = window.find(b"\n" + _RECORD_START, position)
            end = found + 1 if found >= 0 else window.end
            detail = f"{end - position} bytes that are not a WARC record"
            yield RecordUnit(position, end - position, problem=("extract_record_corrupt", detail))
            if found < 0:
                return
            position = end
            continue
        unit = _stream_record(window, position, max_bytes)
        yield unit
        if unit.length <= 0:
            return
        position += unit.length


def _stream_record(window: _Window, start: int, max_bytes: int) -> RecordUnit:
    head = window.slice(start, start + HEADER_SLACK)
    declared = _declared_end(head)
    if declared is None:
        found = window.find(b"\n" + _RECORD_START, start + 1)
        end = found + 1 if found >= 0 else window.end
        if found < 0 and b"\r\n\r\n" not in head:
            return RecordUnit(
                start, end - start, problem=("extract_record_truncated", "no header end")
            )
        detail = "a WARC header without a Content-Length"
        return RecordUnit(start, end - start, problem=("extract_record_corrupt", detail))
    end, limit = start + declared, start + max_bytes + HEADER_SLACK
    if end > limit:  # longer than what a record keeps: trust its length
        data = window.slice(start, limit)
        window.skip(end)
        if window.end < end - 4:
            detail = f"the file ends {end - 4 - window.end} bytes before the record's end"
            return RecordUnit(
                start, window.end - start, problem=("extract_record_truncated", detail)
            )
        return RecordUnit(start, end - start, data, cut=True)
    window.fill(end + len(_RECORD_START))
    if window.slice(end, end + len(_RECORD_START)) in (_RECORD_START, b"") and window.end >= end:
        return RecordUnit(start, end - start, window.slice(start, end))
    # The Content-Length lies, or the file ends early: the record ends where the next begins.
    found = window.find(b"\r\n\r\n" + _RECORD_START, start, min(window.end, limit))
    if found >= 0:
        return RecordUnit(start, found + 4 - start, window.slice(start, found + 4))
    if window.eof and window.end < end:
        detail = f"the file ends {end - window.end} bytes before the record's end"
        return RecordUnit(start, window.end - start, problem=("extract_record_truncated", detail))
    return RecordUnit(start, end - start, window.slice(start, end))


def _end(stream: IO[bytes]) -> int:
    """The stream's size, its position left where it was."""
    position = stream.tell()
    end = stream.seek(0, 2)
    stream.seek(position)
    return end


def read_records(stream: IO[bytes], max_bytes: int) -> Iterator[RecordUnit]:
    """Every record of a crawl file, whatever its compression; see the module."""
    head = stream.read(len(GZIP_MAGIC))
    stream.seek(0)
    if not is_gzip(head):
        yield from stream_records(stream, max_bytes, gzipped=False)
        return
    units = gzip_records(stream, max_bytes)
    first = next(units, None)
    # A first member that holds several records, or that the file ends inside, is a file
    # gzipped as one stream (whole or cut): read on through its decompressed bytes.
    one_stream = first is not None and (
        holds_several_records(first) or (first.problem is not None and first.length >= _end(stream))
    )
    if one_stream:
        units.close()
        stream.seek(0)
        yield from stream_records(stream, max_bytes, gzipped=True)
        return
    if first is not None:
        yield first
        yield from units
