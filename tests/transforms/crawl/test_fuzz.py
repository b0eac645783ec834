"""Fuzz targets (hypothesis): the HTTP/1.1 response reader, and the URL and address guard.

The inputs start from the corpus in fuzz_corpus/ (responses, URLs) and are
mutated with the tokens that matter to each parser, beside inputs made from
scratch. ``make test`` runs a bounded, reproducible number of examples; for a
longer run by hand, ask for more (each run then draws new ones):

    PAIRCURATE_FUZZ_EXAMPLES=200000 .venv/bin/python -m pytest tests/transforms/crawl/test_fuzz.py

A failing input is printed by hypothesis; add it to the corpus and to the
tests of the module it broke.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import DownloadConfig
from paircurate.transforms.crawl import download
from paircurate.transforms.crawl.addresses import address_problem
from paircurate.transforms.crawl.dns import DnsCache
from paircurate.transforms.crawl.http1 import (
    Body,
    Limits,
    Reader,
    ResponseError,
    framing,
    read_head,
)

CORPUS = Path(__file__).parent / "fuzz_corpus"
RESPONSES = [path.read_bytes() for path in sorted((CORPUS / "responses").iterdir())]
URLS = (CORPUS / "urls.txt").read_text(encoding="utf-8").splitlines()
_BY_HAND = "PAIRCURATE_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=int(os.environ.get("PAIRCURATE_FUZZ_EXAMPLES", "300")),
    derandomize=not _BY_HAND,  # make test: the same examples every run
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Small limits, so that mutated inputs reach them.
LIMITS = Limits(
    head_bytes=512, header_lines=8, interim_responses=2, chunk_line_bytes=32, trailer_lines=3
)
HTTP_TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"\0",
    b"HTTP/1.1 ",
    b"HTTP/1.0 ",
    b"100 Continue",
    b"101",
    b"103",
    b"204",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip",
    b"Connection: close",
    b"0\r\n\r\n",
    b"ffffffff",
    b"-1",
    b"+",
    b"\xd9\xa3",
    "²".encode(),
    b"9" * 30,
]
URL_TOKENS = [
    "@",
    ":",
    "[",
    "]",
    "%",
    "%25",
    "#",
    "?",
    "/",
    "\\",
    ".",
    "0x",
    "0",
    "127.0.0.1",
    "::ffff:",
    "64:ff9b::",
    "2002:",
    "localhost",
    "ü",
    "１",
    "\u3002",
    " ",
    "\t",
    "\0",
    "65535",
    "99999",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list, tokens: list, empty: bytes | str):
    """A seed with a few insertions, deletions, replacements and duplications."""
    data = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        end = draw(st.integers(at, min(len(data), at + 8)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "repeat"]))
        token = draw(st.sampled_from(tokens))
        if operation == "insert":
            data = data[:at] + token + data[at:]
        elif operation == "delete":
            data = data[:at] + data[end:]
        elif operation == "replace":
            data = data[:at] + token + data[end:]
        else:
            data = data[:at] + data[at:end] * draw(st.integers(2, 40)) + data[end:]
    return data if data else empty


responses = st.one_of(mutated(RESPONSES, HTTP_TOKENS, b""), st.binary(max_size=300))


def _read(data: bytes, piece: int) -> tuple:
    """What the reader makes of ``data`` fed ``piece`` bytes at a time: the status, body,
    whether the framing allows reuse, and how many bytes came after the response (which
    depends on how many were received); or the error's class."""
    position = 0

    def receive(size: int) -> bytes:
        nonlocal position
        block = data[position : position + min(size, piece)]
        position += len(block)
        return block

    reader = Reader(receive)
    try:
        head = read_head(reader, LIMITS)
        frame = framing(head)
        body = Body(reader, frame, LIMITS)
        chunks = []
        while block := body.read1(3):
            chunks.append(block)
    except ResponseError as error:
        return (type(error).__name__,)
    return head.status, b"".join(chunks), frame.reusable and body.done, reader.pending


@FUZZ
@given(data=responses, piece=st.integers(1, 64))
@example(data=b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\nx", piece=1)
@example(data=b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\n\r\nx", piece=5)
def test_the_reader_raises_only_its_own_errors_and_does_not_care_how_bytes_arrive(
    data: bytes, piece: int
) -> None:
    whole = _read(data, len(data) + 1)
    assert _read(data, piece)[:3] == whole[:3]  # however the bytes were split
    if len(whole) == 4:
        status, body, reusable, pending = whole
        assert 100 <= status <= 599 and len(body) <= len(data)
        assert not reusable or len(body) + pending < len(data)


addresses = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.builds(
        lambda prefix, v4: str(ipaddress.IPv6Address(prefix | int(v4))),
        st.sampled_from([0, 0xFFFF << 32, 0xFFFF << 64, 0x0064FF9B << 96]),
        st.ip_addresses(v=4),
    ),
)


@FUZZ
@given(address=addresses)
def test_an_embedded_address_is_judged_as_its_ipv4_address(address: str) -> None:
    ip = ipaddress.ip_address(address)
    problem = address_problem(address)
    embedded = None
    if ip.version == 6 and int(ip) >> 32 in (0, 0xFFFF, 0xFFFF0000, 0x0064FF9B << 64):
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if embedded is not None and int(ip) > 1:
        assert (problem is None) == (address_problem(str(embedded)) is None)
    if problem is None:  # what we let through, Python also calls global
        assert (embedded or ip).is_global


urls = st.one_of(mutated(URLS, URL_TOKENS, ""), st.text(max_size=80))
# The guard needs no connection: one downloader serves every example.
_GUARD = download.Downloader(DownloadConfig(respect_tdmrep=False))


@FUZZ
@given(url=urls, answer=addresses)
@example(url="http://[::127.0.0.1]/", answer="8.8.8.8")
@example(url="http://a.localhost/", answer="8.8.8.8")
def test_the_guard_refuses_with_a_reason_and_never_lets_a_non_public_address_through(
    url: str, answer: str
) -> None:
    """Every name resolves to ``answer``; an IP literal to itself, as getaddrinfo does."""

    def lookup(host: str) -> tuple[str, ...]:
        try:
            return (str(ipaddress.ip_address(host)),)
        except ValueError:
            return (answer,)

    _GUARD.dns = DnsCache(lookup=lookup)
    try:
        origin, target = _GUARD._check_target(url)
    except download._Failure as failure:
        assert failure.reason in REASONS
        return
    for address in lookup(origin.host):
        assert address_problem(address) is None
    assert target.isascii() and target.isprintable() and " " not in target


@pytest.mark.parametrize("path", sorted((CORPUS / "responses").iterdir()), ids=lambda p: p.name)
def test_the_corpus_reads_the_same_byte_by_byte(path: Path) -> None:
    data = path.read_bytes()
    assert _read(data, 1)[:3] == _read(data, len(data))[:3]
