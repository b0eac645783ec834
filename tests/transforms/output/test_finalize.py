"""finalize_chunk: a chunk's final rows from its rows, scores and decisions, no pipeline."""

from __future__ import annotations

import copy

from paircurate.schemas.config import ClipConfig
from paircurate.transforms.output.finalize import finalize_chunk


def fetched_row(uid: str, **fields) -> dict:
    return {"uid": uid, "source": "in.csv", "row_number": int(uid, 16), "reason": None,
            "reason_detail": None, "language": "en", "image_format": "jpg", **fields}  # fmt: skip


def score(uid: str, value: float, truncated: bool = False) -> dict:
    return {"uid": uid, "clip_score": value, "caption_truncated": truncated}


def decision(uid: str, reason: str | None, keeper: str) -> dict:
    return {"uid": uid, "reason": reason, "reason_detail": f"like {keeper}" if reason else None,
            "duplicate_of": keeper if reason else None, "cluster_id": keeper,
            "caption_cluster": keeper, "image_cluster": None}  # fmt: skip


def by_uid(records: list[dict]) -> dict[str, dict]:
    return {record["uid"]: record for record in records}


def test_scores_decisions_thresholds_and_status_are_applied_in_order() -> None:
    settled = [{"uid": "05", "source": "in.csv", "row_number": 5, "reason": "caption_junk",
                "reason_detail": "junk", "status": "dropped"}]  # fmt: skip
    fetched = [
        fetched_row("01"),
        fetched_row("02"),
        fetched_row("03"),
        fetched_row("04", reason="download_http_404", image_format=None),
    ]
    scores = by_uid([score("01", 0.5), score("02", 0.1, True), score("03", 0.9)])
    decisions = by_uid([decision("03", "near_duplicate", "01"), decision("01", None, "01"),
                        decision("04", "near_duplicate", "01")])  # fmt: skip
    before = copy.deepcopy((settled, fetched))
    final = finalize_chunk(
        settled, fetched, decisions, scores, ClipConfig(clip_threshold=0.3), None, "00007"
    )
    assert (settled, fetched) == before  # inputs are never changed
    assert [row["uid"] for row in final.rows] == ["01", "02", "03", "04", "05"]
    outcome = {row["uid"]: (row["status"], row["reason"]) for row in final.rows}
    assert outcome == {
        "01": ("kept", None),
        "02": ("dropped", "clip_below_threshold"),  # scored, then judged
        "03": ("dropped", "near_duplicate"),  # the decision wins over its good score
        "04": ("failed", "download_http_404"),  # an earlier reason is kept
        "05": ("dropped", "caption_junk"),
    }
    first = final.rows[0]
    assert (first["clip_score"], first["cluster_id"]) == (0.5, "01")
    assert (first["shard"], first["key"]) == ("00007", "01")
    assert final.rows[1]["caption_truncated"] is True and "shard" not in final.rows[1]
    assert final.rows[1]["reason_detail"] == (
        "CLIP score 0.1000 is below 0.3000 (--clip-threshold)"
    )
    assert final.kept == [first]


def test_keep_fraction_cut_and_language_thresholds() -> None:
    fetched = [fetched_row("01", language="de"), fetched_row("02"), fetched_row("03")]
    scores = by_uid([score("01", 0.27), score("02", 0.27), score("03", 0.6)])
    clip = ClipConfig(clip_threshold_by_lang=("en=0.28", "default=0.2"), clip_keep_fraction=0.5)
    final = finalize_chunk([], fetched, {}, scores, clip, 0.25, "00000")
    assert [row["reason"] for row in final.rows] == [None, "clip_below_threshold", None]
    cut = finalize_chunk([], fetched, {}, scores, clip, 0.5, "00000")
    assert [row["reason"] for row in cut.rows] == ["clip_below_threshold"] * 2 + [None]
    assert cut.rows[0]["reason_detail"].endswith("(top 0.5 cut)")


def test_without_clip_scores_are_recorded_but_not_judged() -> None:
    final = finalize_chunk([], [fetched_row("01")], {}, by_uid([score("01", -0.5)]), None, None,
                           "00000")  # fmt: skip
    assert (final.rows[0]["clip_score"], final.rows[0]["status"]) == (-0.5, "kept")


def test_a_url_repeat_without_an_image_takes_no_score() -> None:
    repeat = fetched_row("01", image_format=None)
    final = finalize_chunk([], [repeat], {}, by_uid([score("01", 0.9)]), None, None, "00000")
    assert "clip_score" not in final.rows[0]


def test_text_only_rows_get_no_shard_or_key() -> None:
    final = finalize_chunk([], [fetched_row("02"), fetched_row("01")], {}, {}, None, None, None)
    assert [row["uid"] for row in final.kept] == ["01", "02"]
    assert all("shard" not in row and "key" not in row for row in final.rows)


def test_ledger_order_breaks_uid_ties_by_source_and_row_number() -> None:
    rows = [fetched_row("01", source="b.csv"), fetched_row("01", source="a.csv", row_number=9),
            fetched_row("01", source="a.csv", row_number=2)]  # fmt: skip
    final = finalize_chunk([], rows, {}, {}, None, None, None)
    assert [(r["source"], r["row_number"]) for r in final.rows] == [
        ("a.csv", 2), ("a.csv", 9), ("b.csv", 1)
    ]  # fmt: skip
