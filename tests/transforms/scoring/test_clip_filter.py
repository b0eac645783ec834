"""CLIP thresholds: absolute, per language, top fraction, and which rows they judge."""

from __future__ import annotations

import numpy as np
import pytest

from paircurate.schemas.config import ClipConfig, ConfigError
from paircurate.transforms.scoring.clip_filter import (
    QUANTILES,
    cut_rank,
    judge_score,
    keep_fraction_cut,
    required_score,
    thresholds_for,
)


def _row(score: float | None, language: str = "en", reason: str | None = None) -> dict:
    return {"clip_score": score, "language": language, "reason": reason}


def test_absolute_threshold_drops_only_scores_below_it():
    config = ClipConfig(clip_threshold=0.28)
    assert judge_score(_row(0.28), config)["reason"] is None
    dropped = judge_score(_row(0.2799), config)
    assert (dropped["reason"], dropped["status"]) == ("clip_below_threshold", "dropped")
    assert dropped["reason_detail"] == "CLIP score 0.2799 is below 0.2800 (--clip-threshold)"


def test_language_thresholds_fall_back_to_default():
    config = ClipConfig(clip_threshold_by_lang=("en=0.28", "default=0.26"))
    assert judge_score(_row(0.27, "en"), config)["reason"] == "clip_below_threshold"
    assert judge_score(_row(0.27, "de"), config)["reason"] is None
    assert judge_score(_row(0.25, "de"), config)["reason_detail"].endswith(
        "(default language threshold)"
    )
    only_en = ClipConfig(clip_threshold_by_lang=("en=0.28",))
    assert thresholds_for("fr", only_en, None) == []


def test_every_threshold_in_force_must_be_cleared():
    config = ClipConfig(clip_threshold=0.1, clip_keep_fraction=0.3)
    assert thresholds_for("en", config, 0.31) == [(0.1, "--clip-threshold"), (0.31, "top 0.3 cut")]
    assert judge_score(_row(0.3), config, cut=0.31)["reason"] == "clip_below_threshold"
    assert judge_score(_row(0.3), config, cut=None)["reason"] is None


def test_rows_already_dropped_or_unscored_keep_their_state():
    config = ClipConfig(clip_threshold=0.5)
    assert judge_score(_row(0.1, reason="near_duplicate"), config)["reason"] == "near_duplicate"
    assert judge_score(_row(None), config)["reason"] is None


def test_keep_fraction_cut_reads_the_quantiles():
    quantiles = [i / 100 for i in range(101)]  # min 0.0 ... max 1.0
    assert keep_fraction_cut(quantiles, 0.3) == 0.7
    assert keep_fraction_cut(quantiles, 1.0) == 0.0
    assert keep_fraction_cut([], 0.3) == float("-inf")


@pytest.mark.parametrize("item", ["en", "en=", "=0.2", "en=high", "en=2"])
def test_bad_language_thresholds_are_refused(item: str):
    with pytest.raises(ConfigError, match="--clip-threshold-by-lang"):
        ClipConfig(clip_threshold_by_lang=(item,))


@pytest.mark.parametrize("count", [1, 2, 3, 999, 1000, 1001, 1002, 4321, 60_000])
def test_cut_rank_is_the_rank_of_the_jobs_quantile(count: int):
    """The job's cut comes from Beam's quantiles of every score; the rank names the same score."""
    from apache_beam.transforms.stats import ApproximateQuantilesCombineFn

    scores = np.random.default_rng(count).random(count).astype(np.float32).tolist()
    combine = ApproximateQuantilesCombineFn.create(QUANTILES)
    accumulator = combine.create_accumulator()
    for score in scores:
        accumulator = combine.add_input(accumulator, score)
    quantiles = combine.extract_output(accumulator)
    ordered = sorted(scores)
    for fraction in (0.0001, 0.1, 0.3, 0.5, 0.77, 0.9999, 1.0):
        assert ordered[cut_rank(count, fraction)] == keep_fraction_cut(quantiles, fraction)


def test_required_score_is_what_judge_score_drops_below():
    config = ClipConfig(
        clip_threshold=0.2,
        clip_threshold_by_lang=("en=0.28", "default=0.26"),
        clip_keep_fraction=0.5,
    )
    rng = np.random.default_rng(0)
    for language in ("en", "de", None, "nolang"):
        for cut in (None, 0.1, 0.27, 0.3):
            required = required_score(language, config, cut)
            for score in rng.uniform(0.15, 0.35, 200).astype(np.float32).tolist():
                dropped = judge_score(_row(score, language), config, cut)["reason"] is not None
                assert dropped == (score < required)
    assert required_score("en", ClipConfig(), None) is None
