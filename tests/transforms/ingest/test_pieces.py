"""Split reads: a file read in pieces gives the rows, numbers and uids of reading it whole."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paircurate.transforms.ingest.inputs import (
    Columns,
    FileFacts,
    Piece,
    count_piece_rows,
    inspect_file,
    make_uid,
    plan_pieces,
    read_piece_rows,
    read_rows,
)

COLUMNS = Columns("url", "caption")


def text_file(fmt: str) -> bytes:
    """Rows with blank lines, CRLF, a bad row, non-ASCII text and a quote that spans lines."""
    if fmt == "jsonl":
        lines = [json.dumps({"url": f"http://a.example/{i}.jpg", "caption": f"café\nline {i}"})
                 for i in range(40)]  # fmt: skip
        lines[7] = "{not json"
        lines[12] = ""
        lines[20] = "[1, 2]"
        return ("\n".join(lines) + "\r\n").encode()
    lines = ["url\tcaption"]
    lines += [f"http://a.example/{i}.jpg\tcaption ☕ {i}" for i in range(40)]
    lines[5] = 'http://a.example/q.jpg\t"a quote that\nspans lines"'
    lines[9] = ""
    lines[15] = "only-one-field"
    lines[22] = "http://a.example/r.jpg\tcarriage\rreturn"
    return "\r\n".join(lines).encode() + b"\n"


def whole(data: bytes, fmt: str) -> list:
    return list(read_rows(io.BytesIO(data), fmt, COLUMNS))


def in_pieces(data: bytes, fmt: str, pieces: list[Piece]) -> list:
    """Count each range, number the ranges after it, then read every piece apart."""
    number, rows = 0, []
    for piece in pieces:
        if fmt != "parquet" and not piece.whole:  # text ranges are counted, as CountRows does
            counted = count_piece_rows(io.BytesIO(data), fmt, piece)
            piece = Piece(piece.path, piece.start, piece.stop, number, piece.header)
            number += counted
        rows += list(read_piece_rows(io.BytesIO(data), fmt, COLUMNS, piece))
    return rows


def key(rows: list) -> list:
    return [
        (row.row_number, row.values, row.parse_error,
         make_uid(row.values.get("url"), row.values.get("caption")))
        for row in rows
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", ["tsv", "jsonl"])
@pytest.mark.parametrize("split_bytes", [1, 7, 64, 333, 10_000])
def test_text_ranges_give_the_rows_of_the_whole_file(fmt, split_bytes):
    data = text_file(fmt)
    facts = inspect_file(io.BytesIO(data), fmt)
    pieces = plan_pieces("in." + fmt, fmt, False, facts, split_bytes=split_bytes)
    assert len(pieces) == max(1, -(-len(data) // split_bytes)) if split_bytes < len(data) else 1
    expected = whole(data, fmt)
    assert len(expected) > 30 and any(row.parse_error for row in expected)
    assert key(in_pieces(data, fmt, pieces)) == key(expected)


@pytest.mark.parametrize(("fmt", "gzipped"), [("csv", False), ("tsv", True), ("jsonl", True)])
def test_csv_and_gzipped_files_are_read_whole(fmt, gzipped):
    data = b'url,caption\nhttp://a.example/0.jpg,"two\nlines"\n' * 50
    facts = FileFacts({"url": pa.string()}, True, size=len(data), header=("url", "caption"))
    assert plan_pieces("in", fmt, gzipped, facts, split_bytes=10) == [Piece("in")]


def parquet_file(rows: int, row_group_size: int) -> bytes:
    table = pa.table({
        "url": [f"http://a.example/{i}.jpg" for i in range(rows)],
        "caption": [f"caption {i}" if i % 9 else None for i in range(rows)],
    })  # fmt: skip
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=row_group_size)
    return out.getvalue()


@pytest.mark.parametrize("split_rows", [1, 10, 25, 1000])
def test_parquet_row_group_runs_give_the_rows_of_the_whole_file(split_rows):
    data = parquet_file(103, 10)
    facts = inspect_file(io.BytesIO(data), "parquet")
    assert facts.row_groups == (10,) * 10 + (3,)
    pieces = plan_pieces("in.parquet", "parquet", False, facts, split_rows=split_rows)
    assert len(pieces) == (11 if split_rows <= 10 else 5 if split_rows == 25 else 1)
    assert all(piece.first_row is not None for piece in pieces)
    assert key(in_pieces(data, "parquet", pieces)) == key(whole(data, "parquet"))
