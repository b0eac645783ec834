"""The runs table: one row of metrics per finished run, for dashboards across runs.

``--runs-table FOLDER`` makes each run add one Parquet file holding its row to
FOLDER (see ``report.runs_table``); the folder read as one table (DuckDB's
``read_parquet('FOLDER/*.parquet')``, a Trino or Hive external table, Spark)
is the history of every run. docs/report.md's column table is generated from
``RUNS_COLUMNS``.
"""

from __future__ import annotations

import pyarrow as pa

# (name, type, description), in the order of the Parquet columns.
RUNS_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("run_id", pa.string(), "a random id of this run's row (32 hex digits)"),
    ("finished_at", pa.timestamp("ms", tz="UTC"), "when the run's outputs were complete"),
    ("output", pa.string(), "the run's --output folder"),
    ("paircurate_version", pa.string(), "the paircurate version that ran it"),
    ("rows_in", pa.int64(), "input rows, every one in the ledger"),
    ("kept", pa.int64(), "rows kept: pairs in the shards"),
    ("dropped", pa.int64(), "rows a rule dropped"),
    ("failed", pa.int64(), "rows that could not be downloaded or decoded"),
    ("kept_share", pa.float64(), "kept / rows_in"),
    ("shards", pa.int64(), "shards (or metadata parts) written"),
    ("image_bytes_written", pa.int64(), "bytes of the images in the shards"),
    ("duration_s", pa.float64(), "wall time of the job, seconds (null: not waited for)"),
    ("rows_per_s", pa.float64(), "rows in per second of wall time"),
    ("clip_model", pa.string(), "--clip-model (none: not scored)"),
    ("clip_threshold", pa.float64(), "--clip-threshold"),
    ("clip_threshold_by_lang", pa.string(), "--clip-threshold-by-lang, comma-separated"),
    ("clip_keep_fraction", pa.float64(), "--clip-keep-fraction"),
    ("clip_keep_fraction_cut", pa.float64(), "the score at the --clip-keep-fraction cut"),
    ("languages", pa.string(), "--languages, comma-separated"),
    ("reasons", pa.map_(pa.string(), pa.int64()), "rows per reason code (no entry: none)"),
    ("options", pa.string(), "every option of the run, as stats.json records them (JSON)"),
)

RUNS_SCHEMA = pa.schema([pa.field(name, dtype) for name, dtype, _ in RUNS_COLUMNS])
