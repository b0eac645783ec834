"""Shard indexes written with the tar: DALI's per tar, wids' per run, read back by offset."""

from __future__ import annotations

import json
import random
import tarfile
from pathlib import Path

import pytest

from paircurate.pipeline.filesystem import FILES
from paircurate.transforms.output.indexes import (
    WIDS_KIND,
    ShardFile,
    dali_index,
    samples_of,
    split_member,
)
from paircurate.transforms.output.publish import write_wids_index
from paircurate.transforms.output.shards import TarMember, TarWriter, sample_members
from paircurate.transforms.output.store import OutputLayout


def samples(shard: int, count: int) -> list[tuple[str, bytes, str]]:
    """(key, image bytes, caption) of a shard's samples, with sizes that are not block-sized."""
    rng = random.Random(shard)
    found = []
    for index in range(count):
        key = f"{shard:05d}{index:04d}"
        found.append((key, rng.randbytes(rng.randrange(1, 3000)), f"caption {shard}/{index}"))
    return found


def write_shards(root: Path, counts: list[int]) -> tuple[OutputLayout, dict[str, list]]:
    layout = OutputLayout(FILES, str(root))
    written = {}
    for shard, count in enumerate(counts):
        name = f"{shard:05d}"
        items = samples(shard, count)

        def fill(writer: TarWriter, items=items) -> int:
            for key, image, caption in items:
                writer.add_all(sample_members(key, image, "jpg", caption, {"key": key}))
            return sum(len(image) for _, image, _ in items)

        shard_file = layout.write_shard(name, fill)
        assert shard_file.samples == count
        written[name] = (items, shard_file)
    return layout, written


def test_dali_index_gives_every_member_where_its_data_lies(tmp_path):
    layout, written = write_shards(tmp_path, [5])
    lines = Path(layout.dali_index("00000")).read_text().splitlines()
    assert lines[0] == "v1.2 5"
    with (
        tarfile.open(layout.shard_tar("00000")) as tar,
        open(layout.shard_tar("00000"), "rb") as raw,
    ):
        members = {info.name: tar.extractfile(info).read() for info in tar.getmembers()}
        keys = []
        for line in lines[1:]:
            fields = line.split(" ")
            assert len(fields) == 12  # jpg, json, txt: ext offset size name each
            for ext, offset, size, name in zip(*[iter(fields)] * 4, strict=True):
                assert int(offset) % 512 == 0 and name.endswith(f".{ext}")
                raw.seek(int(offset))
                assert raw.read(int(size)) == members[name]
            keys.append(split_member(fields[3])[0])
    assert keys == [key for key, _, _ in written["00000"][0]]


def test_members_group_into_samples_by_key():
    members = [
        TarMember("a.jpg", 512, 3),
        TarMember("a.txt", 1536, 1),
        TarMember("dir/b.x.json", 0, 1),
    ]
    assert [[m.name for m in sample] for sample in samples_of(members)] == [
        ["a.jpg", "a.txt"],
        ["dir/b.x.json"],
    ]
    assert split_member("dir/b.x.json") == ("dir/b", "x.json")
    assert dali_index([]) is None


def test_an_empty_shard_has_no_dali_index_and_loses_a_stale_one(tmp_path):
    layout, _ = write_shards(tmp_path, [3])
    assert Path(layout.dali_index("00000")).exists()
    layout.write_shard("00000", lambda writer: 0)
    assert not Path(layout.dali_index("00000")).exists()


def test_wids_reads_random_samples_through_the_run_index(tmp_path):
    wids = pytest.importorskip("wids")
    layout, written = write_shards(tmp_path / "run", [4, 0, 7, 2])
    shards = {name: ShardFile(f.samples, f.size) for name, (_, f) in written.items()}
    write_wids_index(layout, shards, "run")
    index = json.loads(Path(layout.wids_index).read_text())
    assert index["__kind__"] == WIDS_KIND and index["name"] == "run"
    assert [entry["url"] for entry in index["shardlist"]] == ["00000.tar", "00002.tar", "00003.tar"]
    for entry in index["shardlist"]:
        assert entry["filesize"] == Path(layout.shards, entry["url"]).stat().st_size
    expected = [item for name in ("00000", "00002", "00003") for item in written[name][0]]
    dataset = wids.ShardListDataset(
        layout.wids_index, cache_dir=str(tmp_path / "cache"), transformations=[]
    )
    assert len(dataset) == len(expected) == 13
    for position in random.Random(7).sample(range(len(expected)), 10):
        key, image, caption = expected[position]
        sample = dataset[position]
        assert sample["__key__"] == key
        assert sample[".jpg"].getvalue() == image
        assert sample[".txt"].getvalue().decode() == caption
