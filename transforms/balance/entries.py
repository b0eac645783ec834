"""The entry list concept balancing matches captions against: reading and normalising it.

An entry list is a text file with one entry per line (UTF-8; blank lines and
lines starting with "#" are skipped), or a CSV, TSV or Parquet file with the
entries in one column; any of them optionally gzipped (``.gz``). Entries are
normalised as captions are (``normalize_caption``), then case-folded, as the
matcher folds captions; entries that become empty are skipped and repeats
after normalisation count once, so each entry's counts are the counts of one
concept.

``BUILTIN_NAME`` names the list shipped with the package (see
``data/README.md``): unigrams and bigrams of the Conceptual Captions
validation captions.
"""

from __future__ import annotations

import csv
import gzip
import io
from importlib import resources

import pyarrow as pa
import pyarrow.parquet as pq

from paircurate.schemas.config import ConfigError
from paircurate.transforms.ingest.caption_rules import normalize_caption
from paircurate.transforms.output.storage import Files, read_bytes

BUILTIN_NAME = "builtin:cc3m"
BUILTIN_FILE = "cc3m_concepts.txt"


class EntryListError(ConfigError):
    """The entry list cannot be read as one; the message names the flag and the file."""


def normalize_entry(text: object) -> str:
    """An entry as the matcher sees it: normalised like a caption, then case-folded."""
    return normalize_caption(text).casefold()


def builtin_entries_bytes() -> bytes:
    return resources.files("paircurate.transforms.balance.data").joinpath(BUILTIN_FILE).read_bytes()


def _text_lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", "replace")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _column(names: list[str], column: str, path: str) -> str:
    if column not in names:
        raise EntryListError(
            f"--balance-entry-column: {path} has no column {column!r} (it has {names[:10]})"
        )
    return column


def _table_values(data: bytes, path: str, column: str) -> list[object]:
    name = path.removesuffix(".gz").lower()
    if name.endswith(".parquet"):
        try:
            table = pq.read_table(pa.BufferReader(data))
        except pa.ArrowException as error:
            raise EntryListError(f"--balance-entries: {path} is not Parquet: {error}") from None
        return table.column(_column(table.column_names, column, path)).to_pylist()
    delimiter = "\t" if name.endswith(".tsv") else ","
    reader = csv.DictReader(io.StringIO(data.decode("utf-8", "replace")), delimiter=delimiter)
    _column(list(reader.fieldnames or []), column, path)
    return [row[column] for row in reader]


def parse_entries(data: bytes, path: str, column: str = "entry") -> tuple[str, ...]:
    """The normalised, distinct entries of a list file's bytes, in the file's order."""
    if path.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise EntryListError(f"--balance-entries: {path} is not gzip: {error}") from None
    name = path.removesuffix(".gz").lower()
    if name.endswith((".parquet", ".csv", ".tsv")):
        values = _table_values(data, path, column)
    else:
        values = _text_lines(data)
    entries = dict.fromkeys(normalize_entry(value) for value in values if value is not None)
    entries.pop("", None)
    if not entries:
        raise EntryListError(f"--balance-entries: {path} holds no entry")
    return tuple(entries)


def load_entries(files: Files, path: str, column: str = "entry") -> tuple[str, ...]:
    """The entries of ``path`` (any filesystem ``files`` knows) or of the shipped list."""
    if path == BUILTIN_NAME:
        return parse_entries(builtin_entries_bytes(), BUILTIN_FILE)
    try:
        data = read_bytes(files, path)
    except (OSError, FileNotFoundError) as error:
        raise EntryListError(f"--balance-entries: cannot read {path}: {error}") from None
    return parse_entries(data, path, column)
