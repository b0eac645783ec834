"""Crawl files cut into records: every record once, a bad one reported, the rest still read."""

from __future__ import annotations

import gzip
import io
import random

import pytest
from fastwarc.warc import ArchiveIterator

from paircurate.transforms.extract.records import RecordUnit, read_records

from .warc_bytes import damaged, http_page, members, pages, warc_record, with_content_length

MAX = 1 << 20


def read(data: bytes, max_bytes: int = MAX) -> list[RecordUnit]:
    return list(read_records(io.BytesIO(data), max_bytes))


def outcomes(units: list[RecordUnit]) -> list[str]:
    return [unit.problem[0] if unit.problem else "ok" for unit in units]


def uris(units: list[RecordUnit]) -> list[str]:
    found = []
    for unit in units:
        if unit.data is not None:
            line = [ln for ln in unit.data.split(b"\r\n") if ln.startswith(b"WARC-Target-URI")]
            found.append(line[0].split(b": ")[1].decode())
    return found


def test_every_member_is_one_record_at_its_offset_and_length():
    parts = members(pages(4))
    units = read(b"".join(parts))
    assert outcomes(units) == ["ok"] * 4
    offsets = [sum(len(p) for p in parts[:n]) for n in range(4)]
    assert [(u.offset, u.length) for u in units] == list(zip(offsets, map(len, parts), strict=True))
    assert [gzip.decompress(parts[n]) for n in range(4)] == [u.data for u in units]


def test_a_member_cut_short_in_the_middle_costs_only_its_record():
    parts = members(pages(5))
    parts[2] = parts[2][: len(parts[2]) // 2]
    units = read(b"".join(parts))
    assert outcomes(units) == ["ok", "ok", "extract_record_truncated", "ok", "ok"]
    assert uris(units) == [f"http://site.test/{n}.html" for n in (0, 1, 3, 4)]
    assert units[2].length == len(parts[2])


def test_a_damaged_member_is_corrupt_and_the_next_is_read():
    parts = members(pages(4))
    parts[1] = damaged(parts[1])
    units = read(b"".join(parts))
    assert outcomes(units) == ["ok", "extract_record_corrupt", "ok", "ok"]
    assert units[2].offset == len(parts[0]) + len(parts[1])


def test_junk_between_members_is_one_corrupt_unit():
    parts = members(pages(3))
    data = parts[0] + b"not gzip at all " * 20 + parts[1] + parts[2]
    units = read(data)
    assert outcomes(units) == ["ok", "extract_record_corrupt", "ok", "ok"]
    assert (units[1].offset, units[1].length) == (len(parts[0]), 320)


def test_a_file_that_ends_inside_its_last_member():
    parts = members(pages(3))
    units = read(b"".join(parts)[:-30])
    assert outcomes(units) == ["ok", "ok", "extract_record_truncated"]


@pytest.mark.parametrize("delta", [5000, -20])
def test_a_lying_content_length_keeps_the_member_as_the_record(delta):
    records = pages(4)
    records[1] = with_content_length(records[1], len(records[1]) + delta)
    units = read(b"".join(members(records)))
    assert outcomes(units) == ["ok"] * 4
    assert uris(units) == [f"http://site.test/{n}.html" for n in range(4)]


def test_fastwarc_alone_loses_records_after_a_lying_length_and_a_damaged_member():
    """Why members are found with zlib: FastWARC's iterator over the whole file loses these."""
    records = pages(4)
    records[1] = with_content_length(records[1], 5000)
    seen = [
        r.headers.get("WARC-Target-URI")
        for r in ArchiveIterator(io.BytesIO(b"".join(members(records))))
    ]
    assert len(seen) < 4
    parts = members(pages(4))
    parts[1] = damaged(parts[1])
    with pytest.raises(OSError):
        list(ArchiveIterator(io.BytesIO(b"".join(parts))))


def test_plain_records_split_by_length_even_where_it_lies():
    records = pages(4)
    records[1] = with_content_length(records[1], len(records[1]) + 3000)
    records[2] = with_content_length(records[2], 40)
    units = read(b"".join(records))
    assert outcomes(units) == ["ok"] * 4
    assert uris(units) == [f"http://site.test/{n}.html" for n in range(4)]
    assert units[3].offset == sum(len(r) for r in records[:3])


def test_a_file_gzipped_as_one_stream_is_read_record_by_record():
    records = pages(30)
    units = read(gzip.compress(b"".join(records), mtime=0))
    assert uris(units) == [f"http://site.test/{n}.html" for n in range(30)]


def test_a_single_stream_that_breaks_keeps_the_records_before_the_break():
    bulk = [random.Random(n).randbytes(4000) for n in range(20)]  # incompressible
    records = [
        warc_record(f"http://site.test/{n}.html", http_page(bulk[n]), number=n) for n in range(20)
    ]
    data = gzip.compress(b"".join(records), mtime=0)
    units = read(data[: len(data) // 2])
    assert 5 < outcomes(units).count("ok") < 20
    assert outcomes(units)[-1] == "extract_record_truncated"


def test_a_record_longer_than_the_cap_is_cut_and_the_next_still_read():
    big = pages(1)[0] + b"x" * 300_000
    parts = members([big, *pages(2)])
    units = read(b"".join(parts), max_bytes=10_000)
    assert [u.cut for u in units] == [True, False, False]
    assert len(units[0].data) < 100_000
    assert units[1].offset == len(parts[0])
