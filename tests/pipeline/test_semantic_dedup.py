"""End to end: --semantic-dedup on a synthetic web with re-framed copies, scored by paircurate-ref.

The re-framed copies (5-10 % cropped off) are past pHash's reach, so only
semantic dedup can catch them. The reference scorer's 64-d image tower tells
colours and backgrounds apart far better than shapes: distinct scenes that
share them sit as close as the copies (cosine 0.92-0.99), so this run merges
some distinct scenes too, which the test does not hide (see
docs/deduplication.md); the unit tests show the grouping on embeddings that
separate the two.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import SLOW_S, read_ledger, run_job_on

from paircurate.pipeline.output.write_report import write_report
from paircurate.schemas.config import ConfigError
from paircurate.synthweb import SyntheticWeb, SyntheticWebServer, WebMix, write_manifest

PAIRS = 120
THRESHOLD = 0.92  # below every re-framed copy's cosine to its original with paircurate-ref


def index_of(row: dict) -> int:
    return int(re.search(r"/img/(\d+)\.", row["url"]).group(1))


@pytest.fixture(scope="module")
def reframed_manifest(tmp_path_factory):
    web = SyntheticWeb(PAIRS, seed=5, mix=WebMix(reframed=0.06))
    with SyntheticWebServer(web, slow_seconds=SLOW_S) as server:
        folder = tmp_path_factory.mktemp("semantic-input")
        yield web, write_manifest(web, server.base_url, str(folder / "manifest.parquet"))


@pytest.fixture(scope="module")
def semantic_run(reframed_manifest, tmp_path_factory):
    web, manifest = reframed_manifest
    output = tmp_path_factory.mktemp("semantic") / "out"
    extra = ("--semantic-dedup", "--semantic-threshold", str(THRESHOLD))
    stats = run_job_on(manifest, output, *extra)
    return web, read_ledger(output), stats, output


@pytest.mark.slow
def test_reframed_copies_are_semantic_duplicates_of_their_originals(semantic_run):
    web, rows, _, _ = semantic_run
    # A re-framed copy's original is a clean row: its URL is its own, /img/INDEX.EXT.
    by_index = {index_of(row): row for row in rows if row["truth_label"] == "clean"}
    checked = 0
    for row in rows:
        if row["truth_label"] != "reframed":
            continue
        original = by_index[row["truth_duplicate_of"]]
        if original["image_format"] is None or row["image_format"] is None:
            continue  # one of them was never downloaded
        checked += 1
        # pHash cannot match a 5-10 % crop reliably, the embedding can: always in one group.
        assert row["semantic_cluster"] is not None
        assert row["semantic_cluster"] == original["semantic_cluster"]
        assert row["status"] == "dropped" or original["status"] == "dropped"
        if row["reason"] is None:
            continue
        assert row["reason"] in ("semantic_duplicate", "near_duplicate")
    assert checked >= 4
    semantic_only = [
        r for r in rows if r["truth_label"] == "reframed" and r["reason"] == "semantic_duplicate"
    ]
    assert semantic_only, "no re-framed copy was left to semantic dedup by the pHash rule"


@pytest.mark.slow
def test_groups_keep_one_pair_by_the_keeper_rule(semantic_run):
    _, rows, stats, _ = semantic_run
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row["semantic_cluster"] is not None:
            groups.setdefault(row["semantic_cluster"], []).append(row)
    assert groups
    for cluster, members in groups.items():
        assert len(members) >= 2
        assert cluster == min(m["uid"] for m in members)
        best = min(members, key=lambda m: (-m["original_width"] * m["original_height"], m["uid"]))
        for member in members:
            if member["reason"] == "semantic_duplicate":
                assert member["duplicate_of"] == best["uid"]
                assert member["status"] == "dropped"
                assert f"kept pair {best['uid']}" in member["reason_detail"]
        # the keeper is dropped only by a rule that came first, never as a semantic duplicate
        assert best["reason"] != "semantic_duplicate"
    dropped = sum(row["reason"] == "semantic_duplicate" for row in rows)
    assert dropped == stats["reason"]["semantic_duplicate"]["count"]
    assert len(rows) == stats["rows_in"] == PAIRS


@pytest.mark.slow
def test_an_earlier_reason_stays(semantic_run):
    _, rows, _, _ = semantic_run
    earlier = [r for r in rows if r["semantic_cluster"] and r["reason"] == "near_duplicate"]
    assert earlier  # pHash-close copies are in semantic groups too, and keep their reason
    for row in rows:
        if row["semantic_cluster"] is None:
            assert row["reason"] != "semantic_duplicate"


@pytest.mark.slow
def test_report_shows_semantic_groups(semantic_run):
    _, rows, _, output = semantic_run
    page = Path(write_report(str(output))).read_text()
    clusters = sorted({r["semantic_cluster"] for r in rows if r["semantic_cluster"]})
    assert "semantic_cluster" in page  # the cluster table and size chart have a row for it
    shown = clusters[:3]  # the groups with the smallest ids
    for cluster in shown:
        size = sum(r["semantic_cluster"] == cluster for r in rows)
        assert f'id="samples-semantic-{cluster[:12]}"' in page
        assert (
            f'Semantic duplicate group {cluster[:12]} <span class="empty-state">({size} rows'
            in page
        )
    assert f"samples-semantic-{clusters[3][:12]}" not in page
    section = page.split(f'id="samples-semantic-{shown[0]}', 1)[-1]
    assert "data:image/" in section.split("sample-group", 1)[0]  # thumbnails


def test_semantic_dedup_needs_clip_scoring(reframed_manifest, tmp_path):
    _, manifest = reframed_manifest
    with pytest.raises(ConfigError, match="--semantic-dedup compares CLIP image embeddings"):
        run_job_on(manifest, tmp_path / "out", "--semantic-dedup", "--clip-model", "none")
