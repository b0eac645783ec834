"""The report's evaluation section: results of ``paircurate eval`` kept in RUN/eval/*.json.

A run folder may hold any number of result files (one per model or checkpoint);
each becomes a row. Files that are not an eval result are skipped with a note
rather than failing the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from paircurate.transforms.output import storage
from paircurate.transforms.output.store import OutputLayout

RECALL_KS = (1, 5, 10)


@dataclass(frozen=True)
class EvalRow:
    """One result file as the page shows it."""

    name: str
    model: str
    zeroshot: dict[str, Any] | None
    retrieval: dict[str, Any] | None


@dataclass(frozen=True)
class Evaluations:
    rows: list[EvalRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def read_evaluations(layout: OutputLayout) -> Evaluations:
    """Every RUN/eval/*.json result, sorted by file name; none when the folder is absent."""
    rows, skipped = [], []
    for info in layout.files.match(layout.eval_results):
        name = info.path.rsplit("/", 1)[-1]
        try:
            document = json.loads(storage.read_bytes(layout.files, info.path))
            rows.append(_row(name, document))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            skipped.append(name)
    return Evaluations(rows, skipped)


def _row(name: str, document: dict[str, Any]) -> EvalRow:
    model = document["model"]
    if not document.get("zeroshot") and not document.get("retrieval"):
        raise ValueError(f"{name} holds neither zeroshot nor retrieval results")
    retrieval = document.get("retrieval")
    if retrieval:
        retrieval = {
            "dataset": retrieval["dataset"],
            "pairs": retrieval["pairs"],
            "recall": [
                (
                    k,
                    float(retrieval[f"image_retrieval_recall@{k}"]),
                    float(retrieval[f"text_retrieval_recall@{k}"]),
                )
                for k in RECALL_KS
            ],
        }
    return EvalRow(
        name, str(model.get("label") or model["model"]), document.get("zeroshot"), retrieval
    )
