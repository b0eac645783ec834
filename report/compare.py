"""Two finished runs side by side: what ``paircurate report --compare RUN_A RUN_B`` shows.

Each run is read as the report reads one (``aggregates.FirstPass``: funnel,
languages, scores), then both are streamed once more for score histograms
over shared bins, and joined by uid for the rows whose status or reason
changed. The join holds one hash partition of the uids at a time, as 64-bit
keys in numpy (``report.uids``), so memory stays bounded however large the
runs; a few changed rows per transition are kept as samples and read in full,
with thumbnails from either run's shards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from paircurate.report import aggregates, data, samples, stream
from paircurate.report.uids import partition_of, uid_keys
from paircurate.transforms.output.storage import Files

UIDS_PER_PASS = 2_000_000  # rows of each run held at once by the join, at most about this many
CHANGE_SAMPLES = 6
SHOWN_CHANGES = 8  # transitions with sample grids; the table lists them all
BINS = 50


@dataclass
class RunSide:
    """One run as the comparison shows it."""

    label: str
    output_dir: str
    stats: dict[str, Any]
    funnel: data.Funnel
    thresholds: data.Thresholds
    languages: dict[str, dict[str, int]]
    scored: int
    scores: data.Histogram | None = None
    first: aggregates.FirstPass | None = field(default=None, repr=False)
    files: stream.LedgerFiles | None = field(default=None, repr=False)
    outputs: data.Outputs | None = field(default=None, repr=False)


@dataclass
class ChangedRow:
    """A row whose outcome differs between the runs: its two ledger rows and a thumbnail."""

    a: dict[str, Any]
    b: dict[str, Any]
    thumbnail: str | None = None
    image_note: str = "thumbnails left out"


@dataclass
class Change:
    """Rows that went from one (status, reason) in run A to another in run B."""

    before: tuple[str, str | None]
    after: tuple[str, str | None]
    rows: int
    samples: list[ChangedRow] = field(default_factory=list)

    @property
    def id(self) -> str:
        return "-".join(part or "kept" for part in (*self.before, *self.after))


@dataclass
class Comparison:
    a: RunSide
    b: RunSide
    changes: list[Change]
    same: int
    only_a: int
    only_b: int
    options: list[tuple[str, str, str]]  # options that differ: (name, in A, in B)


def read_side(label: str, output_dir: str, files: Files) -> RunSide:
    outputs = data.open_outputs(output_dir, files)
    stats = data.read_stats(outputs)
    ledger = stream.ledger_files(outputs)
    thresholds = data.parse_thresholds(stats)
    first = aggregates.FirstPass.scan(ledger, want_scores=thresholds.keep_fraction is not None)
    aggregates.find_cut(thresholds, first)
    funnel = data.build_funnel(first.funnel, first.rows)
    report = aggregates.ReportData(output_dir, stats, funnel, thresholds)
    aggregates.add_languages(report, first)
    side = RunSide(
        label, output_dir, stats, funnel, thresholds, report.languages, first.scored_total
    )
    side.first, side.files, side.outputs = first, ledger, outputs
    return side


def add_score_histograms(a: RunSide, b: RunSide) -> None:
    """Each run's scores by outcome, over bins both runs share."""
    ranges = [side.first.score_range for side in (a, b) if side.scored]
    if not ranges:
        return
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    pad = (high - low) * 0.02 or 0.01
    for side in (a, b):
        if not side.scored:
            continue
        histogram = stream.HistogramSum(low - pad, high + pad, BINS, aggregates.CLIP_OUTCOMES)
        for _, _, batch in side.files.batches(("status", "reason", "clip_score")):
            status = stream.encode(batch["status"], "unknown")
            reason = stream.encode(batch["reason"], "")
            outcome = np.where(
                status.equal("kept"), 0, np.where(reason.equal("clip_below_threshold"), 1, 2)
            )
            labels = stream.Labels(outcome, list(aggregates.CLIP_OUTCOMES))
            histogram.add(data.as_numpy(batch["clip_score"]), labels)
        side.scores = histogram.result()


# -- the join ------------------------------------------------------------------------------


class Outcomes:
    """(status, reason) pairs as small integer codes shared by both runs."""

    def __init__(self) -> None:
        self.codes: dict[tuple[str, str | None], int] = {}

    def encode(self, batch: pa.Table) -> np.ndarray:
        status = stream.encode(batch["status"], "unknown")
        reason = stream.encode(batch["reason"], "")
        pairs = {}
        for s_code, s_name in enumerate(status.names):
            for r_code, r_name in enumerate(reason.names):
                key = (s_name, r_name or None)
                pairs[(s_code, r_code)] = self.codes.setdefault(key, len(self.codes))
        table = np.zeros((len(status.names), max(1, len(reason.names))), dtype=np.int64)
        for (s_code, r_code), code in pairs.items():
            table[s_code, r_code] = code
        return table[status.codes, reason.codes] if batch.num_rows else np.zeros(0, np.int64)

    def name(self, code: int) -> tuple[str, str | None]:
        return next(key for key, value in self.codes.items() if value == code)


@dataclass
class _Partition:
    keys: np.ndarray
    codes: np.ndarray
    files: np.ndarray
    offsets: np.ndarray

    @classmethod
    def read(cls, side: RunSide, outcomes: Outcomes, part: int, parts: int) -> _Partition:
        found: list[tuple[np.ndarray, ...]] = []
        for file_index, offset, batch in side.files.batches(("uid", "status", "reason")):
            keys = uid_keys(batch["uid"])
            chosen = np.flatnonzero(partition_of(keys, parts) == part)
            codes = outcomes.encode(batch)
            found.append((keys[chosen], codes[chosen], np.full(chosen.size, file_index),
                          offset + chosen))  # fmt: skip
        if not found:
            return cls(*(np.zeros(0, np.int64) for _ in range(4)))
        columns = [np.concatenate(parts_) for parts_ in zip(*found, strict=True)]
        order = np.argsort(columns[0], kind="stable")
        return cls(*(column[order] for column in columns))


@dataclass
class JoinResult:
    transitions: dict[tuple[int, int], int] = field(default_factory=dict)
    picks: dict[tuple[int, int], stream.Lowest] = field(default_factory=dict)
    same: int = 0
    only_a: int = 0
    only_b: int = 0


def join_runs(a: RunSide, b: RunSide, outcomes: Outcomes) -> JoinResult:
    """Count rows by (outcome in A, outcome in B) over the uids both ledgers hold."""
    result = JoinResult()
    parts = max(1, -(-max(a.funnel.rows, b.funnel.rows) // UIDS_PER_PASS))
    for part in range(parts):
        left = _Partition.read(a, outcomes, part, parts)
        right = _Partition.read(b, outcomes, part, parts)
        where = np.searchsorted(left.keys, right.keys)
        where = np.minimum(where, max(left.keys.size - 1, 0))
        matched = left.keys.size > 0
        matched = (left.keys[where] == right.keys) if matched else np.zeros(right.keys.size, bool)
        result.only_b += int((~matched).sum())
        result.only_a += left.keys.size - int(matched.sum())
        before, after = left.codes[where[matched]], right.codes[matched]
        moved = before != after
        result.same += int((~moved).sum())
        _count_moves(result, before[moved], after[moved], left, right, where[matched][moved],
                     np.flatnonzero(matched)[moved])  # fmt: skip
    return result


def _count_moves(result, before, after, left, right, left_rows, right_rows) -> None:
    if not before.size:
        return
    pairs = np.stack([before, after], axis=1)
    unique, inverse, counts = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    for index, ((x, y), n) in enumerate(zip(unique.tolist(), counts.tolist(), strict=True)):
        key = (x, y)
        result.transitions[key] = result.transitions.get(key, 0) + n
        rows = np.flatnonzero(inverse == index)
        keys = right.keys[right_rows[rows]]
        chosen = rows[np.argsort(keys, kind="stable")[:CHANGE_SAMPLES]]
        lowest = result.picks.setdefault(key, stream.Lowest(CHANGE_SAMPLES))
        items = [
            ((int(left.files[left_rows[i]]), int(left.offsets[left_rows[i]])),
             (int(right.files[right_rows[i]]), int(right.offsets[right_rows[i]])))
            for i in chosen.tolist()
        ]  # fmt: skip
        lowest.offer(right.keys[right_rows[chosen]].tolist(), items)


def changed_rows(a: RunSide, b: RunSide, result: JoinResult, outcomes: Outcomes, images: bool):
    """The transitions, most rows first, the first few with their sampled rows read in full."""
    ranked = sorted(result.transitions.items(), key=lambda item: (-item[1], item[0]))
    changes = [Change(outcomes.name(x), outcomes.name(y), n) for (x, y), n in ranked]
    shown = [(change, result.picks[key]) for change, (key, _) in zip(changes, ranked, strict=True)]
    places = [item for _, lowest in shown[:SHOWN_CHANGES] for item in lowest.items()]
    rows_a = samples.read_rows(a.files, [pa_ for pa_, _ in places])
    rows_b = samples.read_rows(b.files, [pb for _, pb in places])
    start = 0
    for change, lowest in shown[:SHOWN_CHANGES]:
        count = len(lowest.items())
        for row_a, row_b in zip(rows_a[start : start + count], rows_b[start : start + count],
                                strict=True):  # fmt: skip
            change.samples.append(ChangedRow(row_a, row_b))
        start += count
    if images:
        add_thumbnails(a, b, [row for change in changes for row in change.samples])
    return changes


def add_thumbnails(a: RunSide, b: RunSide, rows: list[ChangedRow]) -> None:
    """Each changed row's image from run B's shards, else from run A's."""
    for side, key in ((b, "b"), (a, "a")):
        waiting = [row for row in rows if row.thumbnail is None]
        wanted = [samples.Sample(getattr(row, key)) for row in waiting]
        samples.add_thumbnails(side.outputs, wanted, side.stats.get("raw_shards"))
        for row, sample in zip(waiting, wanted, strict=True):
            row.thumbnail, row.image_note = sample.thumbnail, sample.image_note


def option_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section.option, value in A, value in B) for every option the two runs set differently."""
    from paircurate.report.page import format_option

    found = []
    for section in sorted(set(a) | set(b)):
        left, right = a.get(section) or {}, b.get(section) or {}
        if not isinstance(left, dict) or not isinstance(right, dict):
            continue
        for name in sorted(set(left) | set(right)):
            if left.get(name) != right.get(name):
                shown = (format_option(left.get(name)), format_option(right.get(name)))
                found.append((f"{section}.{name}", *shown))
    return found


def compare(dir_a: str, dir_b: str, *, files: Files, with_images: bool = True) -> Comparison:
    """Read both runs and join them; raises ReportInputError where a folder holds no run."""
    a, b = read_side("A", dir_a, files), read_side("B", dir_b, files)
    add_score_histograms(a, b)
    outcomes = Outcomes()
    result = join_runs(a, b, outcomes)
    changes = changed_rows(a, b, result, outcomes, with_images)
    options = option_differences(a.stats.get("options") or {}, b.stats.get("options") or {})
    return Comparison(a, b, changes, result.same, result.only_a, result.only_b, options)
