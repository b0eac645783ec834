"""Which CLIP score a pair must reach: absolute, per caption language, or a top fraction.

The thresholds combine: a pair must clear every one in force (the absolute
one, its language's, and the score at the top-fraction cut). Pairs that a
dedup rule or an earlier stage already dropped keep that reason; only pairs
still kept are judged on their score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from paircurate.schemas.config import ClipConfig
from paircurate.transforms.output.ledger import drop

# Evenly spaced quantiles (min ... max) the job computes over the scores for --clip-keep-fraction.
QUANTILES = 1001


def keep_fraction_cut(quantiles: Sequence[float], fraction: float) -> float:
    """The score at the top-``fraction`` cut, from evenly spaced quantiles (min ... max)."""
    if not quantiles:
        return float("-inf")
    return float(quantiles[cut_position(fraction, len(quantiles))])


def cut_position(fraction: float, quantiles: int = QUANTILES) -> int:
    """Which of ``quantiles`` evenly spaced quantiles is the top-``fraction`` cut."""
    return round((1.0 - fraction) * (quantiles - 1))


def cut_rank(count: int, fraction: float) -> int:
    """The 0-based rank, among ``count`` sorted scores, of the score at the top-``fraction`` cut.

    The job's quantiles are Beam's ``ApproximateQuantiles``: the minimum, the
    maximum and, between them, the element at ``int(j * step + offset)`` of the
    sorted scores. They are exact while every score fits the combiner's
    buffers (a few hundred thousand scores) and within its error bound beyond,
    so a cut taken here at this rank is the job's cut, or within that bound.
    """
    position = cut_position(fraction)
    if count <= 0:
        raise ValueError("no scores to cut")
    if position == 0:
        return 0
    if position == QUANTILES - 1:
        return count - 1
    step = count / (QUANTILES - 1)
    offset = (count - 1) / (QUANTILES - 1)
    return min(int((position - 1) * step + offset), count - 1)


def thresholds_for(
    language: str | None, config: ClipConfig, cut: float | None
) -> list[tuple[float, str]]:
    """(threshold, what it is) for every threshold a pair of this language must clear."""
    found = []
    if config.clip_threshold is not None:
        found.append((config.clip_threshold, "--clip-threshold"))
    by_language = config.thresholds_by_language
    if by_language:
        language = (language or "").lower()
        if language in by_language:
            found.append((by_language[language], f"threshold for {language}"))
        elif "default" in by_language:
            found.append((by_language["default"], "default language threshold"))
    if config.clip_keep_fraction is not None and cut is not None:
        found.append((cut, f"top {config.clip_keep_fraction:g} cut"))
    return found


def required_score(language: str | None, config: ClipConfig, cut: float | None) -> float | None:
    """The lowest score that clears every threshold in force for ``language``; None: no limit.

    ``judge_score`` drops a pair exactly when its score is below this.
    """
    found = [threshold for threshold, _ in thresholds_for(language, config, cut)]
    return max(found) if found else None


def judge_score(row: dict[str, Any], config: ClipConfig, cut: float | None = None) -> dict:
    """Drop a still-kept, scored row whose score is below a threshold in force."""
    score = row.get("clip_score")
    if row.get("reason") is not None or score is None:
        return row
    for threshold, what in thresholds_for(row.get("language"), config, cut):
        if score < threshold:
            detail = f"CLIP score {score:.4f} is below {threshold:.4f} ({what})"
            return drop(row, "clip_below_threshold", detail)
    return row
