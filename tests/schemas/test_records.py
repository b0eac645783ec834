"""Ledger schema, carried input columns and rows_to_table."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paircurate.schemas.records import (
    LEDGER_COLUMNS,
    LEDGER_FIELDS,
    LEDGER_NAMES,
    as_text,
    carried_field,
    ledger_schema,
    rows_to_table,
)


def test_ledger_schema_without_carried_columns() -> None:
    schema = ledger_schema()
    assert schema.names == [name for name, _, _ in LEDGER_COLUMNS]
    assert schema.names[:3] == ["uid", "url", "caption"]
    assert schema.names[6:9] == ["source", "row_number", "status"]
    assert schema.field("row_number").type == pa.int64()
    assert schema.field("download_ms").type == pa.float32()
    assert len(set(schema.names)) == len(schema.names) == len(LEDGER_NAMES)


def test_carried_columns_come_last() -> None:
    carried = [carried_field("license", pa.string()), carried_field("score", pa.float64())]
    schema = ledger_schema(carried)
    assert schema.names[-2:] == ["license", "score"]
    assert list(schema)[: len(LEDGER_FIELDS)] == list(LEDGER_FIELDS)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (pa.null(), pa.string()),
        (pa.string(), pa.string()),
        (pa.int64(), pa.int64()),
        (pa.list_(pa.string()), pa.list_(pa.string())),
    ],
)
def test_carried_field_types(dtype: pa.DataType, expected: pa.DataType) -> None:
    field = carried_field("extra", dtype)
    assert (field.name, field.type, field.nullable) == ("extra", expected, True)


@pytest.mark.parametrize("name", sorted(LEDGER_NAMES))
def test_carried_field_rejects_ledger_names(name: str) -> None:
    with pytest.raises(
        ValueError, match=f"--keep-cols: column '{name}' clashes with a ledger column"
    ):
        carried_field(name, pa.string())


def test_rows_to_table_with_carried_fields() -> None:
    schema = ledger_schema(
        [carried_field("license", pa.null()), carried_field("score", pa.int64())]
    )
    rows = [
        {
            "uid": "a",
            "url": "http://a/0",
            "status": "kept",
            "width": 32,
            "license": "cc-by",
            "score": 3,
        },
        {"uid": "b", "status": "failed", "reason": "download_http_404", "download_ms": 1.5},
    ]
    table = rows_to_table(rows, schema)
    assert table.schema == schema
    assert table.num_rows == 2
    assert table.column("license").to_pylist() == ["cc-by", None]
    assert table.column("score").to_pylist() == [3, None]
    assert table.column("width").to_pylist() == [32, None]
    assert table.column("reason").to_pylist() == [None, "download_http_404"]
    assert table.column("download_ms").to_pylist() == [None, 1.5]
    assert table.column("caption").null_count == 2


def test_rows_to_table_ignores_unknown_keys() -> None:
    table = rows_to_table([{"uid": "a", "not_a_column": 1}], ledger_schema())
    assert "not_a_column" not in table.schema.names
    assert table.column("uid").to_pylist() == ["a"]


def test_rows_to_table_of_no_rows() -> None:
    schema = ledger_schema([carried_field("extra", pa.string())])
    table = rows_to_table([], schema)
    assert (table.num_rows, table.schema) == (0, schema)


def test_rows_to_table_round_trips_through_parquet() -> None:
    schema = ledger_schema([carried_field("extra", pa.string())])
    rows = [{"uid": "a", "row_number": 7, "chunk": 2, "extra": "x"}, {"uid": "b", "bytes": 2**40}]
    out = io.BytesIO()
    pq.write_table(rows_to_table(rows, schema), out)
    back = pq.read_table(io.BytesIO(out.getvalue()))
    assert back.schema.remove_metadata() == schema
    assert back.to_pylist()[0]["row_number"] == 7
    assert back.to_pylist()[1]["bytes"] == 2**40


def test_rows_to_table_rejects_a_value_of_the_wrong_type() -> None:
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        rows_to_table([{"row_number": "seven"}], ledger_schema())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("text", "text"),
        ("", ""),
        (b"caf\xc3\xa9", "café"),
        (b"\xff", "\ufffd"),
        (float("nan"), None),
        (42, "42"),
        (1.5, "1.5"),
        (True, "True"),
        ([1, "a"], '[1, "a"]'),
        ({"k": 1}, '{"k": 1}'),
    ],
)
def test_as_text(value: object, expected: str | None) -> None:
    assert as_text(value) == expected


def test_rows_to_table_writes_string_fields_as_text() -> None:
    schema = ledger_schema([carried_field("tags", pa.string()), carried_field("n", pa.int64())])
    rows = [
        {"caption": 42, "tags": ["a", "b"], "n": 1},
        {"caption": b"caf\xc3\xa9", "tags": {"k": 1.5}, "n": 2},
        {"caption": float("nan"), "tags": 7.25, "n": None},
    ]
    table = rows_to_table(rows, schema)
    assert table.column("caption").to_pylist() == ["42", "café", None]
    assert table.column("tags").to_pylist() == ['["a", "b"]', '{"k": 1.5}', "7.25"]
    assert table.column("n").to_pylist() == [1, 2, None]


def test_row_codec_round_trips_rows_and_rejects_unknown_fields() -> None:
    from paircurate.schemas.records import RowCodec, carried_field, ledger_schema

    codec = RowCodec(ledger_schema([carried_field("score", pa.float64())]))
    row = {"uid": "ab" * 16, "url": "http://x/1.jpg", "caption": "ç ☃", "score": 0.5, "chunk": 3}
    decoded = codec.decode(codec.encode(row))
    assert {k: v for k, v in decoded.items() if v is not None} == row
    assert set(decoded) == set(codec.names)
    with pytest.raises(ValueError, match="nope"):
        codec.encode({**row, "nope": 1})


def test_row_codec_frames_many_rows_into_one_buffer() -> None:
    from paircurate.schemas.records import RowCodec, ledger_schema

    codec = RowCodec(ledger_schema())
    rows = [{"uid": f"{i:032x}", "caption": "x" * i, "row_number": i} for i in range(300)]
    buffer = bytearray()
    for row in rows:
        codec.append(buffer, row)
    decoded = codec.decode_all(bytes(buffer))
    assert [{k: v for k, v in row.items() if v is not None} for row in decoded] == rows
    assert codec.decode_all(b"") == []


def test_column_subsets_are_ledger_columns_and_a_stray_name_fails_at_once() -> None:
    from paircurate.schemas.records import DECIDED, LEDGER_NAMES, MEASURED, SCORED, ledger_subset

    assert set(MEASURED) | set(DECIDED) | set(SCORED) <= LEDGER_NAMES
    assert ledger_subset("uid", "phash") == ("uid", "phash")
    with pytest.raises(ValueError, match=r"not ledger columns: \['clip_scor'\]"):
        ledger_subset("uid", "clip_scor")


def test_working_caption_prefers_the_normalised_caption() -> None:
    from paircurate.schemas.records import working_caption

    assert working_caption({"caption": " A  cat ", "caption_normalized": "A cat"}) == "A cat"
    assert working_caption({"caption": "raw", "caption_normalized": ""}) == "raw"
    assert working_caption({"caption": None}) == ""
