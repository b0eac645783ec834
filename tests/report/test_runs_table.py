"""The runs table: one file per run, read as one table, by the SQL docs/report.md shows."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from paircurate.pipeline.filesystem import FILES
from paircurate.report.runs_table import append_run, runs_row
from paircurate.schemas.runs import RUNS_SCHEMA

ROOT = Path(__file__).resolve().parents[2]


def stats_of(kept: int, finished: str, reasons: dict[str, int]) -> dict:
    rows = kept + sum(reasons.values())
    return {
        "rows_in": rows,
        "kept": kept,
        "status": {"kept": {"count": kept}, "dropped": {"count": sum(reasons.values())}},
        "reason": {code: {"count": n, "share": n / rows} for code, n in reasons.items()},
        "shards": 2,
        "image_bytes_written": 1234,
        "duration_s": 10.0,
        "rows_per_s": rows / 10.0,
        "finished_at": finished,
        "options": {
            "clip": {
                "clip_model": "ViT-B-32",
                "clip_threshold": 0.28,
                "clip_threshold_by_lang": [],
            },
            "caption": {"languages": ["en", "de"]},
            "output": {"output": "/runs/a"},
        },
        "versions": {"paircurate": "0.1.0"},
    }


FIRST = stats_of(90, "2026-03-01T10:00:00+00:00", {"url_duplicate": 6, "clip_below_threshold": 4})
SECOND = stats_of(70, "2026-03-08T10:00:00+00:00", {"url_duplicate": 5, "language": 25})


def test_each_run_adds_a_file_and_the_folder_reads_as_one_table(tmp_path):
    folder = str(tmp_path / "runs")
    second = append_run(FILES, folder, SECOND, "/runs/b")
    first = append_run(FILES, folder, FIRST, "/runs/a")
    assert sorted(Path(folder).iterdir()) == [Path(first), Path(second)]  # in finishing order
    assert Path(first).name.startswith("run-20260301T100000")
    table = ds.dataset(folder, format="parquet").to_table()
    assert table.schema == RUNS_SCHEMA
    rows = sorted(table.to_pylist(), key=lambda row: row["finished_at"])
    assert [(r["output"], r["rows_in"], r["kept"], r["dropped"]) for r in rows] == [
        ("/runs/a", 100, 90, 10), ("/runs/b", 100, 70, 30),
    ]  # fmt: skip
    assert dict(rows[1]["reasons"]) == {"url_duplicate": 5, "language": 25}
    assert (rows[0]["clip_threshold"], rows[0]["languages"]) == (0.28, "en,de")
    assert rows[0]["run_id"] != rows[1]["run_id"]


def test_a_run_without_a_recorded_finish_is_stamped_now():
    row = runs_row({**FIRST, "finished_at": None}, "/runs/a", "ab" * 16)
    assert row["finished_at"].year >= 2026 and row["kept_share"] == 0.9


def sql_blocks() -> list[str]:
    page = (ROOT / "docs" / "report.md").read_text()
    return re.findall(r"```sql\n(.*?)```", page, re.S)


def test_the_dashboard_sql_of_the_docs_runs_on_the_table(tmp_path):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is a dev extra")
    folder = tmp_path / "runs"
    append_run(FILES, str(folder), FIRST, "/runs/a")
    append_run(FILES, str(folder), SECOND, "/runs/b")
    blocks = [block for block in sql_blocks() if "read_parquet" in block]
    assert len(blocks) >= 2, "docs/report.md shows DuckDB queries over the runs table"
    results = []
    with duckdb.connect() as connection:
        for block in blocks:
            query = block.replace("runs/*.parquet", f"{folder}/*.parquet")
            results.append(connection.sql(query).fetchall())
    kept = results[0]
    assert [row[1:3] for row in kept] == [("/runs/a", 90), ("/runs/b", 70)]
    by_reason = {(str(row[0])[:10], row[1]): row[2] for row in results[1]}
    assert by_reason[("2026-03-08", "language")] == 25
    assert by_reason[("2026-03-01", "clip_below_threshold")] == 4
