"""What a finished run keeps under other options, from its ledger alone: ``paircurate preview``.

The rules are ``transforms.output.revise``'s, which are the job's own; this
module streams the ledger through them in bounded memory, reading only the
columns each pass needs, batch by batch (``report.stream``):

1. *scan*: the score range, the scores per bucket for the top-fraction cut
   (``report.order``), and, when the languages narrow, the 64-bit keys of the
   rows they drop and of the kept copies URL and image repeats point to;
2. *cut* (with ``--clip-keep-fraction``): the exact score at the cut's rank;
3. *rows*: every row's new reason, but for caption cluster members;
4. *clusters* (when the cluster rules change or the languages narrow): the
   members of each caption cluster, held for one hash partition of the
   clusters at a time, decided again.

Counts are kept per (recorded reason, new reason, language), so every total
the preview shows, old or new, comes from one table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from paircurate.report import order, stream
from paircurate.report.samples import read_rows
from paircurate.report.uids import partition_of, uid_keys
from paircurate.schemas.codes import Status, status_of
from paircurate.transforms.output import revise
from paircurate.transforms.output.revise import UNDETERMINED, Category, Coded, Revised, Revision
from paircurate.transforms.scoring.clip_filter import cut_rank

UNDETERMINED_STATUS = "undetermined"
MEMBERS_PER_PASS = 100_000  # caption cluster members held at once (about 2 KB each as Python rows)
HISTOGRAM_BINS = 40
EDGE_SAMPLES = 8
OUTCOMES = ("kept", "below the new threshold", "dropped for another reason", "undetermined")
ROW_COLUMNS = ("reason", "language", "clip_score", "caption_cluster", "duplicate_of")
MEMBER_COLUMNS = (
    "uid", "chunk", "reason", "language", "clip_score", "caption_cluster", "image_cluster",
    "semantic_cluster", "duplicate_of", "original_width", "original_height", "phash",
)  # fmt: skip
_NULL = "\x00null"


def status_name(reason: str | None) -> str:
    """The status a (possibly undetermined) reason gives; kept without one."""
    if reason is None:
        return Status.KEPT.value
    if reason in UNDETERMINED:
        return UNDETERMINED_STATUS
    try:
        return status_of(reason).value
    except KeyError:
        return "unknown"


def coded(column: pa.ChunkedArray | pa.Array) -> Coded:
    """A string column as codes and names, nulls as the name None."""
    if pa.types.is_null(column.type):
        return Coded(np.zeros(len(column), dtype=np.int64), [None])
    labels = stream.encode(column, _NULL)
    return Coded(labels.codes.astype(np.int64), [None if n == _NULL else n for n in labels.names])


def scores_of(batch: pa.Table) -> np.ndarray:
    column = batch["clip_score"]
    if pa.types.is_null(column.type):
        return np.full(batch.num_rows, np.nan)
    return pc.fill_null(pc.cast(column, pa.float64()), math.nan).to_numpy(zero_copy_only=False)


def present(column: pa.ChunkedArray) -> np.ndarray:
    return ~np.asarray(pc.is_null(column).to_numpy(zero_copy_only=False), dtype=bool)


@dataclass
class Scan:
    """What the first pass finds: rows, scores, and the kept copies the new languages drop."""

    rows: int = 0
    in_clusters: int = 0
    low: float = math.inf
    high: float = -math.inf
    cut_scores: order.BucketCounts = field(default_factory=order.BucketCounts)
    unmeasured: int = 0  # rows the new languages admit that were never scored
    dropped_copies: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))


class WhatIf:
    """One preview of ``revision`` over the ledger ``files``."""

    def __init__(self, files: stream.LedgerFiles, revision: Revision):
        self.files, self.revision = files, revision
        self.cut: float | None = None
        self.counts: dict[tuple[str | None, str | None, str | None], int] = {}
        self.histogram: stream.HistogramSum | None = None
        self.just_kept = stream.Lowest(EDGE_SAMPLES)
        self.just_dropped = stream.Lowest(EDGE_SAMPLES)

    # -- pass 1 and 2 ------------------------------------------------------------------------

    def scan(self) -> Scan:
        scan = Scan()
        narrows = self.revision.languages_changed
        removed_keys, target_keys = [], []
        columns = ROW_COLUMNS + (("uid",) if narrows else ())
        for _, _, batch in self.files.batches(columns):
            scan.rows += batch.num_rows
            scan.in_clusters += int(present(batch["caption_cluster"]).sum())
            reasons, languages = coded(batch["reason"]), coded(batch["language"])
            scores = scores_of(batch)
            finite = np.isfinite(scores)
            if finite.any():
                scan.low = min(scan.low, float(scores[finite].min()))
                scan.high = max(scan.high, float(scores[finite].max()))
            removed = revise.removed_by_languages(self.revision, reasons, languages)
            scan.cut_scores.add(scores[~removed])
            readmitted = languages.looked_up(self.revision.readmitted(languages.names))
            scan.unmeasured += int(
                (readmitted & (revise.categories(reasons) == Category.LANGUAGE)).sum()
            )
            if narrows:
                removed_keys.append(uid_keys(batch["uid"].filter(pa.array(removed))))
                repeats = self._repeats(reasons) & ~removed
                target_keys.append(uid_keys(batch["duplicate_of"].filter(pa.array(repeats))))
        if narrows:
            scan.dropped_copies = np.intersect1d(
                np.concatenate(removed_keys), np.concatenate(target_keys)
            )
        return scan

    @staticmethod
    def _repeats(reasons: Coded) -> np.ndarray:
        kinds = revise.categories(reasons)
        return np.isin(kinds, (Category.URL_REPEAT, Category.IMAGE_REPEAT))

    def find_cut(self, scan: Scan) -> float | None:
        """The score at the new top-fraction cut, over the scores a rerun would have."""
        fraction = self.revision.new.clip.clip_keep_fraction
        if fraction is None:
            return None
        if self.revision.cut_is_recorded:
            return self.revision.recorded_cut
        if scan.cut_scores.total == 0:
            return None
        rank = cut_rank(scan.cut_scores.total, fraction)
        return order.values_at_ranks(scan.cut_scores, [rank], self._cut_values())[rank]

    def _cut_values(self) -> Iterator[np.ndarray]:
        for _, _, batch in self.files.batches(("reason", "language", "clip_score")):
            reasons, languages = coded(batch["reason"]), coded(batch["language"])
            removed = revise.removed_by_languages(self.revision, reasons, languages)
            yield scores_of(batch)[~removed]

    # -- pass 3 and 4 ------------------------------------------------------------------------

    def revise(self, batch: pa.Table, scan: Scan) -> tuple[Revised, Coded, Coded, np.ndarray]:
        reasons, languages = coded(batch["reason"]), coded(batch["language"])
        scores = scores_of(batch)
        copy_dropped = np.zeros(batch.num_rows, dtype=bool)
        if scan.dropped_copies.size:
            copy_dropped = np.isin(uid_keys(batch["duplicate_of"]), scan.dropped_copies)
        revised = revise.revise_batch(
            self.revision,
            reasons,
            languages,
            scores,
            present(batch["caption_cluster"]),
            copy_dropped,
            self.cut,
        )
        return revised, reasons, languages, scores

    def rows_pass(self, scan: Scan) -> None:
        for file_index, offset, batch in self.files.batches(ROW_COLUMNS):
            revised, reasons, languages, scores = self.revise(batch, scan)
            settled = ~revised.deferred
            self.tally(reasons, revised.reasons, languages, settled)
            self.chart(
                revised.reasons,
                scores,
                revised.required,
                settled,
                lambda row, file_index=file_index, offset=offset: (file_index, offset + row),
            )

    def clusters_pass(self, scan: Scan) -> None:
        if not self.revision.revises_clusters or not scan.in_clusters:
            return
        partitions = max(1, -(-scan.in_clusters // MEMBERS_PER_PASS))
        for partition in range(partitions):
            groups: dict[str, list[dict[str, Any]]] = {}
            for file_index, offset, batch in self.files.batches(MEMBER_COLUMNS):
                keys = uid_keys(batch["caption_cluster"])
                chosen = present(batch["caption_cluster"])
                chosen &= partition_of(keys, partitions) == partition
                if not chosen.any():
                    continue
                revised, *_ = self.revise(batch, scan)
                rows = batch.filter(pa.array(chosen)).to_pylist()
                deferred = revised.deferred[chosen].tolist()
                places = (offset + np.flatnonzero(chosen)).tolist()
                for row, is_deferred, place in zip(rows, deferred, places, strict=True):
                    row.update(deferred=is_deferred, place=(file_index, place))
                    groups.setdefault(row["caption_cluster"], []).append(row)
            decided = [row for rows in groups.values() for row in self.decide_cluster(rows)]
            self.count_members(decided)

    def decide_cluster(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The cluster's deferred rows, each with its new reason as ``new_reason``."""
        members = [row for row in rows if row["deferred"]]
        if not members:
            return []
        decided = revise.revise_cluster(self.revision, rows, self.cut)
        for row in members:
            row["new_reason"] = decided[row["uid"]]
        return members

    def count_members(self, members: list[dict[str, Any]]) -> None:
        """Count and chart the decided members of one partition, all at once."""
        if not members:
            return
        old = _coded([row["reason"] for row in members])
        new = _coded([row["new_reason"] for row in members])
        languages = _coded([row["language"] for row in members])
        everyone = np.ones(len(members), dtype=bool)
        self.tally(old, new, languages, everyone)
        scores = np.array(
            [math.nan if r["clip_score"] is None else r["clip_score"] for r in members]
        )
        required = languages.looked_up(self.revision.required(languages.names, self.cut))
        self.chart(new, scores, required, everyone, lambda row: members[row]["place"])

    # -- counting ----------------------------------------------------------------------------

    def tally(self, old: Coded, new: Coded, languages: Coded, mask: np.ndarray) -> None:
        """Count the rows of ``mask`` per (recorded reason, new reason, language)."""
        if not mask.any():
            return
        sizes = (len(old.names), len(new.names), len(languages.names))
        keys = np.ravel_multi_index(
            (old.codes[mask], new.codes[mask], languages.codes[mask]), sizes
        )
        unique, counts = np.unique(keys, return_counts=True)
        for key, n in zip(unique.tolist(), counts.tolist(), strict=True):
            a, b, c = np.unravel_index(key, sizes)
            entry = (old.names[a], new.names[b], languages.names[c])
            self.counts[entry] = self.counts.get(entry, 0) + n

    def chart(
        self,
        new: Coded,
        scores: np.ndarray,
        required: np.ndarray,
        mask: np.ndarray,
        place: Callable[[int], tuple[int, int]],
    ) -> None:
        """The scored rows of ``mask`` into the histogram; the closest to the new cut kept aside.

        ``place(i)`` is row i's (ledger file, row) place, for reading it in full later.
        """
        scored = mask & np.isfinite(scores)
        if not scored.any() or self.histogram is None:
            return
        outcomes = np.asarray([_outcome(name) for name in new.names], dtype=np.int64)[new.codes]
        labels = stream.Labels(outcomes, list(OUTCOMES))
        self.histogram.add(np.where(scored, scores, np.nan), labels)
        margin = scores - required
        limited = scored & np.isfinite(required)
        _offer_closest(self.just_kept, limited & (outcomes == 0), margin, place)
        _offer_closest(self.just_dropped, limited & (outcomes == 1), -margin, place)


def _offer_closest(
    lowest: stream.Lowest,
    mask: np.ndarray,
    keys: np.ndarray,
    place: Callable[[int], tuple[int, int]],
) -> None:
    """Offer the rows of ``mask`` with the smallest ``keys`` (only as many as ``lowest`` holds)."""
    chosen = np.flatnonzero(mask)
    if chosen.size:
        chosen = chosen[np.argsort(keys[chosen], kind="stable")[: lowest.count]]
        lowest.offer(keys[chosen].tolist(), [place(i) for i in chosen.tolist()])


def _coded(values: list[str | None]) -> Coded:
    """Python values as codes into their distinct names, in the order first seen."""
    index: dict[str | None, int] = {}
    codes = np.array([index.setdefault(value, len(index)) for value in values], dtype=np.int64)
    return Coded(codes, list(index))


def _outcome(reason: str | None) -> int:
    if reason is None:
        return 0
    if reason == revise.CLIP_DROP:
        return 1
    return 3 if reason in UNDETERMINED else 2


# -- the result ----------------------------------------------------------------------------------


@dataclass
class Preview:
    """What ``paircurate preview`` prints: counts before and after, the cut, the edge pairs."""

    rows: int
    counts: dict[tuple[str | None, str | None, str | None], int]
    cut: float | None
    cut_source: str
    histogram: dict[str, Any] | None
    just_kept: list[dict[str, Any]]
    just_dropped: list[dict[str, Any]]
    notes: list[str]

    def by_status(self, which: int) -> dict[str, int]:
        """Rows per status, recorded (``which`` 0) or new (1)."""
        found: dict[str, int] = {}
        for key, n in self.counts.items():
            status = status_name(key[which])
            found[status] = found.get(status, 0) + n
        return found

    def by_reason(self, which: int) -> dict[str, int]:
        found: dict[str, int] = {}
        for key, n in self.counts.items():
            if key[which] is not None:
                found[key[which]] = found.get(key[which], 0) + n
        return found

    def kept_by_language(self, which: int) -> dict[str, int]:
        found: dict[str, int] = {}
        for key, n in self.counts.items():
            if key[which] is None:
                language = key[2] or "(none)"
                found[language] = found.get(language, 0) + n
        return found

    def changes(self) -> list[dict[str, Any]]:
        """Rows whose reason changed, per (recorded, new) pair, most first."""
        found: dict[tuple[str | None, str | None], int] = {}
        for (old, new, _), n in self.counts.items():
            if old != new:
                found[(old, new)] = found.get((old, new), 0) + n
        ranked = sorted(found.items(), key=lambda item: (-item[1], str(item[0])))
        return [{"from": old or "kept", "to": new or "kept", "rows": n} for (old, new), n in ranked]

    @property
    def exact(self) -> bool:
        return not any(key[1] in UNDETERMINED for key in self.counts)


def preview(files: stream.LedgerFiles, revision: Revision) -> Preview:
    """Stream the ledger through ``revision`` and return the preview."""
    what = WhatIf(files, revision)
    scan = what.scan()
    what.cut = what.find_cut(scan)
    if scan.high >= scan.low:
        lines = [what.cut, *revision.required([*_thresholded(revision)], what.cut)]
        finite = [v for v in lines if v is not None and math.isfinite(v)]
        low, high = min([scan.low, *finite]), max([scan.high, *finite])
        pad = (high - low) * 0.02 or 0.01
        what.histogram = stream.HistogramSum(low - pad, high + pad, HISTOGRAM_BINS, OUTCOMES)
    what.rows_pass(scan)
    what.clusters_pass(scan)
    return Preview(
        rows=scan.rows,
        counts=what.counts,
        cut=what.cut,
        cut_source=_cut_source(revision, what.cut),
        histogram=_histogram_json(what.histogram),
        just_kept=_edge_rows(files, what.just_kept),
        just_dropped=_edge_rows(files, what.just_dropped),
        notes=_notes(revision, scan),
    )


def _thresholded(revision: Revision) -> list[str]:
    """Languages with a threshold of their own, and one that takes the others' ("")."""
    return [*revision.new.clip.thresholds_by_language, ""]


def _cut_source(revision: Revision, cut: float | None) -> str:
    if cut is None:
        return ""
    return "the run's" if revision.cut_is_recorded else "computed"


def _histogram_json(histogram: stream.HistogramSum | None) -> dict[str, Any] | None:
    result = histogram.result() if histogram is not None else None
    if result is None:
        return None
    return {
        "edges": [round(float(edge), 6) for edge in result.edges],
        "series": {name: counts.tolist() for name, counts in result.series.items()},
    }


EDGE_COLUMNS = ("uid", "language", "clip_score", "caption", "url")


def _edge_rows(files: stream.LedgerFiles, lowest: stream.Lowest) -> list[dict[str, Any]]:
    places = lowest.items()
    return [{name: row.get(name) for name in EDGE_COLUMNS} for row in read_rows(files, places)]


def _notes(revision: Revision, scan: Scan) -> list[str]:
    notes = []
    if scan.unmeasured and revision.new.clip.clip_keep_fraction is not None:
        notes.append(
            f"the top-fraction cut leaves out the scores of {scan.unmeasured:,} rows the new "
            "languages admit, which the run never downloaded"
        )
    if revision.revises_clusters and revision.languages_changed and scan.in_clusters:
        notes.append(
            "caption clusters are taken as recorded, less the rows the new languages drop; "
            "a rerun finds them again without those rows, which may split a cluster they linked"
        )
    return notes
