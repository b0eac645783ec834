"""The runs table on an object store (moto's S3): each append is a new object, none is lost."""

from __future__ import annotations

import io
import json
import shutil
import uuid

import pyarrow.parquet as pq
import pytest

from paircurate.pipeline.cli import main


@pytest.mark.slow
def test_report_adds_rows_to_a_runs_table_on_s3(s3, first_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(first_run[0], run)
    prefix = f"runs-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        args = ["report", str(run), "--no-images", "--runs-table", s3.url(prefix)]
        assert main([*args, *s3.beam_args]) == 0
    keys = s3.keys(prefix)
    assert len(keys) == 2 and all(key.endswith(".parquet") for key in keys)
    printed = [line for line in capsys.readouterr().out.splitlines() if "/run-" in line]
    assert sorted(printed) == [s3.url(key) for key in keys]  # the same finish: ids differ
    stats = json.loads((run / "stats.json").read_text())
    rows = [pq.read_table(io.BytesIO(s3.get(key))).to_pylist()[0] for key in keys]
    assert [(row["output"], row["kept"]) for row in rows] == [(str(run), stats["kept"])] * 2
    assert rows[0]["run_id"] != rows[1]["run_id"]
