"""The report's threshold table: pairs kept at a range of CLIP thresholds and top fractions.

Each line answers what ``paircurate preview RUN --clip-threshold T`` (or
``--clip-keep-fraction F``) answers, with that one threshold in place of the
run's CLIP thresholds and every other rule as the run applied it: the pairs a
CLIP threshold may judge (kept, or dropped below a threshold) that reach it,
plus the kept pairs without a score. A top fraction's cut is the score at the
job's rank among all scored pairs (``clip_filter.cut_rank``). Three streamed
passes over two columns: scores per bucket, the exact scores at the ranks
wanted, then the counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paircurate.report import order, stream
from paircurate.report.data import as_numpy
from paircurate.transforms.output.revise import CLIP_DROP
from paircurate.transforms.scoring.clip_filter import cut_rank

FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9)
# Thresholds at these quantiles of the scores, rounded to three decimals.
THRESHOLD_QUANTILES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
COLUMNS = ("reason", "clip_score")


@dataclass(frozen=True)
class ThresholdRow:
    """One line: a threshold (or a top fraction and its cut) and the pairs it keeps."""

    kind: str  # "threshold" or "top fraction"
    value: float  # the threshold, or the fraction
    score: float  # the score a pair must reach
    kept: int
    scored_kept: int
    scored: int

    @property
    def share_of_scored(self) -> float:
        return self.scored_kept / self.scored if self.scored else 0.0


def _judged(batch) -> tuple[np.ndarray, np.ndarray]:
    """(scores, whether a CLIP threshold may judge the row: kept or dropped below one)."""
    reasons = stream.encode(batch["reason"], "")
    return as_numpy(batch["clip_score"]), reasons.equal("") | reasons.equal(CLIP_DROP)


def threshold_table(
    files: stream.LedgerFiles, run_thresholds: tuple[float, ...] = ()
) -> list[ThresholdRow]:
    """The table over the ledger ``files``; ``run_thresholds`` are added to the range."""
    everything = order.BucketCounts()
    unscored_kept = 0
    for _, _, batch in files.batches(COLUMNS):
        scores, judged = _judged(batch)
        everything.add(scores)
        unscored_kept += int((judged & ~np.isfinite(scores)).sum())
    total = everything.total
    if total == 0:
        return []
    fraction_ranks = {fraction: cut_rank(total, fraction) for fraction in FRACTIONS}
    quantile_ranks = [min(int(q * total), total - 1) for q in THRESHOLD_QUANTILES]
    ranks = [*fraction_ranks.values(), *quantile_ranks]
    values = order.values_at_ranks(everything, ranks, _scores(files))
    thresholds = sorted({round(values[rank], 3) for rank in quantile_ranks} | set(run_thresholds))
    lines = [("threshold", t, t) for t in thresholds]
    lines += [("top fraction", f, values[rank]) for f, rank in fraction_ranks.items()]
    reached = _reaching(files, np.array([score for _, _, score in lines]))
    return [
        ThresholdRow(kind, value, score, int(n) + unscored_kept, int(n), total)
        for (kind, value, score), n in zip(lines, reached, strict=True)
    ]


def _scores(files: stream.LedgerFiles):
    for _, _, batch in files.batches(("clip_score",)):
        yield as_numpy(batch["clip_score"])


def _reaching(files: stream.LedgerFiles, limits: np.ndarray) -> np.ndarray:
    """Per limit, the judged rows whose score reaches it."""
    counts = np.zeros(limits.size, dtype=np.int64)
    for _, _, batch in files.batches(COLUMNS):
        scores, judged = _judged(batch)
        chosen = np.sort(scores[judged & np.isfinite(scores)])
        counts += chosen.size - np.searchsorted(chosen, limits, side="left")
    return counts
