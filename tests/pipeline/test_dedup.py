"""Duplicate clusters on the local runner: labelled duplicates, template captions, the rules."""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_ledger, run_job_on

pytestmark = pytest.mark.slow

TEMPLATE = "stock photo of a shape on a plain background"


def truth_clusters(ledger: list[dict]) -> dict[int, list[dict]]:
    """Original row number -> the original and every labelled copy of it (bytes or near)."""
    by_row = {row["row_number"]: row for row in ledger}
    clusters: dict[int, list[dict]] = defaultdict(list)
    for row in ledger:
        if row["truth_label"] in ("duplicate_bytes", "near_duplicate"):
            clusters[row["truth_duplicate_of"]].append(row)
    return {original: [by_row[original], *copies] for original, copies in clusters.items()}


def test_every_labelled_duplicate_is_caught_and_one_copy_stays(first_run):
    output, stats = first_run
    clusters = truth_clusters(read_ledger(output))
    assert len(clusters) >= 5
    for members in clusters.values():
        kept = [row for row in members if row["status"] == "kept"]
        assert len(kept) == 1, members
        keeper = kept[0]
        for row in members:
            assert row["cluster_id"] == keeper["uid"]
            if row is not keeper:
                assert row["reason"] == "near_duplicate"
                assert row["duplicate_of"] == keeper["uid"]
                assert keeper["uid"] in row["reason_detail"]
        # The keeper rule: the largest original image, then the smallest uid.
        best = min(members, key=lambda r: (-r["original_width"] * r["original_height"], r["uid"]))
        assert keeper["uid"] == best["uid"]
    dropped = sum(len(members) - 1 for members in clusters.values())
    assert stats["reason"]["near_duplicate"]["count"] == dropped
    # Every downloaded pair went through the Decide step, and its clusters converged.
    assert stats["dedup"]["rows"] == stats["kept"] + dropped
    assert stats["dedup"]["unconverged_edges"] == 0


def test_no_distinct_pairs_are_merged(first_run):
    output, _ = first_run
    ledger = read_ledger(output)
    in_clusters = {row["uid"] for members in truth_clusters(ledger).values() for row in members}
    for row in ledger:
        if row["reason"] == "near_duplicate" or row["cluster_id"] is not None:
            assert row["uid"] in in_clusters, row


@pytest.fixture(scope="module")
def template_manifest(web, server, tmp_path_factory) -> str:
    """Six different clean images under one boilerplate caption, plus a copy of the first
    image's bytes (at another URL) under a caption of its own."""
    copy = next(
        e
        for e in web
        if e.label == "duplicate_bytes" and web.entry(e.duplicate_of).label == "clean"
    )
    original = web.entry(copy.duplicate_of)
    clean = [e for e in web if e.label == "clean" and e.index != original.index][:6]
    rows = [{"url": server.base_url + e.path, "caption": TEMPLATE} for e in clean]
    rows += [
        {"url": server.base_url + original.path, "caption": "a picture that nothing else shows"},
        {"url": server.base_url + copy.path, "caption": "the same picture under other words"},
    ]
    path = tmp_path_factory.mktemp("template") / "manifest.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def _run(manifest: str, output, *extra: str) -> dict[str, list[dict]]:
    run_job_on(manifest, output, *extra, keep="")
    by_caption: dict[str, list[dict]] = defaultdict(list)
    for row in read_ledger(output):
        by_caption[row["caption"]].append(row)
    return by_caption


def test_template_captions_over_different_images_stay(template_manifest, tmp_path):
    rows = _run(template_manifest, tmp_path / "out")
    template = rows[TEMPLATE]
    assert [row["status"] for row in template] == ["kept"] * 6
    assert len({row["caption_cluster"] for row in template}) == 1
    assert min(row["uid"] for row in template) == template[0]["caption_cluster"]
    # The same image under two different captions: both stay, in one image cluster.
    pair = [row for caption, group in rows.items() if caption != TEMPLATE for row in group]
    assert [row["status"] for row in pair] == ["kept", "kept"]
    assert pair[0]["image_cluster"] == pair[1]["image_cluster"] == min(r["uid"] for r in pair)


def test_repeat_switches_drop_all_but_the_best(template_manifest, tmp_path):
    rows = _run(
        template_manifest, tmp_path / "out", "--drop-caption-repeats", "--drop-image-repeats"
    )
    template = sorted(rows[TEMPLATE], key=lambda r: -r["original_width"] * r["original_height"])
    keeper = min(template, key=lambda r: (-r["original_width"] * r["original_height"], r["uid"]))
    for row in template:
        if row is keeper:
            assert row["status"] == "kept"
        else:
            assert (row["reason"], row["duplicate_of"]) == ("caption_duplicate", keeper["uid"])
    pair = [row for caption, group in rows.items() if caption != TEMPLATE for row in group]
    assert sorted(row["reason"] or "kept" for row in pair) == ["image_duplicate", "kept"]


def test_caption_cluster_cap_keeps_the_best_pairs(template_manifest, tmp_path):
    rows = _run(template_manifest, tmp_path / "out", "--caption-cluster-cap", "2")
    ranked = sorted(
        rows[TEMPLATE], key=lambda r: (-r["original_width"] * r["original_height"], r["uid"])
    )
    assert [row["status"] for row in ranked] == ["kept", "kept"] + ["dropped"] * 4
    assert {row["reason"] for row in ranked[2:]} == {"caption_cluster_cap"}
    assert ranked[2]["reason_detail"] == "caption cluster of 6 pairs keeps the best 2"


def test_text_only_run_drops_caption_repeats_without_downloading(manifest, server, tmp_path):
    served = server.requests_served
    output = tmp_path / "text"
    stats = run_job_on(manifest, output, "--text-only", "--drop-caption-repeats")
    assert server.requests_served == served
    ledger = read_ledger(output)
    clusters: dict[str, list[dict]] = defaultdict(list)
    for row in ledger:
        if row["caption_cluster"] is not None:
            clusters[row["caption_cluster"]].append(row)
    assert clusters and stats["reason"]["caption_duplicate"]["count"] > 0
    for members in clusters.values():
        assert sum(row["status"] == "kept" for row in members) == 1
    # Labelled near-duplicates and byte copies carry their original's caption or a light edit.
    for members in truth_clusters(ledger).values():
        assert len({row["caption_cluster"] for row in members}) == 1, members
    kept = pq.read_table(output / "metadata").num_rows
    assert kept == stats["kept"]
