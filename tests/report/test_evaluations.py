"""The report's evaluation section: RUN/eval/*.json results become a section of the page."""

from __future__ import annotations

import json
from pathlib import Path

from test_data import mixed_rows, write_outputs  # tests/report is on sys.path (rootdir mode)

from paircurate.pipeline.filesystem import FILES
from paircurate.report.aggregates import collect
from paircurate.report.evaluations import read_evaluations
from paircurate.report.page import render
from paircurate.transforms.output.store import OutputLayout

RESULT = {
    "model": {"label": "epoch_1.pt", "model": "tiny"},
    "zeroshot": {
        "dataset": "/data/<evalset>", "task": "colour", "classes": 10, "images": 240,
        "templates": ["a photo of a {c}."], "top1": 0.4125, "top5": 0.9,
        "mean_per_class_recall": 0.41,
    },
    "retrieval": {
        "dataset": "/data/<evalset>", "pairs": 240,
        **{f"{d}_retrieval_recall@{k}": k / 40 for d in ("image", "text") for k in (1, 5, 10)},
    },
}  # fmt: skip


def write_result(run: Path, name: str, document: object) -> None:
    (run / "eval").mkdir(exist_ok=True)
    (run / "eval" / name).write_text(json.dumps(document))


def test_results_are_read_and_others_skipped(tmp_path):
    run = write_outputs(tmp_path / "run", mixed_rows())
    assert read_evaluations(OutputLayout(FILES, str(run))).rows == []
    write_result(run, "b.json", RESULT)
    write_result(run, "a.json", {"model": {"model": "x"}, "retrieval": RESULT["retrieval"]})
    write_result(run, "notes.json", {"hello": 1})
    found = read_evaluations(OutputLayout(FILES, str(run)))
    assert [row.name for row in found.rows] == ["a.json", "b.json"]
    assert found.rows[0].zeroshot is None and found.rows[0].model == "x"
    assert found.rows[1].retrieval["recall"][1] == (5, 0.125, 0.125)
    assert found.skipped == ["notes.json"]


def test_the_page_has_an_evaluation_section_only_with_results(tmp_path):
    run = write_outputs(tmp_path / "run", mixed_rows())
    assert 'id="eval"' not in render(collect(str(run), files=FILES))
    write_result(run, "tiny.json", RESULT)
    page = render(collect(str(run), files=FILES))
    assert 'href="#eval"' in page and 'id="eval"' in page
    assert "0.412" in page and "epoch_1.pt" in page
    assert "/data/&lt;evalset&gt; (colour)" in page  # escaped like every other value
