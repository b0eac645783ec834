"""A chunk's final rows: scores, cluster decisions and CLIP thresholds applied, status set.

The Write step reads a chunk's rows and hands them here with what the Score
and Decide steps found; what comes back is what it writes. Nothing here reads
or writes files, and the input rows are never changed: every row that changes
comes back as a new dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from paircurate.schemas.codes import Status
from paircurate.schemas.config import ClipConfig
from paircurate.schemas.records import DECIDED, SCORED, SEMANTIC
from paircurate.transforms.compliance.rules import decisions_by_uid
from paircurate.transforms.output.ledger import with_status
from paircurate.transforms.scoring.clip_filter import judge_score

Row = dict[str, Any]


@dataclass
class FinalRows:
    """Every row of a chunk in ledger order with its status, and the kept ones among them."""

    rows: list[Row]
    kept: list[Row]


def ledger_order(row: Mapping[str, Any]) -> tuple:
    return (row["uid"], row.get("source") or "", row.get("row_number") or 0)


def with_score(row: Row, scores: Mapping[str, Mapping[str, Any]]) -> Row:
    """The row with its CLIP score, if it was downloaded and scored.

    A URL repeat has its own uid but no image (and so no score).
    """
    record = scores.get(row["uid"])
    if record is None or row.get("image_format") is None:
        return row
    return {**row, **{name: record[name] for name in SCORED}}


def with_decision(row: Row, decisions: Mapping[str, Mapping[str, Any]]) -> Row:
    """The row with its cluster decision, unless an earlier stage already gave it a reason."""
    decision = decisions.get(row["uid"])
    if decision is None or row.get("reason") is not None:
        return row
    return {**row, **{name: decision.get(name) for name in DECIDED}}


def with_semantic(row: Row, semantic: Mapping[str, Mapping[str, Any]]) -> Row:
    """The row with its semantic dedup decision: always its group, its drop only if still kept."""
    decision = semantic.get(row["uid"])
    if decision is None:
        return row
    if row.get("reason") is not None or decision["reason"] is None:
        return {**row, "semantic_cluster": decision["semantic_cluster"]}
    return {**row, **{name: decision[name] for name in SEMANTIC}}


def split_decisions(
    decisions: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, Mapping[str, Any]], dict[str, Mapping[str, Any]]]:
    """(cluster and compliance decisions, semantic dedup decisions) by uid.

    One PCollection brings them all; where a uid has several of the first kind,
    ``decisions_by_uid`` picks the one that applies.
    """
    records = list(decisions)
    semantic = {record["uid"]: record for record in records if record.get("rule") == "semantic"}
    others = (record for record in records if record.get("rule") != "semantic")
    return decisions_by_uid(others), semantic


def finalize_chunk(
    settled: Iterable[Row],
    fetched: Iterable[Row],
    decisions: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, Mapping[str, Any]],
    clip: ClipConfig | None,
    cut: float | None,
    shard: str | None,
    semantic: Mapping[str, Mapping[str, Any]] | None = None,
) -> FinalRows:
    """The chunk's rows as the ledger records them.

    ``settled`` rows were decided before fetching; ``fetched`` ones take their
    score (by uid, from ``scores``), then their cluster decision (by uid, from
    ``decisions``), then their semantic dedup decision (by uid, from
    ``semantic``; a row an earlier rule dropped keeps that reason), then are
    judged against ``clip``'s thresholds (and ``cut``, the score at the
    keep-fraction cut) when ``clip`` is given. Each row's
    status follows from its reason. Kept rows get ``shard`` and their key
    (their uid) when a shard is written (``shard`` None: a text-only run).
    """
    finished = list(settled)
    for row in fetched:
        row = with_decision(with_score(row, scores), decisions)
        if semantic:
            row = with_semantic(row, semantic)
        finished.append(row if clip is None else judge_score(row, clip, cut))
    rows = [with_status(row) for row in sorted(finished, key=ledger_order)]
    if shard is not None:
        rows = [
            {**row, "shard": shard, "key": row["uid"]}
            if row["status"] == Status.KEPT.value
            else row
            for row in rows
        ]
    kept = [row for row in rows if row["status"] == Status.KEPT.value]
    return FinalRows(rows, kept)
