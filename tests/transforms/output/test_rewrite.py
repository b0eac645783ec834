"""Taking rows out of a run's files: every file of a part, idempotent, then published."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from paircurate.pipeline.filesystem import FILES
from paircurate.schemas.records import ledger_schema
from paircurate.transforms.compliance.removal import ListMatch
from paircurate.transforms.output import storage
from paircurate.transforms.output.indexes import ShardFile
from paircurate.transforms.output.publish import write_wids_index
from paircurate.transforms.output.removed import finish_removal
from paircurate.transforms.output.rewrite import PartRewriter
from paircurate.transforms.output.shards import sample_members
from paircurate.transforms.output.store import OutputLayout, image_member, write_parquet

SCHEMA = ledger_schema()
PART = "00002"
MATCH = ListMatch("sha1", "takedown.csv", 4)


def image(uid: str) -> bytes:
    return f"image of {uid}".encode() * 40


def rows() -> list[dict]:
    """Five rows: three kept, a near duplicate (its image only in the raw shard), a 404."""
    found = []
    for i, status in enumerate(["kept", "kept", "kept", "dropped", "failed"]):
        uid = f"{i:032x}"
        kept = status == "kept"
        found.append({
            "uid": uid, "status": status, "chunk": 2, "language": "en",
            "reason": {"dropped": "near_duplicate", "failed": "download_http_404"}.get(status),
            "image_format": "jpg" if status != "failed" else None,
            "shard": PART if kept else None, "key": uid if kept else None,
        })  # fmt: skip
    return found


@pytest.fixture
def run(tmp_path) -> tuple[OutputLayout, PartRewriter]:
    layout = OutputLayout(FILES, str(tmp_path / "run"))
    ledger = rows()
    kept = [row for row in ledger if row["status"] == "kept"]

    def fill(writer) -> int:
        for row in kept:
            writer.add_all(sample_members(row["key"], image(row["uid"]), "jpg", "c", row))
        return 0

    layout.write_shard(PART, fill)
    write_parquet(FILES, layout.shard_parquet(PART), kept, SCHEMA)
    write_parquet(FILES, layout.ledger_part(PART), ledger, SCHEMA)
    vectors = np.arange(len(kept) * 4, dtype=np.float16).reshape(len(kept), 4)
    storage.write_atomically(
        FILES, layout.embeddings("img_emb", PART), lambda s: np.save(s, vectors)
    )
    raw = layout.raw_store("abc")
    fetched = [row for row in ledger if row["image_format"]]
    name = raw.write_tar(2, lambda w: [w.add(image_member(r["uid"], "jpg"), image(r["uid"]))
                                       for r in fetched])  # fmt: skip
    raw_rows = [
        {**row, "status": None, "reason": None, "shard": None, "key": None} for row in ledger
    ]
    raw.commit(2, raw_rows, SCHEMA, name)
    storage.write_bytes(FILES, layout.sizes_json, json.dumps({f"{PART}.tar": 3}).encode())
    write_wids_index(layout, {PART: ShardFile(3, 1)}, "run")
    stats = {"rows_in": 5, "kept": 3, "version": 1, "image_bytes_written": 3 * 520,
             "status": {"kept": {"count": 3}, "dropped": {"count": 1}, "failed": {"count": 1}},
             "reason": {"near_duplicate": {"count": 1}, "download_http_404": {"count": 1}},
             "languages": {"en": 3}, "options": {"output": {"text_only": False}}}  # fmt: skip
    storage.write_bytes(FILES, layout.stats_json, json.dumps(stats).encode())
    storage.write_bytes(FILES, layout.report_html, b"<html>thumbnails</html>")
    return layout, PartRewriter(layout, raw, version=2, text_only=False)


def tar_names(path: str) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_every_file_of_the_part_loses_the_removed_rows(run):
    layout, rewriter = run
    gone, duplicate = f"{1:032x}", f"{3:032x}"
    records = rewriter.records(PART, {gone: MATCH, duplicate: MATCH, f"{4:032x}": MATCH})
    assert [r["uid"] for r in records] == [gone, duplicate]  # the 404 had no image
    assert records[0]["image_bytes"] == len(image(gone)) and records[1]["image_bytes"] == 0
    outcome = rewriter.apply(PART, records)
    assert (outcome.rows, outcome.samples, outcome.shard_samples) == (2, 1, 2)
    assert not any(name.startswith(gone) for name in tar_names(layout.shard_tar(PART)))
    assert len(tar_names(layout.shard_tar(PART))) == 6
    index = Path(layout.dali_index(PART)).read_text().splitlines()
    assert index[0] == "v1.2 2" and gone not in "".join(index)
    shard_uids = pq.read_table(layout.shard_parquet(PART))["uid"].to_pylist()
    assert shard_uids == [f"{0:032x}", f"{2:032x}"]
    vectors = np.load(layout.embeddings("img_emb", PART))
    assert vectors.tolist() == [[0, 1, 2, 3], [8, 9, 10, 11]]  # the middle sample's row went
    raw = layout.raw_store("abc")
    raw_rows, raw_tar = raw.rows_and_tar(2)
    assert sorted(tar_names(raw_tar)) == [image_member(f"{i:032x}", "jpg") for i in (0, 2)]
    assert len(list(Path(raw.folder).glob("*.tar"))) == 1  # the old raw tar is deleted
    assert {r["uid"]: r["reason"] for r in raw_rows}[duplicate] == "excluded"
    ledger = {row["uid"]: row for row in pq.read_table(layout.ledger_part(PART)).to_pylist()}
    assert ledger[gone]["reason"] == "excluded" and ledger[gone]["shard"] is None
    assert ledger[gone]["compliance_match"] == "takedown.csv:4"
    assert ledger[duplicate]["reason"] == "excluded"
    assert ledger[f"{4:032x}"]["reason"] == "download_http_404"


def test_a_retried_part_reads_its_records_and_ends_the_same(run):
    layout, rewriter = run
    records = rewriter.records(PART, {f"{1:032x}": MATCH})
    rewriter.apply(PART, records)
    paths = [layout.shard_tar(PART), layout.shard_parquet(PART), layout.ledger_part(PART),
             layout.embeddings("img_emb", PART), layout.dali_index(PART)]  # fmt: skip
    before = [Path(path).read_bytes() for path in paths]
    again = rewriter.records(PART, {})  # the matches of a rerun find the row excluded already
    assert again == records
    rewriter.apply(PART, again)
    assert [Path(path).read_bytes() for path in paths] == before


def test_finishing_publishes_the_diff_counts_indexes_and_card_and_clears_the_rest(run):
    layout, rewriter = run
    records = rewriter.records(PART, {f"{1:032x}": MATCH, f"{3:032x}": MATCH})
    outcome = rewriter.apply(PART, records)
    Path(layout.path("index")).mkdir()
    Path(layout.path("index", "ivf.index")).write_bytes(b"old vectors")
    stats = finish_removal(layout, 2, [outcome], {"lists": ["sha1:takedown.csv"]}, "2026-02-01")
    diff = pq.read_table(layout.removed_parquet).to_pylist()
    assert [(r["uid"], r["shard"], r["kind"], r["line"], r["version"]) for r in diff] == [
        (f"{1:032x}", PART, "sha1", 4, 2),
        (f"{3:032x}", None, "sha1", 4, 2),
    ]
    assert "image_format" not in pq.read_schema(layout.removed_parquet).names
    assert (stats["version"], stats["kept"]) == (2, 2)
    assert stats["removals"][0]["samples_removed"] == 1
    assert stats["image_bytes_written"] == 3 * 520 - len(image(f"{1:032x}"))
    assert json.loads(Path(layout.sizes_json).read_text()) == {f"{PART}.tar": 2}
    (entry,) = json.loads(Path(layout.wids_index).read_text())["shardlist"]
    assert (
        entry["nsamples"] == 2 and entry["filesize"] == Path(layout.shard_tar(PART)).stat().st_size
    )
    assert json.loads(Path(layout.croissant_json).read_text())["version"] == "2.0.0"
    assert "removed.parquet" in Path(layout.dataset_card).read_text()
    for gone in (layout.removing, layout.path("index"), layout.report_html):
        assert not Path(gone).exists()


def test_a_second_removal_appends_to_the_diff(run):
    layout, rewriter = run
    first = rewriter.apply(PART, rewriter.records(PART, {f"{0:032x}": MATCH}))
    finish_removal(layout, 2, [first], {"lists": ["a"]}, "2026-02-01")
    third = PartRewriter(layout, rewriter.raw, version=3, text_only=False)
    outcome = third.apply(PART, third.records(PART, {f"{2:032x}": MATCH}))
    stats = finish_removal(layout, 3, [outcome], {"lists": ["b"]}, "2026-02-02")
    diff = pq.read_table(layout.removed_parquet).to_pylist()
    assert [(r["uid"], r["version"]) for r in diff] == [(f"{0:032x}", 2), (f"{2:032x}", 3)]
    assert [r["lists"] for r in stats["removals"]] == [["a"], ["b"]] and stats["kept"] == 1
    assert tar_names(layout.shard_tar(PART)) == [
        f"{1:032x}.{ext}" for ext in ("jpg", "json", "txt")
    ]
