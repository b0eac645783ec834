"""Reading the input lists: the checks before any work, and the Read stage.

Checks run when the pipeline is built, on the submitting machine, so a wrong
column name or an empty glob fails in seconds instead of after workers start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.progress import BOARD
from paircurate.schemas.config import InputConfig
from paircurate.schemas.records import as_text, carried_field, valid_text
from paircurate.transforms.ingest.inputs import (
    SPLIT_BYTES,
    SPLIT_ROWS,
    SPLITTABLE_TEXT,
    Columns,
    InputError,
    Piece,
    check_columns,
    count_piece_rows,
    detect_format,
    inspect_file,
    make_uid,
    plan_pieces,
    read_piece_rows,
)
from paircurate.transforms.output.ledger import drop

log = logging.getLogger(__name__)
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class InputPlan:
    """The files to read and the output fields of the carried columns."""

    files: tuple[str, ...]
    columns: Columns
    carried: tuple[pa.Field, ...]
    pieces: tuple[Piece, ...] = ()  # the parts of the files that workers read


def expand_inputs(patterns: tuple[str, ...]) -> list[str]:
    """Files named by paths, folders (all input files below) and globs, in a stable order."""
    files: list[str] = []
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern):
            found = match_inputs(pattern)
        elif fs.exists(pattern) and _is_input_name(pattern):
            found = [pattern]
        else:
            found = match_inputs(pattern.rstrip("/") + "/**")
        if not found:
            raise InputError(f"--input {pattern!r}: no Parquet, CSV, TSV or JSONL files found")
        files.extend(path for path in found if path not in files)
    return files


def match_inputs(pattern: str) -> list[str]:
    return [p for p in fs.match(pattern) if _is_input_name(p)]


def _is_input_name(path: str) -> bool:
    try:
        detect_format(path)
    except InputError:
        return False
    return True


def plan_inputs(
    config: InputConfig, split_bytes: int = SPLIT_BYTES, split_rows: int = SPLIT_ROWS
) -> InputPlan:
    """Check every input file's columns, settle the carried columns' types, split the files.

    Each file is opened once. Parquet files split by runs of row groups (from
    the footer), uncompressed TSV/JSONL files by byte ranges (from the size),
    so one large file spreads over workers; see ``inputs.plan_pieces``.
    """
    columns = Columns(config.url_col, config.caption_col, tuple(config.keep_cols))
    files = expand_inputs(config.input)
    types: dict[str, set[pa.DataType]] = {name: set() for name in columns.keep}
    any_rows = False
    pieces: list[Piece] = []
    for path in files:
        fmt, gzipped = detect_format(path)
        try:
            with fs.open_read(path, gzipped) as stream:
                facts = inspect_file(stream, fmt)
            if facts.columns:
                check_columns(list(facts.columns), columns, path)
            any_rows = any_rows or facts.has_rows
        except InputError:
            raise
        except Exception as error:  # noqa: BLE001 - any unreadable file stops the job here
            raise InputError(f"{path}: cannot read it as {fmt}: {error}") from error
        for name in columns.keep:
            types[name].add(facts.columns.get(name, pa.null()))
        pieces += plan_pieces(path, fmt, gzipped, facts, split_bytes, split_rows)
    if not any_rows:
        raise InputError(f"--input {list(config.input)}: the input has no rows")
    carried = tuple(
        carried_field(name, next(iter(kinds)) if len(kinds) == 1 else pa.string())
        for name, kinds in types.items()
    )
    return InputPlan(tuple(files), columns, carried, tuple(pieces))


def row_from_parsed(values: dict[str, Any], columns: Columns) -> dict[str, Any]:
    url = as_text(values.get(columns.url))
    caption = as_text(values.get(columns.caption))
    row = {"uid": make_uid(url, caption), "url": url, "caption": caption}
    for name in columns.keep:
        value = values.get(name)
        row[name] = valid_text(value) if isinstance(value, str) else value
    return row


class CountRowsDoFn(beam.DoFn):
    """(path, (start, rows)) of each range of a split text file."""

    def process(self, piece: Piece) -> Iterator[tuple[str, tuple[int, int]]]:
        fmt, gzipped = detect_format(piece.path)
        if piece.whole or gzipped or fmt not in SPLITTABLE_TEXT:
            return
        with fs.open_read(piece.path, gzipped) as stream:
            yield piece.path, (piece.start, count_piece_rows(stream, fmt, piece))


def first_rows(counted: tuple[str, Iterable[tuple[int, int]]]) -> Iterator[tuple[tuple, int]]:
    """((path, start), number of its first row) of each range of one file, from the counts."""
    path, ranges = counted
    number = 0
    for start, rows in sorted(ranges):
        yield (path, start), number
        number += rows


class ReadFileDoFn(beam.DoFn):
    """Emit one row dict per input row of a piece; unparseable lines become failed rows.

    Rows keep the numbers they have in the whole file (``first_rows`` holds them
    for text ranges), so uids and the ledger do not depend on how files split.
    """

    def __init__(self, columns: Columns):
        self.columns = columns
        self.rows_read = Metrics.counter("paircurate", "read_rows")
        self.read_ms = Metrics.counter("paircurate", "read_ms")

    def process(self, piece: Piece, first_rows: dict | None = None) -> Iterator[dict]:
        if piece.first_row is None:
            piece = replace(piece, first_row=(first_rows or {})[(piece.path, piece.start)])
        path = piece.path
        fmt, gzipped = detect_format(path)
        started = time.perf_counter()
        count = 0
        with fs.open_read(path, gzipped) as stream:
            for parsed in read_piece_rows(stream, fmt, self.columns, piece):
                if parsed.parse_error is None:
                    row = row_from_parsed(parsed.values, self.columns)
                else:
                    row = drop(
                        {"uid": make_uid(None, f"{path}:{parsed.row_number}"), "url": None},
                        "invalid_row",
                        parsed.parse_error,
                    )
                row["source"], row["row_number"] = path, parsed.row_number
                count += 1
                BOARD.enter("read", 1)
                BOARD.finish("read", 1)
                yield row
        self.rows_read.inc(count)
        self.read_ms.inc(int((time.perf_counter() - started) * 1000))
        log.info("read %d rows from %s", count, path)


class ReadInputs(beam.PTransform):
    """Pieces of the input files -> one row dict per input row, pieces spread over workers.

    A text range's first row number is the count of the file's rows before it,
    counted in parallel (``CountRows``) and handed to ``Read`` as a side input.
    """

    def __init__(self, plan: InputPlan):
        super().__init__()
        self.plan = plan

    def expand(self, pipeline):
        pieces = (
            pipeline
            | "InputPieces" >> beam.Create(list(self.plan.pieces))
            | "SpreadPieces" >> beam.Reshuffle()
        )
        counted = (
            pieces
            | "CountRows" >> beam.ParDo(CountRowsDoFn())
            | "ByFile" >> beam.GroupByKey()
            | "FirstRows" >> beam.FlatMap(first_rows)
        )
        return pieces | "Read" >> beam.ParDo(
            ReadFileDoFn(self.plan.columns), first_rows=beam.pvalue.AsDict(counted)
        )
