"""Parsing of URL + caption lists: every format, gzipped or not, and malformed rows."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paircurate.transforms.ingest.inputs import (
    Columns,
    InputError,
    ParsedRow,
    check_columns,
    detect_format,
    file_columns,
    inspect_file,
    make_uid,
    number_repeats,
    read_rows,
    repeat_uid,
)

COLUMNS = Columns("url", "caption", ("extra",))
ROWS = [
    {"url": "http://a.example/0.jpg", "caption": "a red square", "extra": "k0"},
    {"url": "http://a.example/1.jpg", "caption": "42", "extra": "k1"},
    {"url": "http://a.example/2.jpg", "caption": "007", "extra": "k2"},
    {"url": "http://a.example/3.jpg", "caption": "1e5", "extra": "k3"},
    {"url": "http://a.example/4.jpg", "caption": "café ☕", "extra": ""},
]


def _encode(rows: list[dict], fmt: str) -> bytes:
    names = list(rows[0])
    if fmt == "parquet":
        out = io.BytesIO()
        table = pa.table({name: pa.array([r[name] for r in rows], pa.string()) for name in names})
        pq.write_table(table, out, row_group_size=2)
        return out.getvalue()
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    sep = "\t" if fmt == "tsv" else ","
    lines = [sep.join(names)] + [sep.join(r[n] for n in names) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _stream(data: bytes, gzipped: bool = False) -> IO[bytes]:
    if gzipped:
        return gzip.open(io.BytesIO(gzip.compress(data)), "rb")
    return io.BytesIO(data)


def _read(data: bytes, fmt: str, columns: Columns = COLUMNS, gz: bool = False) -> list[ParsedRow]:
    return list(read_rows(_stream(data, gz), fmt, columns))


# detect_format


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("pairs.parquet", ("parquet", False)),
        ("gs://bucket/dir/PAIRS.PQ", ("parquet", False)),
        ("pairs.parquet.gz", ("parquet", True)),
        ("pairs.csv", ("csv", False)),
        ("pairs.CSV.GZ", ("csv", True)),
        ("pairs.tsv", ("tsv", False)),
        ("pairs.tab", ("tsv", False)),
        ("pairs.tsv.gz", ("tsv", True)),
        ("pairs.jsonl", ("jsonl", False)),
        ("pairs.ndjson", ("jsonl", False)),
        ("pairs.json", ("jsonl", False)),
        ("pairs.jsonl.gz", ("jsonl", True)),
    ],
)
def test_detect_format(path: str, expected: tuple[str, bool]) -> None:
    assert detect_format(path) == expected


@pytest.mark.parametrize("path", ["pairs.txt", "pairs.gz", "pairs", "pairs.csv.zip"])
def test_detect_format_unknown(path: str) -> None:
    with pytest.raises(InputError, match=r"unknown input format; name files \.parquet"):
        detect_format(path)


# make_uid


def test_make_uid_is_the_first_128_bits_of_sha256() -> None:
    url, caption = "http://a.example/x.jpg", "a caption"
    expected = hashlib.sha256(f"{url}\x1f{caption}".encode()).hexdigest()[:32]
    assert make_uid(url, caption) == expected
    assert len(expected) == 32


def test_make_uid_distinguishes_url_and_caption() -> None:
    uids = {
        make_uid("a", "b"),
        make_uid("b", "a"),
        make_uid("ab", ""),
        make_uid("", "ab"),
        make_uid("a", "b "),
    }
    assert len(uids) == 5


def test_make_uid_treats_none_as_empty() -> None:
    assert make_uid(None, None) == make_uid("", "")
    assert make_uid("u", None) == make_uid("u", "")


def test_make_uid_accepts_lone_surrogates() -> None:
    assert len(make_uid("http://a.example/\udcff", "x")) == 32


# file_columns, inspect_file and check_columns


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv", "jsonl"])
@pytest.mark.parametrize("gz", [False, True])
def test_inspect_file_finds_columns_and_rows_in_one_pass(fmt: str, gz: bool) -> None:
    facts = inspect_file(_stream(_encode(ROWS, fmt), gz), fmt)
    assert list(facts.columns) == ["url", "caption", "extra"] and facts.has_rows


EMPTY_PARQUET = io.BytesIO()
pq.write_table(pa.table({"url": pa.array([], pa.string())}), EMPTY_PARQUET)


@pytest.mark.parametrize(
    ("fmt", "data", "names"),
    [
        ("parquet", EMPTY_PARQUET.getvalue(), ["url"]),
        ("csv", b"url,caption\n\r\n\n", ["url", "caption"]),
        ("tsv", b"url\tcaption\n\n", ["url", "caption"]),
        ("jsonl", b"\n\n", []),
    ],
)
def test_inspect_file_of_a_file_without_rows(fmt: str, data: bytes, names: list[str]) -> None:
    facts = inspect_file(io.BytesIO(data), fmt)
    assert list(facts.columns) == names and not facts.has_rows


def test_inspect_file_counts_a_malformed_line_as_a_row() -> None:
    facts = inspect_file(io.BytesIO(b"url,caption\n  \n"), "csv")
    assert (list(facts.columns), facts.has_rows) == (["url", "caption"], True)
    rows = _read(b"url,caption\n  \n", "csv", Columns("url", "caption"))
    assert [row.parse_error is not None for row in rows] == [True]  # read_rows agrees


def test_file_columns_parquet_keeps_types() -> None:
    out = io.BytesIO()
    table = pa.table({"url": ["u"], "caption": ["c"], "score": pa.array([0.5], pa.float32())})
    pq.write_table(table, out)
    columns = file_columns(io.BytesIO(out.getvalue()), "parquet")
    assert columns == {"url": pa.string(), "caption": pa.string(), "score": pa.float32()}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_file_columns_text_formats_are_strings(fmt: str, gz: bool) -> None:
    columns = file_columns(_stream(_encode(ROWS, fmt), gz), fmt)
    assert columns == {"url": pa.string(), "caption": pa.string(), "extra": pa.string()}


def test_file_columns_gzipped_parquet() -> None:
    columns = file_columns(_stream(_encode(ROWS, "parquet"), True), "parquet")
    assert list(columns) == ["url", "caption", "extra"]


def test_file_columns_csv_header_with_bom_and_quotes() -> None:
    data = '\ufeffurl,"caption, long",extra\r\nu,c,e\r\n'.encode()
    assert list(file_columns(io.BytesIO(data), "csv")) == ["url", "caption, long", "extra"]


def test_file_columns_jsonl_skips_blank_lines() -> None:
    data = b'\n  \n{"url": "u", "caption": "c"}\n'
    assert list(file_columns(io.BytesIO(data), "jsonl")) == ["url", "caption"]


@pytest.mark.parametrize(("fmt", "data"), [("csv", b""), ("tsv", b""), ("jsonl", b"\n\n")])
def test_file_columns_of_an_empty_file(fmt: str, data: bytes) -> None:
    assert file_columns(io.BytesIO(data), fmt) == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json\n", "line 1 is not JSON"),
        (b'\n["url", "caption"]\n', "line 2 is not a JSON object"),
    ],
)
def test_file_columns_jsonl_bad_first_record(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        file_columns(io.BytesIO(data), "jsonl")


def test_check_columns_passes_when_all_are_present() -> None:
    check_columns(["caption", "url", "extra", "other"], COLUMNS, "a.csv")


def test_check_columns_names_what_is_missing_and_the_flags() -> None:
    with pytest.raises(InputError) as raised:
        check_columns(["URL", "caption"], COLUMNS, "gs://b/a.csv")
    message = str(raised.value)
    assert message.startswith("gs://b/a.csv: column(s) ['url', 'extra'] not found")
    assert "['URL', 'caption']" in message
    assert "--url-col" in message and "--keep-cols" in message


# read_rows: every format, plain and gzipped


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv", "jsonl"])
def test_read_rows_every_format(fmt: str, gz: bool) -> None:
    rows = _read(_encode(ROWS, fmt), fmt, gz=gz)
    assert rows == [ParsedRow(number, values) for number, values in enumerate(ROWS)]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv", "jsonl"])
def test_read_rows_only_the_wanted_columns_in_order(fmt: str) -> None:
    rows = _read(_encode(ROWS, fmt), fmt, Columns("caption", "url"))
    assert list(rows[0].values.items()) == [
        ("caption", "a red square"),
        ("url", "http://a.example/0.jpg"),
    ]


def test_read_rows_parquet_keeps_carried_types_and_nulls() -> None:
    out = io.BytesIO()
    table = pa.table(
        {
            "url": ["u0", None, "u2"],
            "caption": ["c0", "c1", None],
            "score": pa.array([1, 2, None], pa.int64()),
        }
    )
    pq.write_table(table, out, row_group_size=1)
    rows = _read(out.getvalue(), "parquet", Columns("url", "caption", ("score",)))
    assert rows == [
        ParsedRow(0, {"url": "u0", "caption": "c0", "score": 1}),
        ParsedRow(1, {"url": None, "caption": "c1", "score": 2}),
        ParsedRow(2, {"url": "u2", "caption": None, "score": None}),
    ]


def test_read_rows_parquet_numbers_across_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("paircurate.transforms.ingest.inputs.BATCH_ROWS", 3)
    rows = [{"url": f"u{i}", "caption": f"c{i}"} for i in range(10)]
    parsed = _read(_encode(rows, "parquet"), "parquet", Columns("url", "caption"))
    assert [(p.row_number, p.values["url"]) for p in parsed] == [(i, f"u{i}") for i in range(10)]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv", "jsonl"])
def test_read_rows_is_empty_for_a_file_without_rows(fmt: str) -> None:
    if fmt == "parquet":
        out = io.BytesIO()
        pq.write_table(
            pa.table({"url": pa.array([], pa.string()), "caption": pa.array([], pa.string())}), out
        )
        data = out.getvalue()
    elif fmt == "jsonl":
        data = b"\n"
    else:
        data = b"url,caption\n" if fmt == "csv" else b"url\tcaption\n"
    assert _read(data, fmt, Columns("url", "caption")) == []


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_read_rows_of_an_empty_file(fmt: str) -> None:
    assert _read(b"", fmt) == []


# CSV and TSV details


def test_csv_quoted_fields_with_commas_quotes_and_newlines() -> None:
    data = (
        b"url,caption,extra\n"
        b'http://a.example/0.jpg,"a cat, a dog","k0"\n'
        b'http://a.example/1.jpg,"two\nlines, and ""quotes""",k1\n'
        b'http://a.example/2.jpg,"crlf\r\ninside",k2\n'
    )
    assert _read(data, "csv") == [
        ParsedRow(0, {"url": "http://a.example/0.jpg", "caption": "a cat, a dog", "extra": "k0"}),
        ParsedRow(
            1,
            {"url": "http://a.example/1.jpg", "caption": 'two\nlines, and "quotes"', "extra": "k1"},
        ),
        ParsedRow(2, {"url": "http://a.example/2.jpg", "caption": "crlf\r\ninside", "extra": "k2"}),
    ]


def test_csv_malformed_rows_keep_their_place() -> None:
    data = (
        b"url,caption\n"
        b"http://a.example/0.jpg,zero\n"
        b"http://a.example/1.jpg,one,surplus\n"
        b"http://a.example/2.jpg,two\n"
        b"lonely\n"
        b"http://a.example/4.jpg,four\n"
    )
    rows = _read(data, "csv", Columns("url", "caption"))
    assert [(r.row_number, r.values.get("url"), r.parse_error) for r in rows] == [
        (0, "http://a.example/0.jpg", None),
        (1, None, "3 fields where the header has 2: 'http://a.example/1.jpg,one,surplus'"),
        (2, "http://a.example/2.jpg", None),
        (3, None, "1 fields where the header has 2: 'lonely'"),
        (4, "http://a.example/4.jpg", None),
    ]
    assert rows[1].values == {}


def test_csv_malformed_rows_in_a_gzipped_file() -> None:
    data = b"url,caption\nu0,c0\nu1\nu2,c2\n"
    rows = _read(data, "csv", Columns("url", "caption"), gz=True)
    assert [(r.row_number, r.parse_error is None) for r in rows] == [
        (0, True),
        (1, False),
        (2, True),
    ]


def test_csv_numbers_stay_text_across_many_rows() -> None:
    # Enough rows that a type-inferring reader would settle on integers first.
    lines = (
        ["url,caption"] + [f"u{i},{i}" for i in range(3000)] + ["u3000,not a number", "u3001,0042"]
    )
    rows = _read(("\n".join(lines) + "\n").encode(), "csv", Columns("url", "caption"))
    assert len(rows) == 3002
    assert rows[5].values == {"url": "u5", "caption": "5"}
    assert rows[3000].values["caption"] == "not a number"
    assert rows[3001].values["caption"] == "0042"


def test_csv_empty_fields_are_empty_strings() -> None:
    rows = _read(b"url,caption,extra\nu,,\n", "csv")
    assert rows == [ParsedRow(0, {"url": "u", "caption": "", "extra": ""})]


def test_csv_bom_crlf_and_blank_lines() -> None:
    data = "\ufeffurl,caption\r\nu0,c0\r\n\r\nu1,c1\r\n".encode()
    rows = _read(data, "csv", Columns("url", "caption"))
    assert rows == [
        ParsedRow(0, {"url": "u0", "caption": "c0"}),
        ParsedRow(1, {"url": "u1", "caption": "c1"}),
    ]


def test_csv_without_final_newline() -> None:
    rows = _read(b"url,caption\nu0,c0", "csv", Columns("url", "caption"))
    assert rows == [ParsedRow(0, {"url": "u0", "caption": "c0"})]


def test_csv_invalid_utf8_is_replaced_not_fatal() -> None:
    rows = _read(b"url,caption\nu0,caf\xe9\nu1,c1\n", "csv", Columns("url", "caption"))
    assert rows == [
        ParsedRow(0, {"url": "u0", "caption": "caf\ufffd"}),
        ParsedRow(1, {"url": "u1", "caption": "c1"}),
    ]


def test_csv_huge_field_becomes_a_bad_row() -> None:
    data = b"url,caption\nu0,c0\nu1," + b"x" * 200_000 + b"\nu2,c2\n"
    rows = _read(data, "csv", Columns("url", "caption"))
    assert [r.row_number for r in rows] == [0, 1, 2]
    assert (
        rows[1].parse_error is not None and "field larger than field limit" in rows[1].parse_error
    )
    assert rows[2].values == {"url": "u2", "caption": "c2"}


def test_tsv_quotes_and_commas_are_literal() -> None:
    data = b'url\tcaption\nu0\t"quoted", with comma\nu1\ta "b" c\n'
    rows = _read(data, "tsv", Columns("url", "caption"))
    assert rows == [
        ParsedRow(0, {"url": "u0", "caption": '"quoted", with comma'}),
        ParsedRow(1, {"url": "u1", "caption": 'a "b" c'}),
    ]


def test_tsv_malformed_rows_keep_their_place() -> None:
    data = b"url\tcaption\nu0\tc0\nu1\tc1\textra\nu2\tc2\n"
    rows = _read(data, "tsv", Columns("url", "caption"))
    assert [(r.row_number, r.parse_error) for r in rows] == [
        (0, None),
        (1, "3 fields where the header has 2: 'u1\\tc1\\textra'"),
        (2, None),
    ]


# JSONL details


def test_jsonl_malformed_lines_keep_their_place() -> None:
    data = (
        b'{"url": "u0", "caption": "c0"}\n'
        b"{not json\n"
        b"\n"
        b'["u2", "c2"]\n'
        b'{"url": "u3"}\n'
        b'{"url": "u4", "caption": 42, "other": 1}\n'
    )
    rows = _read(data, "jsonl", Columns("url", "caption"))
    assert [r.row_number for r in rows] == [0, 1, 2, 3, 4]
    assert rows[0] == ParsedRow(0, {"url": "u0", "caption": "c0"})
    assert rows[1].values == {}
    assert rows[1].parse_error.startswith("not JSON (")
    assert rows[1].parse_error.endswith("b'{not json\\n'")
    assert rows[2] == ParsedRow(2, parse_error='not a JSON object: b\'["u2", "c2"]\\n\'')
    assert rows[3] == ParsedRow(3, {"url": "u3", "caption": None})
    assert rows[4] == ParsedRow(4, {"url": "u4", "caption": 42})


def test_jsonl_invalid_utf8_is_a_bad_row() -> None:
    rows = _read(b'{"url": "u0", "caption": "\xff"}\n{"url": "u1", "caption": "c1"}\n', "jsonl")
    assert rows[0].parse_error is not None and rows[0].row_number == 0
    assert rows[1].row_number == 1 and rows[1].values["url"] == "u1"


def test_exact_repeats_get_their_own_uids_in_input_order() -> None:
    uid = make_uid("http://a/1.jpg", "a cat")
    other = make_uid("http://a/2.jpg", "a dog")
    rows = [
        {"uid": uid, "source": "b.csv", "row_number": 0},
        {"uid": uid, "source": "a.csv", "row_number": 7},
        {"uid": other, "source": "a.csv", "row_number": 3},
        {"uid": uid, "source": "a.csv", "row_number": 2},
    ]
    ordered = number_repeats(list(reversed(rows)))
    assert [(row["source"], row["row_number"]) for row in ordered] == [
        ("a.csv", 2), ("a.csv", 3), ("a.csv", 7), ("b.csv", 0)
    ]  # fmt: skip
    assert [row["uid"] for row in ordered] == [
        uid, other, repeat_uid(uid, 1), repeat_uid(uid, 2)
    ]  # fmt: skip
    assert len({uid, other, repeat_uid(uid, 1), repeat_uid(uid, 2)}) == 4


def test_repeat_uids_look_like_uids_and_do_not_depend_on_arrival_order() -> None:
    uid = make_uid("http://a/1.jpg", "a cat")
    assert len(repeat_uid(uid, 1)) == 32 and int(repeat_uid(uid, 1), 16) >= 0
    rows = [{"uid": uid, "source": "a", "row_number": n} for n in range(3)]
    forward = [row["uid"] for row in number_repeats([dict(row) for row in rows])]
    backward = [row["uid"] for row in number_repeats([dict(row) for row in reversed(rows)])]
    assert forward == backward == [uid, repeat_uid(uid, 1), repeat_uid(uid, 2)]


def test_numbering_repeats_leaves_the_input_rows_alone() -> None:
    uid = make_uid("http://a/1.jpg", "a cat")
    rows = [{"uid": uid, "source": "a", "row_number": n} for n in range(2)]
    numbered = number_repeats(rows)
    assert [row["uid"] for row in rows] == [uid, uid]
    assert numbered[0] is rows[0] and numbered[1] is not rows[1]
    assert numbered[1] == {**rows[1], "uid": repeat_uid(uid, 1)}
