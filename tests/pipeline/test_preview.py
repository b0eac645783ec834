"""`paircurate preview` against the real thing: the job rerun with the changed options.

A baseline run keeps several pairs per caption cluster (the pair rule off, a
cap of 5) and has a CLIP threshold. For each case, the preview of the
baseline with other options must give the counts that the job itself gives
when it runs again with them: rows by status, by reason and kept rows by
language, with nothing undetermined.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import read_ledger, run_job_on

from paircurate.pipeline import cli

BASELINE = ("--no-near-duplicates", "--caption-cluster-cap", "5", "--clip-threshold", "0.3")
CASES = {
    # Decide and Write again over the committed raw shards.
    "thresholds and cap": (
        "--clip-threshold-by-lang",
        "en=0.5,default=0.4",
        "--caption-cluster-cap",
        "1",
    ),  # fmt: skip
    "top fraction and caption repeats": ("--clip-keep-fraction", "0.5", "--drop-caption-repeats"),
    # Fewer languages change the chunks: the job runs again from scratch.
    "languages": ("--languages", "en,es,nolang", "--clip-threshold", "0.6"),
}


@pytest.fixture(scope="module")
def baseline(first_run, manifest, tmp_path_factory) -> Path:
    """The session's first run decided again with BASELINE, over its committed raw shards."""
    output = tmp_path_factory.mktemp("preview") / "baseline"
    shutil.copytree(first_run[0], output)
    run_job_on(manifest, output, *BASELINE, "--runs-table", str(output.parent / "runs"))
    return output


def preview_of(output: Path, extra: tuple[str, ...], capsys) -> dict:
    assert cli.main(["preview", str(output), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def counts(output: Path) -> dict:
    rows = read_ledger(output)
    return {
        "status": Counter(row["status"] for row in rows),
        "reasons": Counter(row["reason"] for row in rows if row["reason"]),
        "kept_by_language": Counter(row["language"] for row in rows if row["status"] == "kept"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_preview_equals_a_rerun_of_the_job(baseline, manifest, tmp_path, case, capsys):
    extra = CASES[case]
    preview = preview_of(baseline, extra, capsys)
    rerun = tmp_path / "rerun"
    if case != "languages":
        shutil.copytree(baseline, rerun)
    run_job_on(manifest, rerun, *BASELINE, *extra)
    found = counts(rerun)
    assert preview["exact"] and preview["rows"] == sum(found["status"].values())
    for table in ("status", "reasons", "kept_by_language"):
        shown = {key: entry["preview"] for key, entry in preview[table].items() if entry["preview"]}
        assert shown == dict(found[table]), table
    changed = sum(change["rows"] for change in preview["changes"])
    assert changed > 0  # each case changes what is kept
    assert preview["status"]["kept"]["run"] == counts(baseline)["status"]["kept"]


@pytest.mark.slow
def test_preview_prints_a_table_and_the_histogram(baseline, capsys):
    assert cli.main(["preview", str(baseline), "--clip-threshold", "0.5"]) == 0
    text = capsys.readouterr().out
    kept = counts(baseline)["status"]["kept"]
    assert f"preview of {baseline}" in text
    assert any(line.split()[:2] == ["kept", str(kept)] for line in text.splitlines())
    assert "--clip-threshold: 0.3 -> 0.5" in text
    assert "CLIP scores;" in text and "pairs kept, closest above the new threshold:" in text


def test_options_preview_cannot_change_are_refused(tmp_path, capsys):
    assert cli.main(["preview", str(tmp_path), "--caption-threshold", "0.5"]) == 2
    assert "preview cannot change --caption-threshold" in capsys.readouterr().err


def test_a_folder_without_a_run_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["preview", str(tmp_path), "--clip-threshold", "0.3"]) == 2
    assert "has no ledger" in capsys.readouterr().err


@pytest.mark.slow
def test_the_run_added_its_row_to_the_runs_table(baseline):
    (part,) = (baseline.parent / "runs").glob("run-*.parquet")
    (row,) = pq.read_table(part).to_pylist()
    stats = json.loads((baseline / "stats.json").read_text())
    assert (row["output"], row["rows_in"], row["kept"]) == (
        str(baseline),
        stats["rows_in"],
        stats["kept"],
    )
    assert row["clip_threshold"] == 0.3 and dict(row["reasons"])["clip_below_threshold"] > 0
    assert row["finished_at"].isoformat(timespec="seconds") == stats["finished_at"]
