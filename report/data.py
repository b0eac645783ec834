"""What the quality report shows, read from a run's outputs and shrunk to small aggregates.

The report must open a billion-row run as easily as a demo, so nothing here
walks rows in Python and nothing holds the ledger: it is streamed in batches
(``report.stream``) with only the columns the charts need (captions arrive as
their lengths), and every chart gets counts per bin from numpy. Only the
handful of sampled rows are read in full (see ``report.samples``).

Outputs are reached through the job's filesystem layer (a
``transforms.output.storage.Files``, which the caller passes in), seen by
pyarrow as a filesystem, so a local folder, ``gs://`` and ``s3://`` read alike
with the job's credentials; where the files lie is ``transforms.output.store``'s
layout.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from paircurate.schemas.codes import REASONS, Status
from paircurate.schemas.config import ClipConfig, section_from_options
from paircurate.schemas.records import ledger_subset
from paircurate.transforms.output.storage import Files, arrow_filesystem
from paircurate.transforms.output.store import OutputLayout
from paircurate.transforms.scoring.clip_filter import thresholds_for

CLUSTER_COLUMNS = ledger_subset(
    "cluster_id", "caption_cluster", "image_cluster", "semantic_cluster"
)
STATUSES = tuple(status.value for status in Status)

# The funnel's steps in the order the job applies them. Exact URL dedup runs
# before any download, the other dedup reasons after it, so "dedup" is split.
FUNNEL_STEPS = (
    ("read", "unreadable rows and URLs"),
    ("caption", "caption rules and language"),
    ("balance", "concept balancing, before download"),
    ("url_dedup", "URL repeats, before download"),
    ("fetch", "download"),
    ("image", "decoding and image rules"),
    ("clusters", "duplicate clusters"),
    ("compliance", "removal lists and evaluation sets"),
    ("clip", "CLIP thresholds"),
    ("other", "reasons this version does not know"),
)


class ReportInputError(ValueError):
    """The folder holds no outputs a report can be made of; the message says what is missing."""


@dataclass(frozen=True)
class Outputs:
    """Where a run's outputs lie: the folder, its layout, and the same files for pyarrow."""

    filesystem: pafs.FileSystem
    root: str
    layout: OutputLayout

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def exists(self, *parts: str) -> bool:
        return self.filesystem.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    def is_file(self, full_path: str) -> bool:
        return self.filesystem.get_file_info(full_path).type == pafs.FileType.File

    def listing(self, *parts: str) -> list[pafs.FileInfo]:
        if not self.exists(*parts):
            return []
        found = self.filesystem.get_file_info(pafs.FileSelector(self.path(*parts)))
        return sorted(found, key=lambda info: info.path)


def open_outputs(output_dir: str, files: Files) -> Outputs:
    """The run folder ``output_dir`` (local path or URI) on ``files``; raises ReportInputError."""
    root = output_dir if "://" in output_dir else os.path.abspath(output_dir)
    outputs = Outputs(arrow_filesystem(files), root, OutputLayout(files, root))
    try:
        ledger = outputs.listing("ledger")
    except Exception as error:  # noqa: BLE001 - any filesystem's error: say which folder
        raise ReportInputError(f"cannot open {output_dir}: {error}") from error
    if not any(info.path.endswith(".parquet") for info in ledger):
        raise ReportInputError(
            f"{output_dir} has no ledger (ledger/*.parquet): point `paircurate report` at the "
            "--output folder of a finished run"
        )
    return outputs


def read_stats(outputs: Outputs) -> dict[str, Any]:
    """stats.json, or {} where it is missing or unreadable (the ledger alone still reports)."""
    if not outputs.exists("stats.json"):
        return {}
    try:
        with outputs.filesystem.open_input_stream(outputs.path("stats.json")) as stream:
            document = json.loads(stream.read())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def as_numpy(column: pa.ChunkedArray | pa.Array, fill: float = math.nan) -> np.ndarray:
    """A numeric column as float64 with nulls as ``fill``."""
    if pa.types.is_null(column.type):
        return np.full(len(column), fill)
    return pc.fill_null(pc.cast(column, pa.float64()), fill).to_numpy(zero_copy_only=False)


def as_labels(column: pa.ChunkedArray | pa.Array, missing: str) -> np.ndarray:
    """A string column as a numpy array of labels, nulls as ``missing``; via a dictionary."""
    if pa.types.is_null(column.type):
        return np.full(len(column), missing, dtype=object)
    encoded = pc.dictionary_encode(pc.fill_null(column, missing)).combine_chunks()
    labels = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return labels[encoded.indices.to_numpy(zero_copy_only=False)]


def value_counts(column: pa.ChunkedArray | pa.Array) -> dict[Any, int]:
    """{value: count} of a column's non-null values, largest first."""
    if pa.types.is_null(column.type) or len(column) == 0:
        return {}
    counted = pc.value_counts(column.drop_null())
    pairs = zip(
        counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
    )
    return dict(sorted(pairs, key=lambda item: (-item[1], str(item[0]))))


# -- the funnel ---------------------------------------------------------------------------


def funnel_step(code: str) -> str:
    known = REASONS.get(code)
    if known is None:
        return "other"
    if known.stage == "dedup":
        return "url_dedup" if code == "url_duplicate" else "clusters"
    return known.stage


@dataclass
class Funnel:
    """Rows in, kept, and every reason's count, by step, with shares of rows in."""

    rows: int
    by_status: dict[str, int]
    steps: list[dict[str, Any]] = field(default_factory=list)

    def share(self, count: int) -> float:
        return count / self.rows if self.rows else 0.0


def build_funnel(counts: dict[tuple[str | None, str | None], int], rows: int) -> Funnel:
    """Arrange rows counted by (status, reason) by the step that decided them."""
    by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
    reasons: dict[str, list[dict[str, Any]]] = {step: [] for step, _ in FUNNEL_STEPS}
    for (status, code), count in counts.items():
        status = status or "unknown"
        by_status[status] = by_status.get(status, 0) + count
        if code is not None or status != Status.KEPT.value:
            code = code or "(no reason)"
            reasons[funnel_step(code)].append({"code": code, "status": status, "count": count})
    funnel = Funnel(rows=rows, by_status=by_status)
    remaining = rows
    for step, label in FUNNEL_STEPS:
        items = sorted(reasons[step], key=lambda item: (-item["count"], item["code"]))
        removed = sum(item["count"] for item in items)
        if step in ("balance", "other", "compliance") and not items:  # shown only where they acted
            continue
        remaining -= removed
        for item in items:
            item["share"] = funnel.share(item["count"])
            known = REASONS.get(item["code"])
            item["description"] = known.description if known else ""
        funnel.steps.append(
            {
                "step": step,
                "label": label,
                "removed": removed,
                "remaining": remaining,
                "reasons": items,
            }
        )
    return funnel


# -- CLIP thresholds ---------------------------------------------------------------------


@dataclass
class Thresholds:
    """The CLIP thresholds in force: the run's ``ClipConfig`` and the keep-fraction cut.

    Which thresholds a pair must clear is ``clip_filter.thresholds_for``'s rule,
    the one the job applied.
    """

    clip: ClipConfig = field(default_factory=ClipConfig)
    cut: float | None = None
    cut_source: str = ""  # "stats" or "estimate"

    @property
    def absolute(self) -> float | None:
        return self.clip.clip_threshold

    @property
    def by_language(self) -> dict[str, float]:
        return dict(self.clip.thresholds_by_language)

    @property
    def keep_fraction(self) -> float | None:
        return self.clip.clip_keep_fraction

    @property
    def any(self) -> bool:
        return self.absolute is not None or bool(self.by_language) or self.cut is not None

    def for_language(self, language: str) -> float | None:
        """The highest threshold a pair of ``language`` must clear, or None."""
        found = [value for value, _ in thresholds_for(language, self.clip, self.cut)]
        return max(found) if found else None


def stored_options(stats: dict[str, Any], section: str) -> dict[str, Any]:
    """One section of the run's options as stats.json records them; {} where it is missing."""
    found = (stats.get("options") or {}).get(section)
    return found if isinstance(found, dict) else {}


def parse_thresholds(stats: dict[str, Any]) -> Thresholds:
    try:
        clip = section_from_options(ClipConfig, stored_options(stats, "clip"))
    except (TypeError, ValueError):  # options this version cannot read: no thresholds shown
        clip = ClipConfig()
    cut = stats.get("clip_keep_fraction_cut")
    return Thresholds(clip, cut=cut, cut_source="stats" if cut is not None else "")


def row_thresholds(languages: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Per row, the highest threshold it had to clear (-inf where none), vectorised by language."""
    result = np.full(len(languages), -np.inf)
    if not thresholds.any:
        return result
    for language in np.unique(languages):
        value = thresholds.for_language(str(language))
        if value is not None:
            result[languages == language] = value
    return result


# -- histograms -----------------------------------------------------------------------------


@dataclass
class Histogram:
    """Counts per bin of one or more series over shared bin edges."""

    edges: np.ndarray
    series: dict[str, np.ndarray]
    clipped: int = 0  # values beyond the last edge, counted in the last bin

    @property
    def total(self) -> int:
        return int(sum(int(counts.sum()) for counts in self.series.values()))


def histogram(
    values: np.ndarray,
    groups: np.ndarray | None = None,
    bins: int = 50,
    low: float | None = None,
    high: float | None = None,
    order: tuple[str, ...] = (),
) -> Histogram | None:
    """A histogram of the finite ``values``, split by ``groups``; None when there is none.

    Values above ``high`` go to the last bin and are counted in ``clipped``, so a
    few extreme captions or images do not squash the chart.
    """
    finite = np.isfinite(values)
    if not finite.any():
        return None
    values = values[finite]
    low = float(values.min()) if low is None else low
    high = float(values.max()) if high is None else high
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    clipped = int((values > high).sum())
    clamped = np.clip(values, low, high)
    group_values = groups[finite] if groups is not None else None
    names = list(order) or (sorted(set(group_values)) if group_values is not None else ["all"])
    series = {}
    for name in names:
        chosen = clamped if group_values is None else clamped[group_values == name]
        if chosen.size:
            series[str(name)] = np.histogram(chosen, bins=edges)[0]
    return Histogram(edges, series, clipped)


def quantile(values: np.ndarray, q: float) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if finite.size else None
