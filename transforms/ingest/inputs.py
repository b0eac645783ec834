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
from collections.abc import Iterable, Iterator, Sequence
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


def repeat_uid(uid: str, occurrence: int) -> str:
    """The uid of the ``occurrence``-th exact repeat (1, 2, ...) of the pair ``uid`` names."""
    text = f"{uid}\x1e{occurrence}"
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def number_repeats(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows in input order, exact repeats of a pair with their own uids.

    ``make_uid`` gives every copy of one (url, caption) the same uid. In input order
    (source path, then row number) the first copy keeps it and the n-th repeat gets
    ``repeat_uid(uid, n)``, so that uids are unique per ledger row and keys per shard,
    yet the same input always gives the same uids. ``rows`` must hold every copy of each
    uid among them: the job calls this where all copies meet (a fetch chunk, by URL, or
    the ledger part of rows settled before fetching, by uid). The input rows are not
    changed: a renumbered repeat comes back as a new dict.
    """
    ordered = sorted(rows, key=lambda row: (row["source"], row["row_number"]))
    seen: dict[str, int] = {}
    numbered = []
    for row in ordered:
        uid = row["uid"]
        occurrence = seen.get(uid, 0)
        seen[uid] = occurrence + 1
        numbered.append({**row, "uid": repeat_uid(uid, occurrence)} if occurrence else row)
    return numbered


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


@dataclass(frozen=True)
class FileFacts:
    """What planning learns from one open of an input file."""

    columns: dict[str, pa.DataType]
    has_rows: bool
    size: int | None = None  # bytes, where the stream can tell
    row_groups: tuple[int, ...] = ()  # Parquet: rows per row group
    header: tuple[str, ...] = ()  # CSV/TSV: the header's names


def inspect_file(stream: IO[bytes], fmt: str) -> FileFacts:
    """Columns, whether any row follows, and what splitting needs, from one open stream.

    Parquet answers from its footer; a text file is read up to its first row.
    """
    if fmt == "parquet":
        parquet = pq.ParquetFile(_seekable(stream))
        found = {f.name: f.type for f in parquet.schema_arrow}
        metadata = parquet.metadata
        groups = tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
        return FileFacts(found, metadata.num_rows > 0, row_groups=groups)
    found = file_columns(stream, fmt)
    if fmt == "jsonl" or not found:
        has_rows = bool(found)  # a JSONL file's columns come from its first row
    else:  # after a CSV/TSV header, any non-empty line is a row (or an invalid row)
        has_rows = any(line.rstrip(b"\r\n") for line in stream)
    header = tuple(found) if fmt in ("csv", "tsv") else ()
    return FileFacts(found, has_rows, size=_size(stream), header=header)


def _size(stream: IO[bytes]) -> int | None:
    try:
        return stream.seek(0, io.SEEK_END)
    except (AttributeError, OSError, ValueError):
        return None


# -- pieces: the parts of a file that workers read -----------------------------------------

SPLIT_BYTES = 64 * 2**20  # a text piece's size; Parquet pieces hold this many rows at most
SPLIT_ROWS = 1_000_000
SPLITTABLE_TEXT = ("tsv", "jsonl")  # one line is one record; CSV quotes may hold newlines


@dataclass(frozen=True)
class Piece:
    """A part of one input file that one worker reads.

    Parquet: row groups ``start`` to ``stop``. TSV and JSONL: the records whose
    line starts at a byte in ``start`` to ``stop``. ``stop`` None: to the end.
    Rows are numbered as in the whole file; ``first_row`` is None for a text
    range until its records before it are counted (``count_piece_rows``).
    """

    path: str
    start: int = 0
    stop: int | None = None
    first_row: int | None = 0
    header: tuple[str, ...] = ()  # TSV: the file's header, for a range after the first

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop is None


def plan_pieces(
    path: str, fmt: str, gzipped: bool, facts: FileFacts, split_bytes: int = SPLIT_BYTES,
    split_rows: int = SPLIT_ROWS,
) -> list[Piece]:  # fmt: skip
    """The pieces of one file: Parquet by runs of row groups, TSV/JSONL by byte ranges.

    A gzipped file cannot be read from the middle, and a CSV record may span
    lines inside quotes: those are read whole.
    """
    if gzipped:
        return [Piece(path)]
    if fmt == "parquet" and len(facts.row_groups) > 1:
        pieces, start, first, rows = [], 0, 0, 0
        for index, count in enumerate(facts.row_groups):
            if rows and rows + count > split_rows:
                pieces.append(Piece(path, start, index, first))
                start, first, rows = index, first + rows, 0
            rows += count
        stop = len(facts.row_groups) if pieces else None
        return [*pieces, Piece(path, start, stop, first)] if pieces else [Piece(path)]
    if fmt in SPLITTABLE_TEXT and facts.size and facts.size > split_bytes:
        starts = range(0, facts.size, split_bytes)
        return [
            Piece(path, start, min(start + split_bytes, facts.size), 0 if start == 0 else None,
                  facts.header)
            for start in starts
        ]  # fmt: skip
    return [Piece(path)]


def _range_lines(stream: IO[bytes], start: int, stop: int | None) -> Iterator[bytes]:
    """The lines of a file that start at a byte in [start, stop), whole."""
    position = 0
    if start > 0:
        stream.seek(start - 1)
        position = start - 1 + len(stream.readline())  # the line under way belongs before
    while stop is None or position < stop:
        line = stream.readline()
        if not line:
            return
        position += len(line)
        yield line


class _LinesStream(io.RawIOBase):
    """A readable stream over an iterator of byte lines."""

    def __init__(self, lines: Iterator[bytes]):
        self.lines, self.pending = lines, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            self.pending = next(self.lines, b"")
            if not self.pending:
                return 0
        n = min(len(buffer), len(self.pending))
        buffer[:n], self.pending = self.pending[:n], self.pending[n:]
        return n


def read_piece_rows(
    stream: IO[bytes], fmt: str, columns: Columns, piece: Piece
) -> Iterator[ParsedRow]:
    """The rows of one piece, numbered as in the whole file."""
    if piece.whole:
        yield from read_rows(stream, fmt, columns)
        return
    if piece.first_row is None:
        raise ValueError(f"{piece}: the rows before this range are not counted")
    if fmt == "parquet":
        parquet = pq.ParquetFile(_seekable(stream))
        groups = list(range(piece.start, piece.stop or parquet.num_row_groups))
        yield from _parquet_batches(parquet, columns, groups, piece.first_row)
        return
    lines = _range_lines(stream, piece.start, piece.stop)
    if fmt == "jsonl":
        yield from _jsonl_lines(lines, columns, piece.first_row)
        return
    reader = _tsv_reader(lines, piece.start)
    names = next(reader, None) if piece.start == 0 else list(piece.header)
    if names:
        yield from _csv_records(reader, names, columns, True, piece.first_row)


def count_piece_rows(stream: IO[bytes], fmt: str, piece: Piece) -> int:
    """How many rows a text range holds: what numbers the rows of the ranges after it."""
    lines = _range_lines(stream, piece.start, piece.stop)
    if fmt == "jsonl":
        return sum(1 for line in lines if line.strip())
    reader = _tsv_reader(lines, piece.start)
    if piece.start == 0 and not next(reader, None):
        return 0
    return sum(1 for _ in _csv_outcomes(reader))


def _tsv_reader(lines: Iterator[bytes], start: int):
    raw = io.BufferedReader(_LinesStream(lines))
    encoding = "utf-8-sig" if start == 0 else "utf-8"  # a BOM only opens a file
    text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
    return csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE)


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
    yield from _parquet_batches(pq.ParquetFile(_seekable(stream)), columns, None, 0)


def _parquet_batches(
    parquet: pq.ParquetFile, columns: Columns, row_groups: list[int] | None, number: int
) -> Iterator[ParsedRow]:
    batches = parquet.iter_batches(
        batch_size=BATCH_ROWS, row_groups=row_groups, columns=columns.wanted
    )
    for batch in batches:
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
    if names:
        yield from _csv_records(reader, names, columns, tsv, 0)


def _csv_outcomes(reader) -> Iterator[list[str] | str]:
    """Each record's fields, or the csv module's complaint about it; blank lines skipped."""
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield f"line {reader.line_num}: {error}"
        else:
            if fields:
                yield fields


def _csv_records(
    reader, names: list[str], columns: Columns, tsv: bool, number: int
) -> Iterator[ParsedRow]:
    positions = {name: names.index(name) for name in columns.wanted}
    for fields in _csv_outcomes(reader):
        if isinstance(fields, str):
            yield ParsedRow(number, parse_error=fields)
        elif len(fields) == len(names):
            yield ParsedRow(number, {name: fields[i] for name, i in positions.items()})
        else:
            line = ("\t" if tsv else ",").join(fields)
            detail = f"{len(fields)} fields where the header has {len(names)}: {line[:200]!r}"
            yield ParsedRow(number, parse_error=detail)
        number += 1


def _jsonl_rows(stream: IO[bytes], _fmt: str, columns: Columns) -> Iterator[ParsedRow]:
    yield from _jsonl_lines(stream, columns, 0)


def _jsonl_lines(lines: Iterable[bytes], columns: Columns, number: int) -> Iterator[ParsedRow]:
    for line in lines:
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
