"""The whole job on the local runner over the synthetic web: accounting, outputs, determinism."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections import Counter

import pyarrow.parquet as pq
import pytest
import webdataset as wds
from conftest import PAIRS, read_ledger, run_job_on, shard_files

from paircurate.schemas.codes import REASONS

pytestmark = pytest.mark.slow

# What each labelled kind of row must end as in the ledger.
EXPECTED_REASON = {
    "clean": None,
    "mismatched": None,  # CLIP scoring is what catches these
    "non_english": None,
    "duplicate_url": "url_duplicate",
    "http_404": "download_http_404",
    "http_500": "download_http_5xx",
    "slow": "download_timeout",
    "truncated": "image_truncated",
    "html": "image_decode_error",
    "tiny_image": "image_too_small",
}


def test_every_input_row_is_in_the_ledger_exactly_once(first_run, web):
    output, stats = first_run
    ledger = read_ledger(output)
    assert len(ledger) == PAIRS == stats["rows_in"]
    assert sorted(row["row_number"] for row in ledger) == list(range(PAIRS))
    assert {row["status"] for row in ledger} <= {"kept", "dropped", "failed"}
    for row in ledger:
        if row["status"] == "kept":
            assert row["reason"] is None and row["key"] == row["uid"]
        else:
            assert REASONS[row["reason"]].status.value == row["status"]
    assert sum(entry["count"] for entry in stats["status"].values()) == PAIRS


def test_each_kind_of_row_gets_its_own_reason(first_run):
    output, _ = first_run
    ledger = read_ledger(output)
    labels = Counter(row["truth_label"] for row in ledger)
    assert all(labels[label] >= 1 for label in EXPECTED_REASON), labels
    # An original that has copies may lose to one of them (see test_dedup.py).
    originals = {
        row["truth_duplicate_of"]
        for row in ledger
        if row["truth_label"] in ("duplicate_bytes", "near_duplicate")
    }
    for row in ledger:
        if row["row_number"] in originals:
            continue
        expected = EXPECTED_REASON.get(row["truth_label"], "not checked")
        if expected != "not checked":
            assert row["reason"] == expected, row
    extreme = [row["reason"] for row in ledger if row["truth_label"] == "extreme_aspect"]
    assert extreme and set(extreme) <= {"image_aspect_ratio", "image_too_small"}


def test_duplicates_name_the_row_they_repeat(first_run):
    output, _ = first_run
    ledger = read_ledger(output)
    by_row = {row["row_number"]: row for row in ledger}
    duplicates = [row for row in ledger if row["reason"] == "url_duplicate"]
    assert duplicates
    for row in duplicates:
        assert row["duplicate_of"] == by_row[row["truth_duplicate_of"]]["uid"]


def test_kept_rows_equal_samples_in_shards_and_shard_parquet(first_run):
    output, stats = first_run
    ledger = read_ledger(output)
    kept = {row["uid"] for row in ledger if row["status"] == "kept"}
    sizes = json.loads((output / "shards" / "sizes.json").read_text())
    tars = shard_files(output, ".tar")
    assert [t.name for t in tars] == sorted(sizes) and len(tars) == stats["shards"] >= 2
    samples = list(wds.WebDataset([str(t) for t in tars], shardshuffle=False).decode("pil"))
    assert {s["__key__"] for s in samples} == kept
    assert len(samples) == sum(sizes.values()) == stats["kept"] == len(kept)
    for sample in samples:
        meta = sample["json"]
        assert sample["txt"] == meta["caption"]
        assert sample["jpg"].size == (meta["width"], meta["height"]) == (256, 256)
        assert meta["status"] == "kept" and meta["truth_label"]
    parquet_keys = [
        key
        for path in shard_files(output, ".parquet")
        for key in pq.read_table(path)["key"].to_pylist()
    ]
    assert sorted(parquet_keys) == sorted(kept)
    for tar in tars:
        with tarfile.open(tar) as archive:
            names = archive.getnames()
        assert names == sorted(names)
        table = pq.read_table(tar.with_suffix(".parquet"))
        assert table.num_rows == sizes[tar.name]


def test_two_runs_give_byte_identical_shards(first_run, manifest, tmp_path):
    """The first run decodes in an image pool (auto, on the local runner); this one does not."""
    output, _ = first_run
    again = tmp_path / "again"
    run_job_on(manifest, again, "--image-processes", "0")
    first = {p.name: p.read_bytes() for p in shard_files(output, ".tar")}
    second = {p.name: p.read_bytes() for p in shard_files(again, ".tar")}
    assert first == second
    indexes = [
        {p.name: p.read_bytes() for p in shard_files(out, ".idx")} for out in (output, again)
    ]
    assert indexes[0] == indexes[1] and len(indexes[0]) == len(first)  # DALI's, with the tars
    keys = lambda out: {(r["uid"], r["shard"], r["status"]) for r in read_ledger(out)}  # noqa: E731
    assert keys(output) == keys(again)


def test_rerun_reuses_fetched_chunks_without_downloading(first_run, manifest, server, tmp_path):
    output, _ = first_run
    copy = tmp_path / "copy"
    shutil.copytree(output, copy)
    for stale in (copy / "shards").glob("*"):
        stale.unlink()
    served = server.requests_served
    stats = run_job_on(manifest, copy)
    assert server.requests_served == served
    assert stats["stages"]["fetch"]["rows"] == 0
    first = {p.name: p.read_bytes() for p in shard_files(output, ".tar")}
    assert first == {p.name: p.read_bytes() for p in shard_files(copy, ".tar")}


def test_multi_processing_workers_give_the_same_shards(first_run, manifest, tmp_path):
    output, _ = first_run
    parallel = tmp_path / "parallel"
    run_job_on(
        manifest, parallel, "--direct_num_workers=2", "--direct_running_mode=multi_processing"
    )
    first = {p.name: p.read_bytes() for p in shard_files(output, ".tar")}
    assert first == {p.name: p.read_bytes() for p in shard_files(parallel, ".tar")}
    assert len(read_ledger(parallel)) == PAIRS
    decided = ("uid", "status", "reason", "duplicate_of", "cluster_id", "caption_cluster")
    # The model scored in two worker processes, in other batches: same scores.
    scores = lambda out: {r["uid"]: r["clip_score"] or 0.0 for r in read_ledger(out)}  # noqa: E731
    assert scores(output) == pytest.approx(scores(parallel), abs=1e-5)
    decisions = lambda out: sorted(tuple(r[k] or "" for k in decided) for r in read_ledger(out))  # noqa: E731
    assert decisions(output) == decisions(parallel)
