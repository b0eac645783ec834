"""Statuses follow reasons; shard summaries count and merge."""

from __future__ import annotations

from collections import Counter

import pytest

from paircurate.schemas.codes import REASONS, Status, reason, status_of
from paircurate.transforms.output.ledger import (
    drop,
    empty_summary,
    merge_summaries,
    summarize_shard,
    with_status,
)


def test_no_reason_means_kept() -> None:
    row = {"uid": "u"}
    assert with_status(row) == {"uid": "u", "status": "kept"}
    assert row == {"uid": "u"}  # the input is left as it was
    assert with_status({"reason": None})["status"] == "kept"


@pytest.mark.parametrize("code", sorted(REASONS))
def test_every_reason_maps_to_its_status(code: str) -> None:
    assert with_status({"reason": code})["status"] == REASONS[code].status.value


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("image_too_small", "dropped"),
        ("image_aspect_ratio", "dropped"),
        ("url_duplicate", "dropped"),
        ("download_http_404", "failed"),
        ("download_timeout", "failed"),
        ("image_decode_error", "failed"),
        ("invalid_row", "failed"),
        ("missing_url", "failed"),
    ],
)
def test_known_statuses(code: str, status: str) -> None:
    assert with_status({"reason": code})["status"] == status


def test_unknown_reason_is_a_programming_error() -> None:
    with pytest.raises(
        KeyError, match="unknown reason code 'no_such_reason'; add it to schemas/codes.py"
    ):
        with_status({"reason": "no_such_reason"})


def test_codes_are_consistent() -> None:
    for code, entry in REASONS.items():
        assert entry.code == code
        assert entry.status in (Status.FAILED, Status.DROPPED)
        assert reason(code) is entry and status_of(code) is entry.status
    assert {code for code, entry in REASONS.items() if entry.retryable} == {
        "download_http_429",
        "download_http_5xx",
        "download_timeout",
        "download_connection_error",
        "download_incomplete",
        "download_robots_unavailable",
        "download_tdmrep_unavailable",
    }


def test_drop_sets_reason_detail_extras_and_status() -> None:
    row = {"uid": "u", "reason": None, "status": "kept"}
    result = drop(row, "url_duplicate", "same URL as row 3", duplicate_of="v")
    assert row == {"uid": "u", "reason": None, "status": "kept"}  # left as it was
    assert result == {
        "uid": "u",
        "reason": "url_duplicate",
        "reason_detail": "same URL as row 3",
        "status": "dropped",
        "duplicate_of": "v",
    }


def test_drop_without_detail() -> None:
    row = drop({"uid": "u"}, "download_http_404")
    assert (row["reason"], row["reason_detail"], row["status"]) == (
        "download_http_404",
        None,
        "failed",
    )


def test_drop_reason_wins_over_an_extra_of_the_same_name() -> None:
    row = drop({}, "image_too_small", reason_detail="ignored", width=3)
    assert (row["reason_detail"], row["width"], row["status"]) == (None, 3, "dropped")


ROWS_A = [
    {"status": "kept", "reason": None, "language": "en"},
    {"status": "kept", "reason": None, "language": "de"},
    {"status": "failed", "reason": "download_http_404"},
    {"status": "dropped", "reason": "image_too_small"},
    {"status": "failed", "reason": "download_http_404"},
]
ROWS_B = [
    {"status": "kept", "language": "en"},
    {"status": "failed", "reason": "download_timeout"},
]


def test_summarize_shard() -> None:
    summary = summarize_shard("00003", ROWS_A, image_bytes=1234, tar_bytes=10240)
    assert summary == {
        "rows": 5,
        "status": Counter({"kept": 2, "failed": 2, "dropped": 1}),
        "reason": Counter({"download_http_404": 2, "image_too_small": 1}),
        "languages": Counter({"en": 1, "de": 1}),
        "shards": {"00003": 2},
        "tar_bytes": {"00003": 10240},
        "image_bytes": 1234,
    }


def test_a_shard_without_a_tar_has_no_tar_size() -> None:
    assert summarize_shard("00003", ROWS_A, 0)["tar_bytes"] == {}


def test_summarize_empty_shard() -> None:
    assert summarize_shard("00000", [], 0) == {**empty_summary(), "shards": {"00000": 0}}


def test_merge_summaries() -> None:
    merged = merge_summaries(
        [summarize_shard("00000", ROWS_A, 100, 2048), summarize_shard("00001", ROWS_B, 20, 1024)]
    )
    assert merged == {
        "rows": 7,
        "status": Counter({"kept": 3, "failed": 3, "dropped": 1}),
        "reason": Counter({"download_http_404": 2, "image_too_small": 1, "download_timeout": 1}),
        "languages": Counter({"en": 2, "de": 1}),
        "shards": {"00000": 2, "00001": 1},
        "tar_bytes": {"00000": 2048, "00001": 1024},
        "image_bytes": 120,
    }


def test_merge_is_order_independent_and_does_not_touch_inputs() -> None:
    a, b = summarize_shard("00000", ROWS_A, 100), summarize_shard("00001", ROWS_B, 20)
    before = (dict(a["status"]), dict(b["status"]))
    assert merge_summaries([a, b]) == merge_summaries([b, a])
    assert (dict(a["status"]), dict(b["status"])) == before


def test_merge_nothing_is_empty() -> None:
    assert merge_summaries([]) == empty_summary()
    assert merge_summaries([empty_summary(), empty_summary()]) == empty_summary()
