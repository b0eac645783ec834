"""Everything the report shows, collected from a run's outputs into one ``ReportData``.

Two streamed passes over the ledger (``report.stream``) feed every chart; each
chart's aggregate is a few hundred numbers whatever the size of the run, and
an aggregate with no data is None, which the page shows as an empty state.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from paircurate.report import data, samples, stream
from paircurate.report.compliance import collect_contamination
from paircurate.report.evaluations import Evaluations, read_evaluations
from paircurate.report.stream import BATCH_ROWS
from paircurate.report.threshold_table import threshold_table
from paircurate.schemas.codes import Status
from paircurate.transforms.output.storage import Files

log = logging.getLogger(__name__)

TOP_LANGUAGES = 25  # bars of the language chart; the rest are "other"
SCORE_LANGUAGES = 8  # languages with their own CLIP score curve
ASPECT_SPAN = 6.0  # the aspect-ratio chart's x range reaches at least this far
CLUSTER_LABELS = {
    "cluster_id": "pairs that repeat a kept pair (image and caption)",
    "caption_cluster": "near-duplicate captions",
    "image_cluster": "duplicate images (bytes, pixels or pHash)",
    "semantic_cluster": "semantic duplicates: near-identical image embeddings (--semantic-dedup)",
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
    evaluations: Evaluations = field(default_factory=Evaluations)
    contamination: Any = None  # compliance.Contamination: pool images near evaluation images
    threshold_table: list = field(default_factory=list)  # threshold_table.ThresholdRow


def collect(
    output_dir: str, *, files: Files, with_images: bool = True, batch_rows: int = BATCH_ROWS
) -> ReportData:
    """Read the outputs in ``output_dir`` on ``files`` and aggregate them; raises ReportInputError.

    The ledger is streamed twice (see ``report.stream``): the first pass counts
    and finds the charts' ranges, the second fills histograms and picks samples.
    Memory is bounded by ``batch_rows`` and the aggregates' own size.
    """
    outputs = data.open_outputs(output_dir, files)
    stats = data.read_stats(outputs)
    ledger = stream.ledger_files(outputs, batch_rows)
    thresholds = data.parse_thresholds(stats)
    first = FirstPass.scan(ledger, want_scores=thresholds.keep_fraction is not None)
    funnel = data.build_funnel(first.funnel, first.rows)
    report = ReportData(output_dir, stats, funnel, thresholds)
    find_cut(thresholds, first)
    report.scored = first.scored_total
    add_languages(report, first)
    add_image_limits(report)
    second = SecondPass(report, first)
    for file_index, offset, batch in ledger.batches(SECOND_COLUMNS):
        second.add(file_index, offset, batch)
    second.finish(report)
    add_clusters(report, ledger, first)
    if first.scored_total:
        report.threshold_table = threshold_table(ledger, run_thresholds(thresholds))
    add_samples(report, outputs, ledger, second.chosen(), with_images)
    report.evaluations = read_evaluations(outputs.layout)
    if funnel_has(first, "eval_contamination"):
        report.contamination = collect_contamination(
            outputs, files, ledger, stats.get("raw_shards"), with_images
        )
    check_counts(report)
    return report


def run_thresholds(thresholds: data.Thresholds) -> tuple[float, ...]:
    """The run's own thresholds, so that the threshold table has a line for each."""
    found = [thresholds.absolute, *thresholds.by_language.values()]
    return tuple(value for value in found if value is not None)


def funnel_has(first: FirstPass, reason: str) -> bool:
    return any(key[1] == reason and n for key, n in first.funnel.items())


# Columns of the ledger each pass reads; a ledger that lacks one (an older run)
# gets a null column, and its chart an empty state.
FIRST_COLUMNS = ("status", "reason", "language", "clip_score", "caption_chars",
                 "original_width", "original_height", "chunk", *data.CLUSTER_COLUMNS)  # fmt: skip
SECOND_COLUMNS = ("status", "reason", "language", "clip_score", "caption_chars",
                  "original_width", "original_height", "chunk", "image_format",
                  "semantic_cluster")  # fmt: skip
SCORE_SAMPLE = 100_000  # scores kept to estimate a keep-fraction cut no output records


@dataclass
class FirstPass:
    """Counts and value counts of one pass over the ledger: what the charts' ranges need."""

    rows: int = 0
    funnel: dict[tuple[str | None, str | None], int] = field(default_factory=dict)
    languages: dict[tuple[str | None, str | None], int] = field(default_factory=dict)
    any_language: bool = False
    scored: dict[str, int] = field(default_factory=dict)  # language label -> scored rows
    score_range: tuple[float, float] = (math.inf, -math.inf)
    score_sample: tuple[np.ndarray, np.ndarray] | None = None  # (priorities, scores)
    caption_chars: stream.ValueCounts = field(default_factory=stream.ValueCounts)
    width: stream.ValueCounts = field(default_factory=stream.ValueCounts)
    height: stream.ValueCounts = field(default_factory=stream.ValueCounts)
    short: stream.ValueCounts = field(default_factory=stream.ValueCounts)
    ratio: stream.ValueCounts = field(default_factory=stream.ValueCounts)
    chunks: set[int] = field(default_factory=set)
    clustered: dict[str, int] = field(default_factory=dict)  # cluster column -> non-null rows

    @classmethod
    def scan(cls, files: stream.LedgerFiles, want_scores: bool) -> FirstPass:
        first = cls()
        if want_scores:
            first.score_sample = (np.zeros(0, np.uint64), np.zeros(0))
        for file_index, offset, batch in files.batches(FIRST_COLUMNS):
            first.add(file_index, offset, batch)
        return first

    @property
    def scored_total(self) -> int:
        return sum(self.scored.values())

    def add(self, file_index: int, offset: int, batch: pa.Table) -> None:
        self.rows += batch.num_rows
        stream.add_counts(self.funnel, batch, ("status", "reason"))
        if batch["language"].null_count < batch.num_rows:
            self.any_language = True
        stream.add_counts(self.languages, batch, ("language", "status"))
        self.add_scores(file_index, offset, batch)
        self.caption_chars.add(data.as_numpy(batch["caption_chars"]))
        width, height, _ = sized(batch)
        self.width.add(width)
        self.height.add(height)
        self.short.add(np.minimum(width, height))
        self.ratio.add(np.maximum(width, height) / np.minimum(width, height))
        chunks = data.as_numpy(batch["chunk"])
        self.chunks.update(np.unique(chunks[np.isfinite(chunks)]).astype(np.int64).tolist())
        for name in data.CLUSTER_COLUMNS:
            column = batch[name]
            self.clustered[name] = self.clustered.get(name, 0) + len(column) - column.null_count

    def add_scores(self, file_index: int, offset: int, batch: pa.Table) -> None:
        scores = data.as_numpy(batch["clip_score"])
        scored = np.isfinite(scores)
        if not scored.any():
            return
        low, high = self.score_range
        self.score_range = (min(low, float(scores[scored].min())),
                            max(high, float(scores[scored].max())))  # fmt: skip
        labels = stream.encode(batch["language"], "unknown")
        counts = np.bincount(labels.codes[scored], minlength=len(labels.names))
        for label, n in zip(labels.names, counts.tolist(), strict=True):
            if n:
                self.scored[label] = self.scored.get(label, 0) + n
        if self.score_sample is not None:
            places = np.flatnonzero(scored)
            priority = stream.row_priority(file_index, offset + places)
            kept_priority, kept_scores = self.score_sample
            priority = np.concatenate([kept_priority, priority])
            values = np.concatenate([kept_scores, scores[places]])
            if priority.size > SCORE_SAMPLE:
                keep = np.argpartition(priority, SCORE_SAMPLE)[:SCORE_SAMPLE]
                priority, values = priority[keep], values[keep]
            self.score_sample = (priority, values)


def sized(batch: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(width, height, mask) of the rows with a known original size."""
    width = data.as_numpy(batch["original_width"])
    height = data.as_numpy(batch["original_height"])
    mask = np.isfinite(width) & np.isfinite(height) & (width > 0) & (height > 0)
    return width[mask], height[mask], mask


def find_cut(thresholds: data.Thresholds, first: FirstPass) -> None:
    """The score at the keep-fraction cut, estimated where stats.json records none.

    The job writes ``clip_keep_fraction_cut`` whenever it scored pairs; without
    it the cut is estimated from the scores (all of them up to ``SCORE_SAMPLE``,
    else a fixed sample).
    """
    if thresholds.keep_fraction is None or thresholds.cut is not None:
        return
    if first.score_sample is not None and first.score_sample[1].size:
        thresholds.cut = float(np.quantile(first.score_sample[1], 1.0 - thresholds.keep_fraction))
        thresholds.cut_source = "estimate"


def add_languages(report: ReportData, first: FirstPass) -> None:
    """Rows per caption language and status: the top languages, the rest as "other"."""
    if not first.any_language:
        return  # no row has a language: nothing to chart
    counts: dict[str, dict[str, int]] = {}
    for (language, status), n in first.languages.items():
        by_status = counts.setdefault(language or "(none)", dict.fromkeys(data.STATUSES, 0))
        by_status[status or "unknown"] = by_status.get(status or "unknown", 0) + n
    ranked = sorted(counts, key=lambda name: (-sum(counts[name].values()), name))
    report.languages = {name: counts[name] for name in ranked[:TOP_LANGUAGES]}
    for name in ranked[TOP_LANGUAGES:]:
        other = report.languages.setdefault("other", dict.fromkeys(data.STATUSES, 0))
        for status, n in counts[name].items():
            other[status] = other.get(status, 0) + n


def add_image_limits(report: ReportData) -> None:
    image = data.stored_options(report.stats, "image")
    report.image_limits = {
        "min_image_size": image.get("min_image_size") or None,
        "max_aspect_ratio": image.get("max_aspect_ratio"),
    }


class SecondPass:
    """Histograms over the ranges the first pass found, and the sampled rows."""

    def __init__(self, report: ReportData, first: FirstPass):
        self.thresholds = report.thresholds
        self.clip_overall = self.clip_by_language = None
        self.top_languages: list[str] = []
        if first.scored_total:
            self.plan_clip(report, first)
        self.caption_chars = None
        high = first.caption_chars.quantile(0.995)
        if high is not None:
            self.caption_chars = stream.HistogramSum(0.0, max(high, 10.0), 60, data.STATUSES)
            report.caption_quantiles = {
                name: round(first.caption_chars.quantile(q)) for name, q in QUANTILES
            }
            report.caption_quantiles["max"] = int(first.caption_chars.max())
        self.grid = self.short = self.ratio = None
        if first.width.total:
            self.plan_images(report, first)
        self.samples = samples.SampleChooser(report.funnel, report.thresholds, first.chunks)

    def plan_clip(self, report: ReportData, first: FirstPass) -> None:
        low, high = first.score_range
        lines = [v for v in (report.thresholds.absolute, report.thresholds.cut) if v is not None]
        lines += list(report.thresholds.by_language.values())
        low, high = min([low, *lines]), max([high, *lines])
        pad = (high - low) * 0.02 or 0.01
        ranked = sorted(first.scored.items(), key=lambda item: (-item[1], item[0]))
        self.top_languages = [name for name, _ in ranked[:SCORE_LANGUAGES]]
        other = first.scored_total > sum(n for _, n in ranked[:SCORE_LANGUAGES])
        order = tuple(self.top_languages) + (("other",) if other else ())
        self.clip_overall = stream.HistogramSum(low - pad, high + pad, 60, CLIP_OUTCOMES)
        self.clip_by_language = stream.HistogramSum(low - pad, high + pad, 60, order)

    def plan_images(self, report: ReportData, first: FirstPass) -> None:
        top = max(first.width.quantile(0.99) or 1.0, first.height.quantile(0.99) or 1.0)
        self.grid_edges = np.linspace(0, top, 41)
        self.grid = np.zeros((40, 40))
        self.short = stream.HistogramSum(0.0, first.short.quantile(0.99), 50, data.STATUSES)
        limit = report.image_limits["max_aspect_ratio"] or 0.0
        # Banners of 30:1 would squash the common 1-2 range: they share the last bin.
        high = min(first.ratio.quantile(0.995) or 1.0, max(ASPECT_SPAN, 2 * limit))
        self.ratio = stream.HistogramSum(1.0, max(high, limit, 1.1) * 1.05, 50, data.STATUSES)

    def add(self, file_index: int, offset: int, batch: pa.Table) -> None:
        status = stream.encode(batch["status"], "unknown")
        reason = stream.encode(batch["reason"], "")
        scores = data.as_numpy(batch["clip_score"])
        if self.clip_overall is not None:
            outcome = np.where(
                status.equal(Status.KEPT.value),
                0,
                np.where(reason.equal("clip_below_threshold"), 1, 2),
            )
            self.clip_overall.add(scores, stream.Labels(outcome, list(CLIP_OUTCOMES)))
            languages = stream.encode(batch["language"], "unknown")
            top = set(self.top_languages)
            named = languages.renamed(lambda name: name if name in top else "other")
            self.clip_by_language.add(scores, named)
        if self.caption_chars is not None:
            self.caption_chars.add(data.as_numpy(batch["caption_chars"]), status)
        if self.grid is not None:
            width, height, mask = sized(batch)
            top = self.grid_edges[-1]
            counts = np.histogram2d(
                np.minimum(width, top), np.minimum(height, top), bins=[self.grid_edges] * 2
            )[0]
            self.grid += counts
            self.short.add(np.minimum(width, height), status[mask])
            ratio = np.maximum(width, height) / np.minimum(width, height)
            self.ratio.add(ratio, status[mask])
        self.samples.add(file_index, offset, batch, status, reason, scores)

    def finish(self, report: ReportData) -> None:
        if self.clip_overall is not None:
            report.clip_overall = self.clip_overall.result()
            report.clip_by_language = self.clip_by_language.result()
        if self.caption_chars is not None:
            report.caption_chars = self.caption_chars.result()
        if self.grid is not None:
            report.image_grid = {"edges": self.grid_edges, "counts": self.grid.T}
            report.short_side = self.short.result()
            report.aspect_ratio = self.ratio.result()

    def chosen(self) -> list[tuple[samples.SampleGroup, list[tuple[int, int]]]]:
        return self.samples.chosen()


QUANTILES = (("median", 0.5), ("p99", 0.99))


def size_buckets(
    sizes: np.ndarray, clusters_of_size: np.ndarray | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Cluster sizes in power-of-two buckets (1, 2, 3-4, 5-8, ...): labels, clusters, rows.

    ``clusters_of_size`` counts the clusters of each size in ``sizes`` (one each
    by default). A billion-row run has thousands of distinct sizes; twenty
    buckets read better.
    """
    weights = np.ones(sizes.size) if clusters_of_size is None else clusters_of_size
    top = int(sizes.max())
    uppers = [1, 2]
    while uppers[-1] < top:
        uppers.append(uppers[-1] * 2)
    bucket = np.searchsorted(np.asarray(uppers), sizes)
    labels = [
        str(upper) if upper <= 2 else f"{upper // 2 + 1}–{upper}" for upper in uppers
    ]  # fmt: skip
    clusters = np.bincount(bucket, weights=weights, minlength=len(uppers)).astype(np.int64)
    rows = np.bincount(bucket, weights=sizes * weights, minlength=len(uppers)).astype(np.int64)
    return labels, clusters, rows


CLUSTER_IDS_PER_PASS = 1_000_000  # distinct cluster ids held at once, at most about this many


def cluster_sizes(files: stream.LedgerFiles, name: str, rows: int) -> dict[int, int]:
    """{cluster size: clusters of that size} of one cluster column.

    Sizes need every cluster's rows counted, so ids are counted in passes over
    the column, each taking the ids of one hash partition: memory holds at most
    about ``CLUSTER_IDS_PER_PASS`` ids whatever the number of clusters.
    """
    partitions = max(1, -(-rows // CLUSTER_IDS_PER_PASS))
    by_size: dict[int, int] = {}
    for partition in range(partitions):
        counts: dict[str, int] = {}
        for _, _, batch in files.batches((name,)):
            column = batch[name].drop_null()
            if len(column) == 0:
                continue
            encoded = pc.dictionary_encode(column).combine_chunks()
            found = np.bincount(encoded.indices.to_numpy(zero_copy_only=False))
            for value, n in zip(encoded.dictionary.to_pylist(), found.tolist(), strict=True):
                if n and (partitions == 1 or hash(value) % partitions == partition):
                    counts[value] = counts.get(value, 0) + n
        for size in counts.values():
            by_size[size] = by_size.get(size, 0) + 1
    return by_size


def add_clusters(report: ReportData, files: stream.LedgerFiles, first: FirstPass) -> None:
    """Per cluster column: how many clusters of each size, and the largest."""
    for name in data.CLUSTER_COLUMNS:
        if not first.clustered.get(name):
            continue
        by_size = cluster_sizes(files, name, first.clustered[name])
        sizes = np.array(sorted(by_size), dtype=np.int64)
        clusters_of_size = np.array([by_size[size] for size in sizes.tolist()], dtype=np.int64)
        labels, clusters, rows = size_buckets(sizes, clusters_of_size)
        report.clusters[name] = {
            "label": CLUSTER_LABELS[name],
            "buckets": labels,
            "clusters": clusters,
            "bucket_rows": rows,
            "count": int(clusters_of_size.sum()),
            "rows": int((sizes * clusters_of_size).sum()),
            "largest": int(sizes.max()),
            "multi": int(clusters_of_size[sizes > 1].sum()),
        }


def add_samples(
    report: ReportData,
    outputs,
    files: stream.LedgerFiles,
    chosen: list[tuple[samples.SampleGroup, list[tuple[int, int]]]],
    with_images: bool,
) -> None:
    every = [place for _, places in chosen for place in places]
    rows = samples.read_rows(files, every)
    start = 0
    all_samples = []
    for group, places in chosen:
        for row in rows[start : start + len(places)]:
            sample = samples.Sample(row, report.thresholds.for_language(row.get("language") or ""))
            group.samples.append(sample)
            all_samples.append(sample)
        start += len(places)
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
