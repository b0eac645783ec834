"""Shard planning and the reproducible tar writer: write, then read back."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from paircurate.transforms.ingest.inputs import make_uid
from paircurate.transforms.output.shards import (
    FIXED_MTIME,
    TarWriter,
    chunk_count,
    chunk_of,
    member_info,
    read_members,
    sample_json,
    sample_members,
    shard_name,
)

UIDS = [make_uid(f"http://a.example/{i}.jpg", f"caption {i}") for i in range(8000)]
MEMBERS = [
    ("000000001.jpg", b"\xff\xd8jpeg bytes"),
    ("000000001.json", b'{"uid": "a"}'),
    ("000000001.txt", "a caption, café".encode()),
    ("000000002.jpg", b""),
    ("000000002.json", b"{}"),
    ("000000002.txt", b"x" * 1000),
]


@pytest.mark.parametrize(
    ("rows", "shard_size", "expected"),
    [(0, 10, 1), (1, 10, 1), (10, 10, 1), (11, 10, 2), (100, 10, 10), (101, 10, 11), (5, 1, 5)],
)
def test_chunk_count(rows: int, shard_size: int, expected: int) -> None:
    assert chunk_count(rows, shard_size) == expected


def test_chunk_of_uses_the_first_64_bits() -> None:
    assert chunk_of("0000000000000010" + "f" * 16, 16) == 0
    assert chunk_of("0000000000000011" + "0" * 16, 16) == 1
    assert chunk_of("ffffffffffffffff" + "0" * 16, 7) == (2**64 - 1) % 7
    assert chunk_of("ab" * 16, 1) == 0


@pytest.mark.parametrize("chunks", [1, 3, 8, 100])
def test_chunk_of_is_stable_and_in_range(chunks: int) -> None:
    first = [chunk_of(uid, chunks) for uid in UIDS]
    assert first == [chunk_of(uid, chunks) for uid in reversed(UIDS)][::-1]
    assert all(0 <= chunk < chunks for chunk in first)


def test_chunk_of_is_roughly_uniform() -> None:
    counts = Counter(chunk_of(uid, 8) for uid in UIDS)
    assert sorted(counts) == list(range(8))
    assert all(900 <= count <= 1100 for count in counts.values()), counts


@pytest.mark.parametrize(
    ("index", "name"), [(0, "00000"), (7, "00007"), (12345, "12345"), (123456, "123456")]
)
def test_shard_name(index: int, name: str) -> None:
    assert shard_name(index) == name


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    writer = TarWriter(out)
    writer.add_all(members)
    writer.close()
    assert writer.count == len(members)
    return out.getvalue()


def test_tar_writes_reach_the_stream_in_large_pieces_and_read_back_whole() -> None:
    class CountingStream(io.BytesIO):
        writes = 0

        def write(self, data) -> int:
            CountingStream.writes += 1
            return super().write(data)

    members = [(f"{i:09d}.jpg", bytes([i % 256]) * 10_000) for i in range(300)]
    out = CountingStream()
    writer = TarWriter(out)
    writer.add_all(members)
    writer.close()
    assert CountingStream.writes <= 4  # 3 MB in 1 MB pieces, not three writes per member
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r:") as tar:
        assert [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()] == members


def _tarfile_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """The same members written by tarfile itself, with the writer's fixed metadata."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            tar.addfile(member_info(name, len(data)), io.BytesIO(data))
    return out.getvalue()


NAMES = [
    "a",
    "000000001.jpg",
    "0" * 64 + ".json",
    "x" * 99,
    "x" * 100,  # the whole name field, no terminating NUL
    "dir/" * 30 + "long.jpg",  # over 100 bytes: split into prefix and name
    "café-ünïcödé.txt",
    "\udcff-undecodable.txt",  # a surrogate-escaped byte, as from os.fsdecode
]
SIZES = [0, 1, 511, 512, 513, 10_239, 10_240, 70_001]


@pytest.mark.parametrize("size", SIZES)
def test_tar_bytes_equal_tarfiles_own(size: int) -> None:
    members = [(name, bytes([index]) * size) for index, name in enumerate(NAMES)]
    assert _tar(members) == _tarfile_bytes(members)


@pytest.mark.parametrize("count", [0, 1, 19, 20, 21])
def test_tar_pads_to_whole_records_as_tarfile_does(count: int) -> None:
    members = [(f"{i:09d}.txt", b"z" * 300) for i in range(count)]
    written = _tar(members)
    assert written == _tarfile_bytes(members)
    assert len(written) % tarfile.RECORDSIZE == 0


def test_a_name_tarfile_cannot_store_is_refused() -> None:
    with pytest.raises(ValueError, match="name is too long"):
        _tar([("x" * 300, b"")])


def test_closing_twice_writes_the_end_once() -> None:
    out = io.BytesIO()
    writer = TarWriter(out)
    writer.add_all(MEMBERS)
    writer.close()
    writer.close()
    assert out.getvalue() == _tarfile_bytes(MEMBERS)


def test_tar_is_byte_identical_for_the_same_members() -> None:
    assert _tar(MEMBERS) == _tar(list(MEMBERS))


def test_tar_differs_when_content_differs() -> None:
    changed = [*MEMBERS[:-1], ("000000002.txt", b"y" * 1000)]
    assert _tar(MEMBERS) != _tar(changed)


def test_tar_has_fixed_metadata() -> None:
    with tarfile.open(fileobj=io.BytesIO(_tar(MEMBERS)), mode="r:") as tar:
        infos = tar.getmembers()
        assert [info.name for info in infos] == [name for name, _ in MEMBERS]
        for info, (_, data) in zip(infos, MEMBERS, strict=True):
            assert info.isfile()
            assert (info.size, info.mtime, info.mode) == (len(data), FIXED_MTIME, 0o444)
            assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")
            assert tar.extractfile(info).read() == data


def test_tar_writer_works_on_an_unseekable_stream() -> None:
    class WriteOnly(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, block: bytes) -> int:  # type: ignore[override]
            self.data += block
            return len(block)

    stream = WriteOnly()
    writer = TarWriter(stream)
    writer.add_all(MEMBERS)
    writer.close()
    assert bytes(stream.data) == _tar(MEMBERS)


def test_empty_tar_round_trips() -> None:
    with tarfile.open(fileobj=io.BytesIO(_tar([]))) as archive:
        assert archive.getmembers() == []


def test_every_member_reads_back() -> None:
    names = [name for name, _ in MEMBERS]
    assert list(read_members(io.BytesIO(_tar(MEMBERS)), names)) == MEMBERS


def test_read_members_in_the_order_asked() -> None:
    wanted = ["000000002.txt", "000000001.jpg", "000000002.jpg"]
    result = list(read_members(io.BytesIO(_tar(MEMBERS)), wanted))
    assert result == [(name, dict(MEMBERS)[name]) for name in wanted]


def test_read_members_raises_on_a_missing_member() -> None:
    members = read_members(io.BytesIO(_tar(MEMBERS)), ["000000001.jpg", "000000003.jpg"])
    assert next(members)[0] == "000000001.jpg"
    with pytest.raises(KeyError, match="member '000000003.jpg' missing from fetched shard"):
        next(members)


def test_sample_json_is_deterministic_and_drops_volatile_fields() -> None:
    row = {"uid": "u1", "caption": "café", "download_ms": 12.5, "width": 32, "status": "kept"}
    reordered = dict(reversed(list(row.items())))
    reordered["download_ms"] = 99.0
    assert sample_json(row) == sample_json(reordered)
    assert (
        sample_json(row)
        == '{"caption": "café", "status": "kept", "uid": "u1", "width": 32}'.encode()
    )
    assert "download_ms" not in json.loads(sample_json(row))


def test_sample_json_writes_other_values_as_text() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    assert json.loads(sample_json({"a": Odd(), "b": None})) == {"a": "odd", "b": None}


def test_sample_members() -> None:
    row = {"uid": "u1", "download_ms": 3.0}
    members = sample_members("000000007", b"IMG", "webp", "a caption", row)
    assert members == [
        ("000000007.json", b'{"uid": "u1"}'),
        ("000000007.txt", b"a caption"),
        ("000000007.webp", b"IMG"),
    ]
    assert sample_members("k", b"I", "jpg", None, {})[2] == ("k.txt", b"")


def test_shard_reads_back_with_webdataset(tmp_path: Path) -> None:
    webdataset = pytest.importorskip("webdataset")
    members = [
        *sample_members("000000001", b"one", "jpg", "first", {"uid": "a"}),
        *sample_members("000000002", b"two", "jpg", "second", {"uid": "b"}),
    ]
    path = tmp_path / f"{shard_name(0)}.tar"
    with open(path, "wb") as stream:
        writer = TarWriter(stream)
        writer.add_all(members)
        writer.close()
    samples = list(webdataset.WebDataset(str(path), shardshuffle=False))
    assert [(s["__key__"], s["jpg"], s["txt"], json.loads(s["json"])) for s in samples] == [
        ("000000001", b"one", b"first", {"uid": "a"}),
        ("000000002", b"two", b"second", {"uid": "b"}),
    ]
