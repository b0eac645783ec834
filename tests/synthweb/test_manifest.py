"""write_manifest: every format round-trips through pyarrow."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from paircurate.synthweb import MANIFEST_SCHEMA, SyntheticWeb, write_manifest
from paircurate.synthweb.manifest import manifest_format

BASE = "http://127.0.0.1:8123"


@pytest.fixture(scope="module")
def web() -> SyntheticWeb:
    return SyntheticWeb(250, seed=9)


def _read(path: Path) -> pa.Table:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    fmt, _ = manifest_format(str(path))
    if fmt == "parquet":
        return pq.read_table(pa.BufferReader(raw))
    if fmt == "jsonl":
        return pa.Table.from_pylist([json.loads(line) for line in raw.decode().splitlines()])
    options = pa_csv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")
    convert = pa_csv.ConvertOptions(column_types=MANIFEST_SCHEMA, strings_can_be_null=False)
    return pa_csv.read_csv(io.BytesIO(raw), parse_options=options, convert_options=convert)


@pytest.mark.parametrize(
    "name",
    [
        "m.parquet",
        "m.csv",
        "m.tsv",
        "m.jsonl",
        "m.csv.gz",
        "m.tsv.gz",
        "m.jsonl.gz",
        "m.parquet.gz",
    ],
)
def test_round_trip(tmp_path: Path, web: SyntheticWeb, name: str) -> None:
    path = tmp_path / name
    assert write_manifest(web, BASE + "/", str(path)) == str(path)
    table = _read(path)
    assert table.num_rows == len(web)
    assert table.column_names == MANIFEST_SCHEMA.names
    rows = table.to_pylist()
    for entry, row in zip(web, rows, strict=True):
        assert row["url"] == BASE + entry.path
        assert row["caption"] == entry.caption
        assert row["truth_label"] == entry.label
        assert row["truth_language"] == entry.language
        assert row["truth_duplicate_of"] == entry.duplicate_of
        assert (row["truth_width"], row["truth_height"]) == (entry.width, entry.height)
        assert row["truth_scene"] == entry.scene
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_parquet_keeps_the_schema(tmp_path: Path, web: SyntheticWeb) -> None:
    path = write_manifest(web, BASE, str(tmp_path / "m.parquet"))
    assert pq.read_schema(path).equals(MANIFEST_SCHEMA)


def test_unknown_extension_says_what_to_do(tmp_path: Path, web: SyntheticWeb) -> None:
    with pytest.raises(ValueError, match=r"\.parquet, \.csv"):
        write_manifest(web, BASE, str(tmp_path / "m.txt"))
