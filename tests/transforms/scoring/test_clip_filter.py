"""CLIP thresholds: absolute, per language, top fraction, and which rows they judge."""

from __future__ import annotations

import pytest

from paircurate.schemas.config import ClipConfig, ConfigError
from paircurate.transforms.scoring.clip_filter import judge_score, keep_fraction_cut, thresholds_for


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
