"""The HTTP/1.1 response reader on bytes: framing, interim responses, limits, strict numbers."""

from __future__ import annotations

import pytest

from paircurate.transforms.crawl.http1 import (
    DEFAULT_LIMITS,
    Body,
    ConnectionLost,
    Incomplete,
    Limits,
    Malformed,
    OverLimit,
    Reader,
    UnsupportedCoding,
    framing,
    read_head,
)


def source(data: bytes, piece: int = 7):
    """``receive`` over ``data``, at most ``piece`` bytes at a time, then b"" for ever."""
    position = 0

    def receive(size: int) -> bytes:
        nonlocal position
        block = data[position : position + min(size, piece)]
        position += len(block)
        return block

    return receive


def read(data: bytes, limits: Limits = DEFAULT_LIMITS, piece: int = 7):
    """(status, body, reusable, bytes left unread) of the response in ``data``."""
    reader = Reader(source(data, piece))
    head = read_head(reader, limits)
    frame = framing(head)
    body = Body(reader, frame, limits)
    chunks = []
    while block := body.read1(5):
        chunks.append(block)
    return head.status, b"".join(chunks), frame.reusable and body.done, reader.pending


def test_a_content_length_body_and_a_reusable_connection() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: image/png\r\n\r\nhello"
    assert read(data) == (200, b"hello", True, 0)


def test_bytes_after_the_response_are_left_pending_and_the_connection_is_not_reused() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\n"
    status, body, reusable, pending = read(data, piece=1 << 16)
    assert (status, body, pending > 0) == (200, b"hi", True)


def test_chunks_with_extensions_and_trailers() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n"
    )
    assert read(data) == (200, b"abcde", True, 0)


@pytest.mark.parametrize("status", [100, 102, 103, 199])
def test_interim_responses_are_skipped(status: int) -> None:
    data = (
        b"HTTP/1.1 %d Interim\r\nLink: </a.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" % status
    )
    assert read(data) == (200, b"ok", True, 0)


def test_endless_interim_responses_are_bounded() -> None:
    data = b"HTTP/1.1 103 Early Hints\r\n\r\n" * 20
    with pytest.raises(OverLimit, match="more than 8 interim"):
        read(data)


def test_101_without_an_upgrade_request_is_malformed() -> None:
    with pytest.raises(Malformed, match="101"):
        read(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")


@pytest.mark.parametrize(
    ("lengths", "error"),
    [
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", "conflicting"),
        (b"Content-Length: 5, 6\r\n", "conflicting"),
        (b"Content-Length: \xc2\xb2\r\n", "not a number"),  # "²" as UTF-8
        (b"Content-Length: \xd9\xa3\r\n", "not a number"),  # an Arabic-Indic 3
        (b"Content-Length: 1_0\r\n", "not a number"),
        (b"Content-Length: +5\r\n", "not a number"),
        (b"Content-Length: -1\r\n", "not a number"),
        (b"Content-Length: 0x10\r\n", "not a number"),
        (b"Content-Length: " + b"9" * 5000 + b"\r\n", "not a number"),
        (b"Content-Length: \r\n", "not a number"),
    ],
)
def test_content_length_must_be_one_number_of_ascii_digits(lengths: bytes, error: str) -> None:
    with pytest.raises(Malformed, match=error):
        read(b"HTTP/1.1 200 OK\r\n" + lengths + b"\r\nhello!")


def test_repeated_equal_content_lengths_are_one() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok"
    assert read(data) == (200, b"ok", True, 0)


def test_content_length_beside_chunked_uses_chunks_and_closes_the_connection() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n"
    )
    assert read(data) == (200, b"ok", False, 0)


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"identity", b"chunked, gzip"])
def test_other_transfer_codings_are_refused(coding: bytes) -> None:
    with pytest.raises(UnsupportedCoding):
        read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding + b"\r\n\r\n0\r\n\r\n")


def test_chunked_twice_is_malformed() -> None:
    with pytest.raises(Malformed, match="Transfer-Encoding"):
        read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    "chunk", [b"\xd9\xa3\r\nabc\r\n", b"-1\r\n", b"0x3\r\nabc\r\n", b"ffffffffffffffffff\r\n"]
)
def test_chunk_sizes_are_ascii_hex(chunk: bytes) -> None:
    with pytest.raises(Malformed, match="not a chunk size"):
        read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + b"0\r\n\r\n")


def test_a_chunk_longer_than_its_size_is_malformed() -> None:
    with pytest.raises(Malformed, match="does not end where"):
        read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n")


def test_a_close_delimited_body_ends_with_the_connection_and_is_not_reused() -> None:
    assert read(b"HTTP/1.1 200 OK\r\n\r\nall of it") == (200, b"all of it", False, 0)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok",
    ],
)
def test_http_1_0_and_connection_close_are_not_reused(head: bytes) -> None:
    assert read(head) == (200, b"ok", False, 0)


def test_bare_lf_lines_and_folded_headers_are_read() -> None:
    data = b"HTTP/1.1 200 OK\nX-Long: one\n  two\nContent-Length: 2\n\nok"
    reader = Reader(source(data))
    head = read_head(reader)
    assert head.first("x-long") == "one two"
    assert Body(reader, framing(head)).read1(10) == b"ok"


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 600 High\r\n\r\n",
        b"HTTP/1.1 \xd9\xa2\xd9\xa0\xd9\xa0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded first\r\n\r\n",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\n\n",
    ],
)
def test_malformed_heads_are_refused(data: bytes) -> None:
    with pytest.raises(Malformed):
        read(data)


@pytest.mark.parametrize(
    ("data", "limit"),
    [
        (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", "header lines"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", "bytes in the status"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000, "bytes in the status"),
    ],
)
def test_heads_over_their_limits_are_refused(data: bytes, limit: str) -> None:
    with pytest.raises(OverLimit, match=limit):
        read(data, piece=1 << 16)


def test_trailers_are_bounded() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
    with pytest.raises(OverLimit, match="trailer lines"):
        read(data + b"X-T: 1\r\n" * 200 + b"\r\n", piece=1 << 16)


def test_a_long_chunk_size_line_is_over_its_limit() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;" + b"x" * 5000 + b"\r\n"
    with pytest.raises(OverLimit, match="chunk-size line"):
        read(data, piece=1 << 16)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", ConnectionLost),
        (b"HTTP/1.1 200 OK\r\n", ConnectionLost),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", ConnectionLost),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", Incomplete),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", Incomplete),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", Incomplete),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n", Incomplete),
    ],
)
def test_a_connection_lost_early_says_where(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        read(data)


def test_a_timeout_names_the_phase_it_met() -> None:
    def receive(size: int) -> bytes:
        raise TimeoutError("no data for 1 s")

    with pytest.raises(TimeoutError, match="while reading the status line and headers"):
        read_head(Reader(receive))
