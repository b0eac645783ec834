"""Entry lists: text, CSV, TSV, Parquet and gzip, normalised; the shipped list."""

from __future__ import annotations

import gzip
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paircurate.transforms.balance.entries import (
    BUILTIN_NAME,
    EntryListError,
    load_entries,
    parse_entries,
)
from paircurate.transforms.output.storage import Files


class LocalFiles:
    """The two calls load_entries makes, on the local disk."""

    def open_read(self, path: str):
        return open(path, "rb")


def test_text_lists_skip_comments_and_blank_lines_and_normalise():
    data = "# a comment\nDog\n\n  hot   dog \nDOG\nStraße\n".encode()
    assert parse_entries(data, "list.txt") == ("dog", "hot dog", "strasse")


def test_gzipped_text():
    assert parse_entries(gzip.compress(b"cat\ndog\n"), "list.txt.gz") == ("cat", "dog")


def test_csv_and_tsv_columns():
    assert parse_entries(b"id,entry\n1,Cat\n2,dog\n", "l.csv") == ("cat", "dog")
    assert parse_entries(b"name\tn\nCat\t1\n", "l.tsv", column="name") == ("cat",)
    with pytest.raises(EntryListError, match="--balance-entry-column"):
        parse_entries(b"id,word\n1,cat\n", "l.csv")


def test_parquet_column():
    sink = io.BytesIO()
    pq.write_table(pa.table({"entry": ["Cat", None, "dog"]}), sink)
    assert parse_entries(sink.getvalue(), "l.parquet") == ("cat", "dog")
    with pytest.raises(EntryListError, match="not Parquet"):
        parse_entries(b"nonsense", "l.parquet")


def test_empty_list_is_an_error():
    with pytest.raises(EntryListError, match="holds no entry"):
        parse_entries(b"# nothing\n\n", "l.txt")


def test_missing_file_names_the_flag(tmp_path):
    files: Files = LocalFiles()  # type: ignore[assignment]
    with pytest.raises(EntryListError, match="--balance-entries: cannot read"):
        load_entries(files, str(tmp_path / "missing.txt"))


def test_shipped_list_loads():
    entries = load_entries(LocalFiles(), BUILTIN_NAME)  # type: ignore[arg-type]
    assert len(entries) > 5000
    assert entries[0] == "person" and "dog" in entries
    assert all(entry == entry.casefold().strip() for entry in entries)
