"""Everything the report shows, collected from a run's outputs into one ``ReportData``.

One scan of the ledger (``report_data.scan_ledger``) feeds every chart; each
chart's aggregate is a few hundred numbers whatever the size of the run, and
an aggregate with no data is None, which the page shows as an empty state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from paircurate.report import data, samples
from paircurate.schemas.codes import Status

log = logging.getLogger(__name__)

TOP_LANGUAGES = 25  # bars of the language chart; the rest are "other"
SCORE_LANGUAGES = 8  # languages with their own CLIP score curve
ASPECT_SPAN = 6.0  # the aspect-ratio chart's x range reaches at least this far
CLUSTER_LABELS = {
    "cluster_id": "pairs that repeat a kept pair (image and caption)",
    "caption_cluster": "near-duplicate captions",
    "image_cluster": "duplicate images (bytes, pixels or pHash)",
}
CLIP_OUTCOMES = ("kept", "below a CLIP threshold", "dropped for another reason")


@dataclass
class ReportData:
    """The report's content; every field is small."""

    output_dir: str
    stats: dict[str, Any]
    funnel: data.Funnel
    thresholds: data.Thresholds
    clip_overall: data.Histogram | None = None
    clip_by_language: data.Histogram | None = None
    scored: int = 0
    languages: dict[str, dict[str, int]] = field(default_factory=dict)  # language -> status -> n
    caption_chars: data.Histogram | None = None
    caption_quantiles: dict[str, float | None] = field(default_factory=dict)
    image_grid: dict[str, Any] | None = None  # original width x height counts
    short_side: data.Histogram | None = None
    aspect_ratio: data.Histogram | None = None
    image_limits: dict[str, float | None] = field(default_factory=dict)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    sample_groups: list[samples.SampleGroup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def collect(output_dir: str, with_images: bool = True) -> ReportData:
    """Read the outputs in ``output_dir`` and aggregate them; raises ReportInputError."""
    outputs = data.open_outputs(output_dir)
    stats = data.read_stats(outputs)
    dataset = data.ledger_dataset(outputs)
    scan = data.scan_ledger(dataset)
    funnel = data.build_funnel(scan)
    thresholds = data.parse_thresholds(stats)
    status = data.as_labels(scan["status"], "unknown")
    report = ReportData(output_dir, stats, funnel, thresholds)
    add_clip(report, dataset, scan, status)
    add_languages(report, scan)
    add_captions(report, scan, status)
    add_images(report, scan, status)
    add_clusters(report, scan)
    add_samples(report, outputs, dataset, scan, with_images)
    check_counts(report)
    return report


def add_clip(report: ReportData, dataset, scan: pa.Table, status: np.ndarray) -> None:
    scores = data.as_numpy(scan["clip_score"])
    data.find_cut(dataset, report.thresholds, scores)
    scored = np.isfinite(scores)
    report.scored = int(scored.sum())
    if not report.scored:
        return
    reason = data.as_labels(scan["reason"], "")
    outcome = np.where(
        status == Status.KEPT.value,
        CLIP_OUTCOMES[0],
        np.where(reason == "clip_below_threshold", CLIP_OUTCOMES[1], CLIP_OUTCOMES[2]),
    )
    low, high = float(scores[scored].min()), float(scores[scored].max())
    lines = [v for v in (report.thresholds.absolute, report.thresholds.cut) if v is not None]
    lines += list(report.thresholds.by_language.values())
    low, high = min([low, *lines]), max([high, *lines])
    pad = (high - low) * 0.02 or 0.01
    report.clip_overall = data.histogram(
        scores, outcome, bins=60, low=low - pad, high=high + pad, order=CLIP_OUTCOMES
    )
    languages = data.as_labels(scan["language"], "unknown")
    top = list(data.value_counts(pa.array(languages[scored])))[:SCORE_LANGUAGES]
    named = np.where(np.isin(languages, top), languages, "other")
    order = tuple(top) + (("other",) if (scored & (named == "other")).any() else ())
    report.clip_by_language = data.histogram(
        scores, named, bins=60, low=low - pad, high=high + pad, order=order
    )


def add_languages(report: ReportData, scan: pa.Table) -> None:
    """Rows per caption language and status: the top languages, the rest as "other"."""
    if pa.types.is_null(scan["language"].type) or scan["language"].null_count == scan.num_rows:
        return  # no row has a language: nothing to chart
    grouped = scan.group_by(["language", "status"]).aggregate(
        [("offset", "count", pc.CountOptions(mode="all"))]
    )
    counts: dict[str, dict[str, int]] = {}
    for language, status, n in zip(
        grouped["language"].to_pylist(),
        grouped["status"].to_pylist(),
        grouped["offset_count"].to_pylist(),
        strict=True,
    ):
        by_status = counts.setdefault(language or "(none)", dict.fromkeys(data.STATUSES, 0))
        by_status[status or "unknown"] = by_status.get(status or "unknown", 0) + n
    ranked = sorted(counts, key=lambda name: (-sum(counts[name].values()), name))
    report.languages = {name: counts[name] for name in ranked[:TOP_LANGUAGES]}
    for name in ranked[TOP_LANGUAGES:]:
        other = report.languages.setdefault("other", dict.fromkeys(data.STATUSES, 0))
        for status, n in counts[name].items():
            other[status] = other.get(status, 0) + n


def add_captions(report: ReportData, scan: pa.Table, status: np.ndarray) -> None:
    chars = data.as_numpy(scan["caption_chars"])
    high = data.quantile(chars, 0.995)
    if high is None:
        return
    report.caption_chars = data.histogram(
        chars, status, bins=60, low=0.0, high=max(high, 10.0), order=data.STATUSES
    )
    report.caption_quantiles = {
        name: round(data.quantile(chars, q)) for name, q in (("median", 0.5), ("p99", 0.99))
    }
    report.caption_quantiles["max"] = int(np.nanmax(chars))


def add_images(report: ReportData, scan: pa.Table, status: np.ndarray) -> None:
    width = data.as_numpy(scan["original_width"])
    height = data.as_numpy(scan["original_height"])
    sized = np.isfinite(width) & np.isfinite(height) & (width > 0) & (height > 0)
    image = data.stored_options(report.stats, "image")
    report.image_limits = {
        "min_image_size": image.get("min_image_size") or None,
        "max_aspect_ratio": image.get("max_aspect_ratio"),
    }
    if not sized.any():
        return
    width, height, sized_status = width[sized], height[sized], status[sized]
    top = max(data.quantile(width, 0.99) or 1.0, data.quantile(height, 0.99) or 1.0)
    edges = np.linspace(0, top, 41)
    counts = np.histogram2d(np.minimum(width, top), np.minimum(height, top), bins=[edges, edges])
    report.image_grid = {"edges": edges, "counts": counts[0].T}  # rows: height, columns: width
    short = np.minimum(width, height)
    report.short_side = data.histogram(
        short, sized_status, bins=50, low=0.0, high=data.quantile(short, 0.99), order=data.STATUSES
    )
    ratio = np.maximum(width, height) / np.minimum(width, height)
    limit = report.image_limits["max_aspect_ratio"] or 0.0
    # Banners of 30:1 would squash the common 1-2 range: they share the last bin.
    high = min(data.quantile(ratio, 0.995) or 1.0, max(ASPECT_SPAN, 2 * limit))
    report.aspect_ratio = data.histogram(
        ratio, sized_status, bins=50, low=1.0, high=max(high, limit, 1.1) * 1.05,
        order=data.STATUSES,
    )  # fmt: skip


def size_buckets(sizes: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Cluster sizes in power-of-two buckets (1, 2, 3-4, 5-8, ...): labels, clusters, rows.

    A billion-row run has thousands of distinct sizes; twenty buckets read better.
    """
    top = int(sizes.max())
    uppers = [1, 2]
    while uppers[-1] < top:
        uppers.append(uppers[-1] * 2)
    bucket = np.searchsorted(np.asarray(uppers), sizes)
    labels = [
        str(upper) if upper <= 2 else f"{upper // 2 + 1}–{upper}" for upper in uppers
    ]  # fmt: skip
    clusters = np.bincount(bucket, minlength=len(uppers))
    rows = np.bincount(bucket, weights=sizes, minlength=len(uppers)).astype(np.int64)
    return labels, clusters, rows


def add_clusters(report: ReportData, scan: pa.Table) -> None:
    """Per cluster column: how many clusters of each size, and the largest."""
    for name in data.CLUSTER_COLUMNS:
        column = scan[name]
        if pa.types.is_null(column.type) or column.null_count == len(column):
            continue
        counted = pc.value_counts(column.drop_null())
        sizes = counted.field("counts").to_numpy()
        labels, clusters, rows = size_buckets(sizes)
        report.clusters[name] = {
            "label": CLUSTER_LABELS[name],
            "buckets": labels,
            "clusters": clusters,
            "bucket_rows": rows,
            "count": int(sizes.size),
            "rows": int(sizes.sum()),
            "largest": int(sizes.max()),
            "multi": int((sizes > 1).sum()),
        }


def add_samples(report: ReportData, outputs, dataset, scan: pa.Table, with_images: bool) -> None:
    reasons = [
        (item["code"], item["status"], item["description"])
        for step in report.funnel.steps
        for item in step["reasons"]
    ]
    chosen = samples.choose_samples(scan, report.thresholds, reasons)
    every = np.concatenate([positions for _, positions in chosen]) if chosen else np.zeros(0)
    rows = samples.read_rows(dataset, scan, every.astype(np.int64))
    start = 0
    all_samples = []
    for group, positions in chosen:
        for row in rows[start : start + positions.size]:
            sample = samples.Sample(row, report.thresholds.for_language(row.get("language") or ""))
            group.samples.append(sample)
            all_samples.append(sample)
        start += positions.size
        report.sample_groups.append(group)
    if with_images:
        samples.add_thumbnails(outputs, all_samples, report.stats.get("raw_shards"))


def check_counts(report: ReportData) -> None:
    """Say so on the page where stats.json and the ledger disagree (a partial or mixed folder)."""
    rows_in = report.stats.get("rows_in")
    if rows_in is not None and rows_in != report.funnel.rows:
        report.notes.append(
            f"stats.json counts {rows_in} rows in, the ledger holds {report.funnel.rows}: "
            "the folder mixes outputs of different runs, or a run did not finish"
        )
    if not report.stats:
        report.notes.append("stats.json is missing: run options and timings are not shown")
