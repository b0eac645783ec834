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


def keep_fraction_cut(quantiles: Sequence[float], fraction: float) -> float:
    """The score at the top-``fraction`` cut, from evenly spaced quantiles (min ... max)."""
    if not quantiles:
        return float("-inf")
    position = (1.0 - fraction) * (len(quantiles) - 1)
    return float(quantiles[round(position)])


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
