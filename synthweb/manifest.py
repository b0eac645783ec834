"""Write a SyntheticWeb as a pipeline input file, with its ground truth.

The format follows the file name (.parquet, .csv, .tsv, .jsonl, each
optionally + .gz). Rows are written in batches, so a manifest of any size
needs about one batch of memory; the file appears under its name only when
complete (temp-then-rename).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from typing import IO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .web import SyntheticWeb

MANIFEST_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("caption", pa.string()),
        ("truth_label", pa.string()),
        ("truth_language", pa.string()),
        ("truth_duplicate_of", pa.int64()),
        ("truth_scene", pa.int64()),
        ("truth_width", pa.int32()),
        ("truth_height", pa.int32()),
    ]
)
FORMATS = ("parquet", "csv", "tsv", "jsonl")
_BATCH_ROWS = 8192


def manifest_format(path: str) -> tuple[str, bool]:
    """(format, gzipped) from a file name; raises on an unknown extension."""
    name = path.lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[: -len(".gz")]
    for fmt in FORMATS:
        if name.endswith("." + fmt):
            return fmt, gzipped
    raise ValueError(
        f"cannot tell the manifest format of {path!r}: end the name with one of "
        + ", ".join("." + f for f in FORMATS)
        + " (optionally followed by .gz)"
    )


def write_manifest(web: SyntheticWeb, base_url: str, path: str) -> str:
    """Write the pipeline input: columns url, caption, and the ground truth as extra columns
    truth_label, truth_language, truth_duplicate_of, truth_scene, truth_width, truth_height.
    Format from the file name: .parquet, .csv, .tsv, .jsonl, each optionally + .gz. Streams in
    batches (100k rows must not need much memory). Returns path."""
    fmt, gzipped = manifest_format(path)
    temp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temp, "wb") as raw:
            sink: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if gzipped else raw
            _write(fmt, _batches(web, base_url.rstrip("/")), sink)
            if gzipped:
                sink.close()
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return path


def _batches(web: SyntheticWeb, base_url: str) -> Iterator[pa.RecordBatch]:
    """The web's rows as record batches of MANIFEST_SCHEMA."""
    for start in range(0, len(web), _BATCH_ROWS):
        entries = [web.entry(i) for i in range(start, min(start + _BATCH_ROWS, len(web)))]
        columns = [
            [base_url + e.path for e in entries],
            [e.caption for e in entries],
            [e.label for e in entries],
            [e.language for e in entries],
            [e.duplicate_of for e in entries],
            [e.scene for e in entries],
            [e.width for e in entries],
            [e.height for e in entries],
        ]
        yield pa.RecordBatch.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, MANIFEST_SCHEMA, strict=True)],
            schema=MANIFEST_SCHEMA,
        )


def _write(fmt: str, batches: Iterator[pa.RecordBatch], sink: IO[bytes]) -> None:
    if fmt == "parquet":
        with pq.ParquetWriter(sink, MANIFEST_SCHEMA) as writer:
            for batch in batches:
                writer.write_batch(batch)
    elif fmt in ("csv", "tsv"):
        options = pa_csv.WriteOptions(delimiter="\t" if fmt == "tsv" else ",")
        with pa_csv.CSVWriter(sink, MANIFEST_SCHEMA, write_options=options) as writer:
            for batch in batches:
                writer.write_batch(batch)
    else:
        for batch in batches:
            lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in batch.to_pylist())
            sink.write("".join(lines).encode("utf-8"))
