"""A finished run's metrics as one more row of the runs table (``--runs-table FOLDER``).

Nothing is appended to an existing file: each run writes a file of its own,
``FOLDER/run-<finished, UTC>-<run id>.parquet``, under a temporary name that
is then renamed into place (``storage.write_atomically``). No file is read,
rewritten or replaced, so the same steps are safe on a local disk, on GCS and
on S3: two runs that finish at once never lose each other's row, a reader
sees a row whole or not at all, and no lock is needed. A reader takes the
folder as one table (``*.parquet``; a temporary name never ends so), in the
order of the file names, which is the order the runs finished in.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from paircurate.schemas.runs import RUNS_SCHEMA
from paircurate.transforms.output import storage
from paircurate.transforms.output.storage import Files


def finished_time(stats: dict[str, Any]) -> datetime:
    """When the run finished, as stats.json records it; now for runs that did not record it."""
    recorded = stats.get("finished_at")
    if isinstance(recorded, str):
        try:
            return datetime.fromisoformat(recorded).astimezone(timezone.utc)
        except ValueError:
            pass
    return datetime.now(timezone.utc)


def _count(stats: dict[str, Any], group: str, key: str) -> int:
    entry = (stats.get(group) or {}).get(key) or {}
    return int(entry.get("count", 0))


def _joined(values: Any) -> str | None:
    return ",".join(str(value) for value in values) if values else None


def runs_row(stats: dict[str, Any], output: str, run_id: str) -> dict[str, Any]:
    """The runs table's row of the run whose stats.json is ``stats``."""
    options = stats.get("options") or {}
    clip = options.get("clip") or {}
    rows = int(stats.get("rows_in") or 0)
    kept = int(stats.get("kept") or 0)
    return {
        "run_id": run_id,
        "finished_at": finished_time(stats),
        "output": output,
        "paircurate_version": (stats.get("versions") or {}).get("paircurate"),
        "rows_in": rows,
        "kept": kept,
        "dropped": _count(stats, "status", "dropped"),
        "failed": _count(stats, "status", "failed"),
        "kept_share": kept / rows if rows else None,
        "shards": stats.get("shards"),
        "image_bytes_written": stats.get("image_bytes_written"),
        "duration_s": stats.get("duration_s"),
        "rows_per_s": stats.get("rows_per_s"),
        "clip_model": clip.get("clip_model"),
        "clip_threshold": clip.get("clip_threshold"),
        "clip_threshold_by_lang": _joined(clip.get("clip_threshold_by_lang")),
        "clip_keep_fraction": clip.get("clip_keep_fraction"),
        "clip_keep_fraction_cut": stats.get("clip_keep_fraction_cut"),
        "languages": _joined((options.get("caption") or {}).get("languages")),
        "reasons": [(code, entry["count"]) for code, entry in (stats.get("reason") or {}).items()],
        "options": json.dumps(options, sort_keys=True),
    }


def runs_file_name(row: dict[str, Any]) -> str:
    stamp = row["finished_at"].strftime("%Y%m%dT%H%M%S%fZ")
    return f"run-{stamp}-{row['run_id'][:8]}.parquet"


def append_run(files: Files, folder: str, stats: dict[str, Any], output: str) -> str:
    """Write the run's row as a new file of the runs table in ``folder``; returns its path."""
    row = runs_row(stats, output, uuid.uuid4().hex)
    table = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    files.makedirs(folder)
    path = files.join(folder, runs_file_name(row))
    storage.write_bytes(files, path, buffer.getvalue())
    return path
