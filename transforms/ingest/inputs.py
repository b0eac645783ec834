"""Parse URL + caption lists into rows, one per input row.

Pure parsing over file objects: the pipeline opens files through Beam's
filesystems (local, GCS, S3, ...) and hands the stream here. A line that cannot
be parsed still becomes a row (with ``parse_error`` set), so that it reaches the
ledger instead of vanishing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

BATCH_ROWS = 8192
_SUFFIXES = (
    ("parquet", (".parquet", ".pq")),
    ("csv", (".csv",)),
    ("tsv", (".tsv", ".tab")),
    ("jsonl", (".jsonl", ".ndjson", ".json")),
)


class InputError(ValueError):
    """An input file that cannot be used at all: the job stops before any work."""


def detect_format(path: str) -> tuple[str, bool]:
    """Return (format, gzipped) from a file name such as ``pairs.tsv.gz``."""
    name = path.lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[: -len(".gz")]
    for fmt, suffixes in _SUFFIXES:
        if name.endswith(suffixes):
            return fmt, gzipped
    raise InputError(
        f"{path}: unknown input format; name files .parquet, .csv, .tsv or .jsonl (optionally .gz)"
    )


def make_uid(url: str | None, caption: str | None) -> str:
    """Stable 128-bit id of a pair: the same url and caption give the same uid everywhere."""
    text = f"{url or ''}\x1f{caption or ''}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass
class ParsedRow:
    """One input row as read: its values by column, or why it could not be read."""

    row_number: int
    values: dict[str, Any] = field(default_factory=dict)
    parse_error: str | None = None


@dataclass(frozen=True)
class Columns:
    """The columns the job reads from every file."""

    url: str
    caption: str
    keep: tuple[str, ...] = ()

    @property
    def wanted(self) -> list[str]:
        return [self.url, self.caption, *self.keep]


def file_columns(stream: IO[bytes], fmt: str) -> dict[str, pa.DataType]:
    """Column names and types of a file, reading only its start."""
    if fmt == "parquet":
        schema = pq.ParquetFile(_seekable(stream)).schema_arrow
        return {f.name: f.type for f in schema}
    if fmt in ("csv", "tsv"):
        return {name: pa.string() for name in _csv_header(stream, fmt)}
    for line_number, line in enumerate(stream):
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError as error:
                raise InputError(f"line {line_number + 1} is not JSON: {error}") from None
            if not isinstance(record, dict):
                raise InputError(f"line {line_number + 1} is not a JSON object")
            return {name: pa.string() for name in record}
    return {}


def inspect_file(stream: IO[bytes], fmt: str) -> tuple[dict[str, pa.DataType], bool]:
    """(column names and types, whether any row follows) of a file, from one open stream.

    Parquet answers both from its footer; a text file is read up to its first row.
    """
    if fmt == "parquet":
        parquet = pq.ParquetFile(_seekable(stream))
        found = {f.name: f.type for f in parquet.schema_arrow}
        return found, parquet.metadata.num_rows > 0
    found = file_columns(stream, fmt)
    if fmt == "jsonl" or not found:
        return found, bool(found)  # a JSONL file's columns come from its first row
    # After a CSV/TSV header, any non-empty line is a row (or a row the ledger marks invalid).
    return found, any(line.rstrip(b"\r\n") for line in stream)


def check_columns(found: Sequence[str], columns: Columns, path: str) -> None:
    """Fail with the flag to use when a needed column is missing."""
    missing = [name for name in columns.wanted if name not in found]
    if missing:
        raise InputError(
            f"{path}: column(s) {missing} not found; it has {list(found)}. "
            "Set --url-col / --caption-col / --keep-cols to the names the file uses."
        )


def read_rows(stream: IO[bytes], fmt: str, columns: Columns) -> Iterator[ParsedRow]:
    """Every row of a file, in file order, numbered from 0."""
    readers = {"parquet": _parquet_rows, "csv": _csv_rows, "tsv": _csv_rows, "jsonl": _jsonl_rows}
    yield from readers[fmt](stream, fmt, columns)


def _seekable(stream: IO[bytes]) -> IO[bytes]:
    # Parquet needs random access; a gzipped Parquet file is read into memory.
    try:
        if stream.seekable():
            return stream
    except (AttributeError, OSError):
        pass
    return io.BytesIO(stream.read())


def _parquet_rows(stream: IO[bytes], _fmt: str, columns: Columns) -> Iterator[ParsedRow]:
    parquet = pq.ParquetFile(_seekable(stream))
    number = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns.wanted):
        for values in batch.to_pylist():
            yield ParsedRow(number, values)
            number += 1


def _csv_header(stream: IO[bytes], fmt: str) -> list[str]:
    line = stream.readline().decode("utf-8-sig", "replace").rstrip("\r\n")
    if not line:
        return []
    if fmt == "tsv":
        return line.split("\t")
    return next(csv.reader([line]))


def _csv_rows(stream: IO[bytes], fmt: str, columns: Columns) -> Iterator[ParsedRow]:
    # Python's csv module rather than pyarrow's reader: pyarrow reports a malformed
    # row without its position, so the rows around it could not keep their numbers.
    # Every field stays text, so a caption that looks like a number is not converted.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    tsv = fmt == "tsv"
    reader = csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.reader(text)
    names = next(reader, None)
    if not names:
        return
    positions = {name: names.index(name) for name in columns.wanted}
    number = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield ParsedRow(number, parse_error=f"line {reader.line_num}: {error}")
        else:
            if not fields:  # blank line
                continue
            if len(fields) == len(names):
                yield ParsedRow(number, {name: fields[i] for name, i in positions.items()})
            else:
                line = ("\t" if tsv else ",").join(fields)
                detail = f"{len(fields)} fields where the header has {len(names)}: {line[:200]!r}"
                yield ParsedRow(number, parse_error=detail)
        number += 1


def _jsonl_rows(stream: IO[bytes], _fmt: str, columns: Columns) -> Iterator[ParsedRow]:
    number = 0
    for line in stream:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            yield ParsedRow(number, parse_error=f"not JSON ({error}): {line[:200]!r}")
        else:
            if isinstance(record, dict):
                yield ParsedRow(number, {name: record.get(name) for name in columns.wanted})
            else:
                yield ParsedRow(number, parse_error=f"not a JSON object: {line[:200]!r}")
        number += 1
