"""The streamed report equals a direct computation over the whole ledger, whatever the batch size.

``direct`` below computes each chart from the full ledger in memory, as the
report did before it streamed; the streamed passes must give the same numbers.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from paircurate.pipeline.filesystem import FILES
from paircurate.report import data
from paircurate.report.aggregates import (
    ASPECT_SPAN,
    CLIP_OUTCOMES,
    SCORE_LANGUAGES,
    collect,
    size_buckets,
)
from paircurate.report.stream import quantile_of_counts
from paircurate.schemas.codes import REASONS
from paircurate.schemas.records import ledger_schema

CODES = ["", "caption_junk", "language", "url_duplicate", "download_http_404",
         "image_too_small", "near_duplicate", "clip_below_threshold"]  # fmt: skip
LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "ja", "zh", "ru", None]


def ledger_part(rng: np.random.Generator, n: int, first: int, chunk: int) -> pa.Table:
    reason = np.array(CODES)[rng.integers(0, len(CODES), n)]
    status = np.array([REASONS[c].status.value if c else "kept" for c in reason], dtype=object)
    downloaded = rng.random(n) < 0.8
    width = rng.lognormal(5.5, 0.6, n).astype(np.int32) + 1
    height = (width * rng.choice([0.5, 0.75, 1.0, 1.5, 9.0], n)).astype(np.int32) + 1
    scored = downloaded & (rng.random(n) < 0.9)
    cluster = np.where(rng.random(n) < 0.3, rng.zipf(1.6, n) % 40, -1)
    columns = {
        "uid": pa.array([f"{first + i:032x}" for i in range(n)]),
        "caption": pa.array(["w" * int(k) if k else None for k in rng.integers(0, 90, n)]),
        "language": pa.array(np.array(LANGUAGES, dtype=object)[rng.integers(0, 11, n)]),
        "status": pa.array(status),
        "reason": pa.array([c or None for c in reason], pa.string()),
        "chunk": pa.array(np.full(n, chunk), pa.int32()),
        "original_width": pa.array(np.where(downloaded, width, None), pa.int32()),
        "original_height": pa.array(np.where(downloaded, height, None), pa.int32()),
        "image_format": pa.array(np.where(scored, "jpg", None), pa.string()),
        "clip_score": pa.array(np.where(scored, rng.normal(0.3, 0.06, n), None), pa.float32()),
        "cluster_id": pa.array([f"c{c}" if c >= 0 else None for c in cluster], pa.string()),
        "caption_cluster": pa.array([f"k{c % 7}" if c >= 0 else None for c in cluster]),
    }
    schema = ledger_schema()
    return pa.Table.from_arrays(
        [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema],
        schema=schema,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report") / "run"
    (folder / "ledger").mkdir(parents=True)
    rng = np.random.default_rng(3)
    first = 0
    for chunk, n in enumerate([700, 1, 1300]):
        table = ledger_part(rng, n, first, chunk)
        pq.write_table(table, folder / "ledger" / f"part-{chunk:05d}.parquet", row_group_size=256)
        first += n
    stats = {"options": {"clip": {"clip_threshold": 0.3, "clip_threshold_by_lang": ["de=0.32"]},
                         "image": {"min_image_size": 64, "max_aspect_ratio": 3.0}}}  # fmt: skip
    (folder / "stats.json").write_text(json.dumps(stats))
    return folder


def quantile(values: np.ndarray, q: float) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if finite.size else None


def direct(folder: Path, thresholds: data.Thresholds, limit: float) -> dict:
    """Every chart's aggregate from the whole ledger held in memory."""
    ledger = pq.read_table(folder / "ledger")
    status = data.as_labels(ledger["status"], "unknown")
    reason = data.as_labels(ledger["reason"], "")
    scores = data.as_numpy(ledger["clip_score"])
    scored = np.isfinite(scores)
    outcome = np.where(status == "kept", CLIP_OUTCOMES[0],
                       np.where(reason == "clip_below_threshold", *CLIP_OUTCOMES[1:]))  # fmt: skip
    lines = [thresholds.absolute, *thresholds.by_language.values()]
    low = min(float(scores[scored].min()), *lines)
    high = max(float(scores[scored].max()), *lines)
    pad = (high - low) * 0.02 or 0.01
    languages = data.as_labels(ledger["language"], "unknown")
    top = list(data.value_counts(pa.array(languages[scored])))[:SCORE_LANGUAGES]
    named = np.where(np.isin(languages, top), languages, "other")
    chars = data.as_numpy(pc.utf8_length(ledger["caption"]))
    width = data.as_numpy(ledger["original_width"])
    height = data.as_numpy(ledger["original_height"])
    sized = np.isfinite(width) & np.isfinite(height)
    width, height, sized_status = width[sized], height[sized], status[sized]
    top_side = max(quantile(width, 0.99), quantile(height, 0.99))
    edges = np.linspace(0, top_side, 41)
    grid = np.histogram2d(np.minimum(width, top_side), np.minimum(height, top_side), [edges] * 2)
    short = np.minimum(width, height)
    ratio = np.maximum(width, height) / short
    ratio_high = min(quantile(ratio, 0.995), max(ASPECT_SPAN, 2 * limit))
    clusters = {}
    for name in data.CLUSTER_COLUMNS:
        sizes = Counter(v for v in ledger[name].to_pylist() if v is not None)
        if sizes:
            clusters[name] = size_buckets(np.array(list(sizes.values())))
    return {
        "rows": ledger.num_rows,
        "by_status": Counter(ledger["status"].to_pylist()),
        "reasons": Counter(r for r in ledger["reason"].to_pylist() if r),
        "languages": Counter(
            zip(ledger["language"].to_pylist(), ledger["status"].to_pylist(), strict=True)
        ),
        "clip_overall": data.histogram(scores, outcome, 60, low - pad, high + pad, CLIP_OUTCOMES),
        "clip_by_language": data.histogram(scores, named, 60, low - pad, high + pad,
                                           (*top, "other")),  # fmt: skip
        "caption_chars": data.histogram(chars, status, 60, 0.0, max(quantile(chars, 0.995), 10),
                                        data.STATUSES),  # fmt: skip
        "caption_quantiles": {"median": round(quantile(chars, 0.5)),
                              "p99": round(quantile(chars, 0.99)), "max": int(np.nanmax(chars))},
        "grid": grid[0].T,
        "short_side": data.histogram(short, sized_status, 50, 0.0, quantile(short, 0.99),
                                     data.STATUSES),  # fmt: skip
        "aspect_ratio": data.histogram(ratio, sized_status, 50, 1.0,
                                       max(ratio_high, limit, 1.1) * 1.05, data.STATUSES),
        "clusters": clusters,
    }  # fmt: skip


def same_histogram(found: data.Histogram | None, expected: data.Histogram | None) -> None:
    assert found is not None and expected is not None
    np.testing.assert_array_equal(found.edges, expected.edges)
    assert list(found.series) == list(expected.series)
    for name, counts in expected.series.items():
        np.testing.assert_array_equal(found.series[name], counts)
    assert found.clipped == expected.clipped


@pytest.mark.parametrize("batch_rows", [7, 100, 65_536])
def test_streamed_aggregates_equal_a_direct_computation(run, batch_rows):
    report = collect(str(run), files=FILES, with_images=False, batch_rows=batch_rows)
    expected = direct(run, report.thresholds, 3.0)
    assert report.funnel.rows == expected["rows"]
    assert {k: v for k, v in report.funnel.by_status.items() if v} == expected["by_status"]
    found = {i["code"]: i["count"] for step in report.funnel.steps for i in step["reasons"]}
    assert found == expected["reasons"]
    languages = {
        (lang if lang != "(none)" else None, status): n
        for lang, by in report.languages.items()
        for status, n in by.items()
        if n
    }
    assert languages == expected["languages"]
    for name in ("clip_overall", "clip_by_language", "caption_chars", "short_side",
                 "aspect_ratio"):  # fmt: skip
        same_histogram(getattr(report, name), expected[name])
    assert report.caption_quantiles == expected["caption_quantiles"]
    np.testing.assert_array_equal(report.image_grid["counts"], expected["grid"])
    found_clusters = {}
    ledger = pq.read_table(run / "ledger")
    for name, found_cluster in report.clusters.items():
        labels, clusters, rows = expected["clusters"][name]
        assert found_cluster["buckets"] == labels
        assert found_cluster["clusters"].tolist() == clusters.tolist()
        assert found_cluster["bucket_rows"].tolist() == rows.tolist()
        found_clusters[name] = labels
        assert found_cluster["rows"] == len(ledger[name]) - ledger[name].null_count
    assert found_clusters == {k: v[0] for k, v in expected["clusters"].items()}


def test_batch_size_changes_neither_numbers_nor_samples(run):
    def summary(batch_rows: int):
        report = collect(str(run), files=FILES, with_images=False, batch_rows=batch_rows)
        groups = [(g.id, g.rows, [s.row["uid"] for s in g.samples]) for g in report.sample_groups]
        clusters = {k: (v["clusters"].tolist(), v["bucket_rows"].tolist(), v["multi"])
                    for k, v in report.clusters.items()}  # fmt: skip
        return groups, clusters, report.caption_quantiles, report.scored

    reference = summary(65_536)
    assert all(samples for _, rows, samples in reference[0] if rows)
    for batch_rows in (13, 500):
        assert summary(batch_rows) == reference


def test_cluster_sizes_are_the_same_when_counted_in_hash_partitions(run, monkeypatch):
    from paircurate.report import aggregates

    whole = collect(str(run), files=FILES, with_images=False).clusters
    monkeypatch.setattr(aggregates, "CLUSTER_IDS_PER_PASS", 50)  # dozens of passes
    parted = collect(str(run), files=FILES, with_images=False, batch_rows=100).clusters
    for name, found in whole.items():
        for key in ("clusters", "bucket_rows"):
            assert parted[name][key].tolist() == found[key].tolist()
        for key in ("count", "rows", "largest", "multi", "buckets"):
            assert parted[name][key] == found[key]


@pytest.mark.parametrize("seed", range(20))
def test_quantiles_from_value_counts_equal_numpy_to_the_bit(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 50 if seed % 2 else 5000, rng.integers(1, 3000)).astype(np.float64)
    if seed % 3 == 0:
        values = values / rng.integers(1, 50, values.size)  # ratios, as the aspect chart's
    unique, counts = np.unique(values, return_counts=True)
    for q in (0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 0.995, 1.0):
        assert quantile_of_counts(unique, counts, q) == float(np.quantile(values, q))
